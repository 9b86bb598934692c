//! `geowallet-testkit check|export-edn`: checks a history file for
//! linearizability or exports a geowallet history as EDN.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use geowallet_testkit::{CheckConfig, HistoryFormat, Verdict, read_history, to_edn};

#[derive(Parser)]
#[command(version, about = "geowallet history checker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a history; exit 0 linearizable, 1 not, 2 unknown or error.
    Check {
        #[arg(long, value_enum)]
        format: HistoryFormat,
        /// Search steps allowed per partition before giving up with `unknown`.
        #[arg(long, default_value_t = CheckConfig::default().steps_max_per_partition)]
        steps_max: u64,
        file: PathBuf,
    },
    /// Print a geowallet history as Jepsen EDN, one op map per line.
    ExportEdn { file: PathBuf },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check {
            format,
            steps_max,
            file,
        } => {
            let config = CheckConfig {
                steps_max_per_partition: steps_max,
            };
            let report = format
                .check_file(&file, &config)
                .with_context(|| format!("check {}", file.display()))?;
            println!("{}", report.verdict);
            Ok(match report.verdict {
                Verdict::Linearizable => ExitCode::SUCCESS,
                Verdict::NotLinearizable(_) => ExitCode::from(1),
                Verdict::Unknown { .. } => ExitCode::from(2),
            })
        }
        Command::ExportEdn { file } => {
            let history = read_history(&file).context("export edn")?;
            print!("{}", to_edn(&history));
            Ok(ExitCode::SUCCESS)
        }
    }
}
