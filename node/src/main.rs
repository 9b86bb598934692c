use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use geowallet_node::config::{NodeConfig, RaftTuning};
use geowallet_node::local_cluster::LocalCluster;
use geowallet_node::{ctl, demo, server};

/// geowallet: a replicated, geo-sharded wallet database.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run one node.
    Node {
        #[arg(long)]
        config: PathBuf,
    },
    /// Start a local 3-node cluster on 127.0.0.1 (separate processes) and run
    /// until Ctrl-C; with --demo, run a short workload with a leader kill.
    Dev {
        /// Data dir (a new temporary dir by default; kept afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        demo: bool,
        #[arg(long, default_value_t = 3)]
        nodes: u64,
    },
    /// One command against a cluster.
    Ctl(ctl::CtlArgs),
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(async move {
        match cli.command {
            Cmd::Ctl(args) => ctl::run(args).await,
            other => match run(other).await {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    1
                }
            },
        }
    });
    std::process::exit(code);
}

async fn run(cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Node { config } => {
            init_tracing();
            server::run(NodeConfig::load(&config)?).await
        }
        Cmd::Dev { dir, demo, nodes } => dev(dir, demo, nodes).await,
        Cmd::Ctl(_) => unreachable!("handled in main"),
    }
}

async fn dev(dir: Option<PathBuf>, run_demo: bool, nodes: u64) -> anyhow::Result<()> {
    let dir = match dir {
        Some(d) => d,
        None => tempfile::Builder::new()
            .prefix("geowallet-dev-")
            .tempdir()?
            .keep(),
    };
    let binary = std::env::current_exe().context("find the geowallet binary")?;
    let mut cluster = LocalCluster::start(&binary, &dir, nodes, RaftTuning::default())?;
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await?;
    let endpoints = cluster.endpoints().join(",");
    println!("geowallet dev: {nodes} nodes up, leader is node {leader}");
    println!("  data and logs: {}", dir.display());
    println!("  cluster file:  {}", dir.join("cluster.json").display());
    println!("  endpoints:     {endpoints}");
    println!("  try: geowallet ctl --endpoints {endpoints} status");
    if run_demo {
        let result = demo::run(&mut cluster).await;
        cluster.stop_all();
        return result;
    }
    println!("geowallet dev: running; Ctrl-C to stop");
    tokio::signal::ctrl_c().await?;
    println!("geowallet dev: stopping");
    cluster.stop_all();
    Ok(())
}
