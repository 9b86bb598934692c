use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use geowallet_node::config::{NodeConfig, RaftTuning};
use geowallet_node::local_cluster::LocalCluster;
use geowallet_node::local_cluster::Topology;
use geowallet_node::{ctl, demo, geo_demo, server};

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
    /// Start a local cluster on 127.0.0.1 (separate processes) and run
    /// until Ctrl-C; with --demo, run a short workload with a leader kill
    /// (`--topology geo`: two regions, a datacenter kill and failback).
    Dev {
        /// Data dir (a new temporary dir by default; kept afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        demo: bool,
        /// Nodes of the single-region cluster.
        #[arg(long, default_value_t = 3)]
        nodes: u64,
        /// `single`: one group on `--nodes` nodes; `geo`: regions eu and us
        /// (datacenters a and b) and a tiebreaker site ap, five nodes, four
        /// shard groups and the directory.
        #[arg(long, value_enum, default_value_t = TopologyArg::Single)]
        topology: TopologyArg,
        /// Datacenter kills of the geo demo (at least 1).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        kills: u32,
    },
    /// One command against a cluster.
    Ctl(ctl::CtlArgs),
    /// Checks a journal export (`ctl journal export`) offline: every
    /// entry's hash chain recomputed from its lines, entries chained to
    /// each other, totals equal to the lines' sums. Exits 1 naming each
    /// line that does not check out.
    Verify {
        /// The exported CSV file.
        file: PathBuf,
    },
    /// Builds a new cluster from a backup (`ctl backup --to DIR`). Checks
    /// every file first (size and SHA-256 against the manifest, frame
    /// checksums, balanced books) and writes nothing from a backup that
    /// fails. `--dir NEW`: a local cluster like `geowallet dev`'s (127.0.0.1,
    /// new ports and certificates) in the backup's shape, started and run
    /// until Ctrl-C (`--no-start`: written only). `--config NODE.toml`:
    /// that node's new, empty data dir (do it for every node of a cluster of
    /// the backup's shape, then start them).
    Restore {
        /// The backup directory (with `manifest.json`).
        #[arg(long)]
        from: PathBuf,
        /// A new directory for a local cluster.
        #[arg(long, conflicts_with = "config", required_unless_present = "config")]
        dir: Option<PathBuf>,
        /// One node's config: restore into its data dir.
        #[arg(long)]
        config: Option<PathBuf>,
        /// With `--dir`: write the cluster, do not start it.
        #[arg(long, requires = "dir")]
        no_start: bool,
    },
    /// Issue TLS certificates into a directory: the cluster's CA (made
    /// once, reused after), node certificates and client certificates.
    /// Reissuing a certificate over an existing one is a rotation: nodes
    /// load it on SIGHUP or within seconds.
    Certs {
        /// The directory of `ca.pem`, `ca.key` and the issued `NAME.pem`,
        /// `NAME.key`.
        #[arg(long)]
        dir: PathBuf,
        /// A node certificate: `ID=HOST[,HOST...]`, the hosts (names or
        /// IPs) its listeners are reached at (repeatable).
        #[arg(long = "node", value_parser = parse_node_cert)]
        nodes: Vec<(u64, Vec<String>)>,
        /// A client certificate with this name (repeatable); a name equal
        /// to a role (root, game, payments, ops, auditor) has that role.
        #[arg(long = "client")]
        clients: Vec<String>,
    },
}

fn parse_node_cert(s: &str) -> Result<(u64, Vec<String>), String> {
    let (id, hosts) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected ID=HOST[,HOST...]"))?;
    let id: u64 = id
        .parse()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| format!("{s:?}: the node id must be a number of at least 1"))?;
    let hosts: Vec<String> = hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .collect();
    Ok((id, hosts))
}

