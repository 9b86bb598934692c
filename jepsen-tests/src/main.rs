//! `geowallet-jepsen`: real geowallet node processes, each in its own
//! network namespace on a bridge the run creates, clients in namespaces of
//! their own driving the testkit workload through the real client library,
//! a seeded nemesis (kills, pauses, partitions, clock jumps, packet loss,
//! slow links), then heal, converge and the five testkit checkers plus a
//! replica comparison. Prints a Jepsen-style summary; exits 0 only when
//! every checker passes. Needs root (namespaces, iptables) on Linux.

mod cluster;
mod nemesis;
mod net;
mod run;
mod summary;
mod topology;
mod worker;

use clap::{Parser, Subcommand};

/// Exit codes: every checker passed / a checker failed / the harness could
/// not run / interrupted.
const EXIT_VALID: i32 = 0;
const EXIT_INVALID: i32 = 1;
const EXIT_ERROR: i32 = 2;
const EXIT_INTERRUPTED: i32 = 130;

#[derive(Debug, Parser)]
#[command(name = "geowallet-jepsen", version, about)]
struct Cli {
    #[command(subcommand)]
    worker: Option<Worker>,
    #[command(flatten)]
    run: run::RunArgs,
}

#[derive(Debug, Subcommand)]
enum Worker {
    /// (internal) One client host's workload; started by the run inside a
    /// client namespace.
    #[command(hide = true)]
    Worker(worker::WorkerArgs),
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("geowallet-jepsen: cannot start the async runtime: {e}");
            std::process::exit(EXIT_ERROR);
        }
    };
    let code = runtime.block_on(async move {
        if let Some(Worker::Worker(args)) = cli.worker {
            return match worker::run(args).await {
                Ok(()) => EXIT_VALID,
                Err(e) => {
                    eprintln!("geowallet-jepsen worker: {e:#}");
                    EXIT_ERROR
                }
            };
        }
        // Leaving the select drops the run: its nodes, workers, namespaces
        // and bridge are torn down by their Drop.
        tokio::select! {
            result = run::run(cli.run) => match result {
                Ok(true) => EXIT_VALID,
                Ok(false) => EXIT_INVALID,
                Err(e) => {
                    eprintln!("geowallet-jepsen: error: {e:#}");
                    EXIT_ERROR
                }
            },
            _ = interrupted() => {
                eprintln!("geowallet-jepsen: interrupted; tearing down");
                EXIT_INTERRUPTED
            }
        }
    });
    // Not a plain drop: that would wait for a checker still running on a
    // blocking thread after Ctrl-C.
    runtime.shutdown_background();
    std::process::exit(code);
}

async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}
