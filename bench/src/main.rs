//! `geowallet-bench`: measures a geowallet cluster the way a game platform
//! uses it. It starts its own 3-node cluster (`geowallet dev`, real
//! processes, fsync on) or joins a running one, opens and funds wallets
//! and preloads transaction records through the real client write path,
//! runs one workload closed- or open-loop, audits every wallet afterwards
//! (books balance, money moved exactly as acknowledged), stops what it
//! started, and prints an HDR percentile table, per-node RSS and CPU, an
//! SVG latency plot and one RESULT line in the format of
//! `../shared/peers`' loadgen.
//!
//! It owns only measurement. It talks to processes (gRPC through
//! `geowallet-client`, signals, /proc) and must never depend on the node,
//! the ledger, storage, raft or RocksDB: what it measures is what a
//! service linking the client library sees.

mod args;
mod auditor;
mod bench;
mod cluster_file;
mod dev_cluster;
mod geowallet_binary;
mod invariant;
mod key_picker;
mod load_runner;
mod node_monitor;
mod op;
mod preloader;
mod proc_fs;
mod progress;
mod report;
mod schedule;
mod script;
mod svg_plot;
mod tally;
mod wallet_set;
mod workload;

use clap::Parser;

/// Exit codes: the run completed and the books balance / an error / the
/// books do not balance (as loadgen) / interrupted by a signal.
const EXIT_OK: i32 = 0;
const EXIT_ERROR: i32 = 1;
const EXIT_INVARIANT_FAILED: i32 = 2;
const EXIT_INTERRUPTED: i32 = 130;

fn main() {
    let args = args::Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(EXIT_ERROR);
        }
    };
    let code = runtime.block_on(async move {
        // Leaving the select drops the run, and with it our cluster (its
        // Drop stops the dev process and every node it started).
        tokio::select! {
            result = bench::run(args) => match result {
                Ok(true) => EXIT_OK,
                Ok(false) => EXIT_INVARIANT_FAILED,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    EXIT_ERROR
                }
            },
            signal = interrupted() => {
                eprintln!("geowallet-bench: {signal}; stopping");
                EXIT_INTERRUPTED
            }
        }
    });
    drop(runtime);
    std::process::exit(code);
}

/// Resolves on SIGINT or SIGTERM, naming it.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        // Without handlers the default actions apply; never resolve.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "interrupted (SIGINT)",
        _ = term.recv() => "terminated (SIGTERM)",
    }
}