/// `geowallet verify FILE`: 0 when the export checks out, 1 otherwise.
fn verify(file: &std::path::Path) -> i32 {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: read {}: {e}", file.display());
            return 2;
        }
    };
    match geowallet_node::journal_export::verify(&text) {
        Ok(v) => {
            let chain = v
                .chain
                .map(|(first, last)| format!("chain {first} .. {last}"))
                .unwrap_or_else(|| "no events".into());
            println!("ok: {} entries, {} lines; {chain}", v.entries, v.lines);
            0
        }
        Err(problems) => {
            for p in &problems {
                println!("{}: {p}", file.display());
            }
            eprintln!(
                "error: {} does not check out ({} problems): it was edited or damaged",
                file.display(),
                problems.len()
            );
            1
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    // Colour only on a terminal: a log file gets plain `key=value` lines
    // (or one JSON object per line with GEOWALLET_LOG_FORMAT=json).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    if std::env::var("GEOWALLET_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
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
            Cmd::Verify { file } => verify(&file),
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
        Cmd::Dev {
            dir,
            demo,
            nodes,
            topology: TopologyArg::Single,
            ..
        } => dev(dir, demo, nodes).await,
        Cmd::Dev {
            dir, demo, kills, ..
        } => dev_geo(dir, demo, kills).await,
        Cmd::Certs {
            dir,
            nodes,
            clients,
        } => {
            anyhow::ensure!(
                !nodes.is_empty() || !clients.is_empty(),
                "nothing to issue: name at least one --node ID=HOST or --client NAME"
            );
            let ca = geowallet_node::certs::Ca::open_or_create(&dir, "geowallet")?;
            for (id, hosts) in nodes {
                let (cert, _) = ca.issue_node(&dir, id, &hosts)?;
                println!("issued {}", cert.display());
            }
            for name in clients {
                let (cert, _) = ca.issue_client(&dir, &name)?;
                println!("issued {}", cert.display());
            }
            Ok(())
        }
        Cmd::Restore {
            from,
            dir,
            config,
            no_start,
        } => restore(&from, dir, config, no_start).await,
        Cmd::Ctl(_) | Cmd::Verify { .. } => unreachable!("handled in main"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TopologyArg {
    Single,
    Geo,
}

fn dev_dir(dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    Ok(match dir {
        Some(d) => d,
        None => tempfile::Builder::new()
            .prefix("geowallet-dev-")
            .tempdir()?
            .keep(),
    })
}

async fn dev_geo(dir: Option<PathBuf>, run_demo: bool, kills: u32) -> anyhow::Result<()> {
    let dir = dev_dir(dir)?;
    let binary = std::env::current_exe().context("find the geowallet binary")?;
    // Loopback: election timeouts for a local network. openraft elects
    // after the leader lease (the max timeout) plus a sampled timeout, so a
    // dead leader is replaced after 450-600 ms here.
    let tuning = RaftTuning {
        heartbeat_interval_ms: 40,
        election_timeout_ms_min: 150,
        election_timeout_ms_max: 300,
        ..RaftTuning::default()
    };
    let topology = Topology::geo(2);
    let mut cluster = LocalCluster::prepare_topology(&binary, &dir, &topology, tuning)?;
    for n in 1..=topology.nodes.len() as u64 {
        if run_demo {
            // The demo's traveller shows latency before and after its
            // wallet follows it; loopback has no distance, so the nodes
            // simulate it (and the demo says so).
            cluster.node_mut(n).env.push((
                geowallet_node::wallet_service::SIMULATED_RTT_ENV.into(),
                geo_demo::SIMULATED_RTT_MS.to_string(),
            ));
        }
        cluster.spawn(n)?;
    }
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await?;
    let endpoints = cluster.endpoints().join(",");
    println!(
        "geowallet dev: geo cluster up: eu (a: node 1, b: node 2), us (a: node 3, b: node 4), tiebreaker ap (node 5)"
    );
    println!(
        "  groups 1, 2 homed in eu; 3, 4 in us; the directory on every node (group 1 leader: node {leader})"
    );
    println!("  data and logs: {}", dir.display());
    println!("  cluster file:  {}", dir.join("cluster.json").display());
    let tls = dir.join("tls");
    println!("  endpoints:     {endpoints}");
    println!(
        "  certificates:  {} (CA, one client certificate per role)",
        tls.display()
    );
    println!(
        "  try: geowallet ctl --endpoints {endpoints} --tls-dir {} status",
        tls.display()
    );
    println!(
        "       geowallet ctl --endpoints {endpoints} --tls-dir {} --region eu open --player 1 --currency EUR --tx o1",
        tls.display()
    );
    if run_demo {
        let result = geo_demo::run(&mut cluster, kills).await;
        cluster.stop_all();
        return result;
    }
    run_until_ctrl_c(cluster).await
}

async fn dev(dir: Option<PathBuf>, run_demo: bool, nodes: u64) -> anyhow::Result<()> {
    let dir = dev_dir(dir)?;
    let binary = std::env::current_exe().context("find the geowallet binary")?;
    let mut cluster = LocalCluster::start(&binary, &dir, nodes, RaftTuning::default())?;
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await?;
    let endpoints = cluster.endpoints().join(",");
    println!("geowallet dev: {nodes} nodes up, leader is node {leader}");
    println!("  data and logs: {}", dir.display());
    println!("  cluster file:  {}", dir.join("cluster.json").display());
    let tls = dir.join("tls");
    println!("  endpoints:     {endpoints}");
    println!(
        "  certificates:  {} (CA, one client certificate per role)",
        tls.display()
    );
    println!(
        "  try: geowallet ctl --endpoints {endpoints} --tls-dir {} status",
        tls.display()
    );
    if run_demo {
        let result = demo::run(&mut cluster).await;
        cluster.stop_all();
        return result;
    }
    run_until_ctrl_c(cluster).await
}

async fn restore(
    from: &std::path::Path,
    dir: Option<PathBuf>,
    config: Option<PathBuf>,
    no_start: bool,
) -> anyhow::Result<()> {
    let mut progress = |line: &str| eprintln!("restore: {line}");
    if let Some(config) = config {
        let manifest = geowallet_node::backup::verify(from)?;
        let config = NodeConfig::load(&config)?;
        for (group, index) in geowallet_node::backup::restore_node(from, &manifest, &config)? {
            progress(&format!(
                "node {}: group {group} restored at log index {index}",
                config.node_id
            ));
        }
        println!(
            "restored node {} into {}; start it with geowallet node --config",
            config.node_id,
            config.data_dir.display()
        );
        return Ok(());
    }
    let dir = dir.expect("clap requires --dir without --config");
    let binary = std::env::current_exe().context("find the geowallet binary")?;
    let mut cluster = geowallet_node::backup::restore_local(
        &binary,
        from,
        &dir,
        RaftTuning::default(),
        &mut progress,
    )?;
    let endpoints = cluster.endpoints().join(",");
    println!("geowallet restore: cluster written to {}", dir.display());
    println!("  cluster file:  {}", dir.join("cluster.json").display());
    println!("  endpoints:     {endpoints}");
    println!("  certificates:  {}", dir.join("tls").display());
    if no_start {
        return Ok(());
    }
    for id in cluster.nodes.iter().map(|n| n.id).collect::<Vec<_>>() {
        cluster.spawn(id)?;
    }
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await?;
    println!(
        "geowallet restore: {} nodes up, leader is node {leader}",
        cluster.nodes.len()
    );
    run_until_ctrl_c(cluster).await
}

async fn run_until_ctrl_c(mut cluster: LocalCluster) -> anyhow::Result<()> {
    println!("geowallet dev: running; Ctrl-C to stop");
    tokio::signal::ctrl_c().await?;
    println!("geowallet dev: stopping");
    cluster.stop_all();
    Ok(())
}
