//! One run: network, cluster, client hosts, nemesis; then heal, converge,
//! read the final state, merge the histories, check, compare replicas.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use geowallet_client::{Client, ClientConfig, ClientTls};
use geowallet_storage::{Db, GroupId};
use geowallet_testkit::{HistoryEvent, read_history, to_edn};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::cluster::Cluster;
use crate::nemesis::{Kind, Nemesis};
use crate::net::Net;
use crate::summary::Summary;
use crate::topology::{GEO_NODES, Layout, Topology};
use crate::worker;

/// How long the cluster may take to elect its first leader.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long after the time limit a client host may take to finish.
const WORKER_GRACE: Duration = Duration::from_secs(60);
/// How long the healed cluster may take to serve the final reads.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Faults to strike, comma-separated (none: a fault-free run).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub nemesis: Vec<Kind>,
    /// Length of the workload, in seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(5..))]
    pub time_limit_s: u64,
    /// Seed of every choice the harness makes (default: from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The cluster's shape: `single` (one group on every node) or `geo`
    /// (five nodes in eu, us and ap, a group homed in each of eu and us;
    /// needed by the `dc` and `region` faults).
    #[arg(long, value_enum, default_value_t = Topology::Single)]
    pub topology: Topology,
    /// Nodes of the single topology (default 3; geo has 5).
    #[arg(long, value_parser = clap::value_parser!(u64).range(3..=9))]
    pub nodes: Option<u64>,
    /// Client hosts, each in its own namespace with its own processes.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=8))]
    pub client_hosts: u64,
    /// Concurrent client processes per client host.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub processes: u64,
    /// Every this many seconds the workload moves to fresh players (0:
    /// never). Each account then takes calls for one period only, which
    /// keeps the linearizability search of a long run small.
    #[arg(long, default_value_t = 10)]
    pub rotate_s: u64,
    /// Geo only: every client host moves a random player's wallet between
    /// eu and us (`Client::migrate`) every this many milliseconds while the
    /// workload runs (0: never). Audits then read one group's own view each
    /// and the final journals merge both groups' lines.
    #[arg(long, default_value_t = 0)]
    pub move_every_ms: u64,
    /// The geowallet binary (default: next to this executable).
    #[arg(long)]
    pub geowallet: Option<PathBuf>,
    /// Run directory: node data and logs, histories (default: a new temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Test the harness: start the nodes with a planted bug the checkers
    /// must catch. `lying-fsync`: writes not synced on their own (Raft log
    /// appends, applied state) skip RocksDB's write-ahead log and reach
    /// disk only in a flush once a second, so entries are acknowledged
    /// before they are durable and a killed node comes back without them.
    #[arg(long, value_parser = ["lying-fsync"])]
    pub plant_bug: Option<String>,
}

/// How long, after the faults healed, wallet moves and transfers between
/// groups may take to finish by themselves (leaders rescan every 10 s).
const TRANSIT_SETTLE_WITHIN: Duration = Duration::from_secs(40);

pub async fn run(args: RunArgs) -> anyhow::Result<bool> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "geowallet-jepsen needs root: it makes network namespaces, veth pairs and iptables rules"
        );
    }
    let kinds = {
        let mut k = args.nemesis.clone();
        k.sort();
        k.dedup();
        k
    };
    let nodes = match (args.topology, args.nodes) {
        (Topology::Single, n) => n.unwrap_or(3),
        (Topology::Geo, None | Some(GEO_NODES)) => GEO_NODES,
        (Topology::Geo, Some(n)) => {
            bail!("--topology geo has {GEO_NODES} nodes; drop --nodes {n}")
        }
    };
    if args.topology != Topology::Geo
        && let Some(k) = kinds.iter().find(|k| k.needs_geo())
    {
        bail!(
            "the {} fault needs regions and datacenters: add --topology geo",
            k.name()
        );
    }
    if args.move_every_ms > 0 && args.topology != Topology::Geo {
        bail!("--move-every-ms moves wallets between regions: add --topology geo");
    }
    let layout = Layout::new(args.topology, nodes);
    let seed = args
        .seed
        .unwrap_or_else(|| worker::monotonic_ns() ^ u64::from(std::process::id()));
    let binary = locate_geowallet(args.geowallet.as_deref())?;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
            d.clone()
        }
        None => std::env::temp_dir().join(format!("geowallet-jepsen-{seed:016x}")),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    println!(
        "geowallet-jepsen: seed {seed}, {} s, nemesis {}, {:?} topology, {} nodes, {} client hosts x {} processes, run dir {}",
        args.time_limit_s,
        if kinds.is_empty() {
            "none".to_string()
        } else {
            kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(",")
        },
        args.topology,
        nodes,
        args.client_hosts,
        args.processes,
        dir.display()
    );
    let prefix = format!("gj{:04x}", std::process::id() & 0xffff);
    let net = Net::create(&prefix, nodes as usize, args.client_hosts as usize)?;
    println!(
        "geowallet-jepsen: network {prefix}*: bridge {}, nodes {}",
        net.bridge_ip(),
        net.nodes
            .iter()
            .map(|h| h.ip.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut cluster = Cluster::prepare(
        &binary,
        &dir,
        &net,
        &layout,
        kinds.contains(&Kind::Clock),
        kinds.contains(&Kind::Disk),
        args.plant_bug
            .iter()
            .map(|b| (geowallet_storage::PLANT_BUG_ENV.to_string(), b.clone()))
            .collect(),
    )?;
    cluster.start_all()?;
    let endpoints: Vec<String> = (0..net.nodes.len()).map(|i| net.node_endpoint(i)).collect();
    let tls_dir = dir.join("tls");
    let probe = Client::connect(
        endpoints.clone(),
        ClientConfig {
            rpc_timeout: Duration::from_millis(500),
            retry_budget: Duration::from_secs(10),
            tls: Some(ClientTls::from_dir(&tls_dir, "root")?),
            ..ClientConfig::default()
        },
    )?;
    wait_leaders(&net, &probe, &layout, READY_TIMEOUT).await?;

    let started = Instant::now();
    let rotate_base_ns = worker::monotonic_ns();
    let until = started + Duration::from_secs(args.time_limit_s);
    let mut workers = Vec::new();
    for (j, host) in net.clients.iter().enumerate() {
        let history = dir.join(format!("history-c{}.jsonl", j + 1));
        let surprises = dir.join(format!("surprises-c{}.json", j + 1));
        let mut command = tokio::process::Command::new("ip");
        command
            .args(["netns", "exec", &host.ns])
            .arg(std::env::current_exe().context("find this executable")?)
            .arg("worker")
            .arg("--endpoints")
            .arg(endpoints.join(","))
            .arg("--tls-dir")
            .arg(&tls_dir)
            .arg("--history")
            .arg(&history)
            .arg("--surprises")
            .arg(&surprises)
            .arg("--seed")
            .arg((seed ^ (0x9E37_79B9_7F4A_7C15u64.wrapping_mul(j as u64 + 1))).to_string())
            .arg("--process-base")
            .arg(((j as u64 + 1) * 1_000_000_000).to_string())
            .arg("--processes")
            .arg(args.processes.to_string())
            .arg("--time-limit-s")
            .arg(args.time_limit_s.to_string())
            .arg("--rotate-s")
            .arg(args.rotate_s.to_string())
            .arg("--rotate-base-ns")
            .arg(rotate_base_ns.to_string());
        if let Some(region) = layout.client_region(j) {
            command.arg("--region").arg(region);
        }
        if args.move_every_ms > 0 {
            command
                .arg("--move-every-ms")
                .arg(args.move_every_ms.to_string())
                .arg("--groups")
                .arg(layout.group_ids().join(","));
        }
        let child = command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("start a client host")?;
        workers.push((child, history, surprises));
    }
    let mut said = Vec::new();
    for (child, _, _) in &mut workers {
        let out = child.stdout.take().context("a client host's stdout")?;
        said.push(tokio::io::BufReader::new(out).lines());
    }
    let mut nemesis = Nemesis::new(kinds.clone(), layout.clone(), seed);
    let faults = nemesis
        .run(&mut cluster, &net, &probe, started, until)
        .await?;
    for lines in &mut said {
        let done = async {
            while let Some(line) = lines.next_line().await? {
                if line == worker::WORKLOAD_DONE {
                    return Ok(true);
                }
            }
            Ok::<_, std::io::Error>(false)
        };
        match tokio::time::timeout_at((until + WORKER_GRACE).into(), done).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => bail!("a client host exited before its workload was done"),
            Ok(Err(e)) => bail!("a client host's output: {e}"),
            Err(_) => bail!("a client host did not finish its workload in time"),
        }
    }
    println!("geowallet-jepsen: workload done; healing and converging");
    nemesis.heal(&mut cluster, &net)?;
    cluster.start_all()?;
    wait_leaders(&net, &probe, &layout, CONVERGE_TIMEOUT).await?;
    println!("geowallet-jepsen: asking again every write that ended indeterminate");
    let mut worker_errors = Vec::new();
    for (child, _, _) in &mut workers {
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(b"healed\n").await?;
        }
        match tokio::time::timeout(WORKER_GRACE, child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => worker_errors.push(format!("a client host exited {status}")),
            Ok(Err(e)) => worker_errors.push(format!("a client host: {e}")),
            Err(_) => worker_errors.push("a client host did not finish in time".into()),
        }
    }
    if !worker_errors.is_empty() {
        bail!("client hosts failed: {worker_errors:?}");
    }
    let history_path = dir.join("history.jsonl");
    merge_histories(
        &workers
            .iter()
            .map(|(_, h, _)| h.clone())
            .collect::<Vec<_>>(),
        &history_path,
    )?;
    let history = read_history(&history_path)?;
    let universe = geowallet_harness::history_accounts(&history).map_err(|e| anyhow::anyhow!(e))?;
    // With wallets moving, each one's journal lines are in every group it
    // was in.
    let journal_groups: Vec<u64> = if args.move_every_ms > 0 {
        layout
            .group_ids()
            .iter()
            .filter_map(|g| g.parse().ok())
            .collect()
    } else {
        Vec::new()
    };
    let final_state = geowallet_harness::final_state_in_groups(&probe, &universe, &journal_groups)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let mut surprises = Vec::new();
    // Geo: every wallet move and transfer between the groups finished.
    let groups: Vec<u64> = layout
        .group_ids()
        .iter()
        .filter_map(|g| g.parse().ok())
        .collect();
    if groups.len() > 1
        && let Err(e) =
            geowallet_harness::nothing_in_transit(&probe, &groups, TRANSIT_SETTLE_WITHIN).await
    {
        surprises.push(e);
    }
    for (_, _, s) in &workers {
        let text = std::fs::read_to_string(s).with_context(|| format!("read {}", s.display()))?;
        let list: Vec<String> = serde_json::from_str(&text)?;
        surprises.extend(list);
    }
    println!(
        "geowallet-jepsen: checking {} events over {} accounts",
        history.len(),
        universe.len()
    );
    // On a blocking thread, so Ctrl-C during a long check still tears the
    // run down at once (the check is abandoned with the process).
    let checked = {
        let (path, state) = (history_path.clone(), final_state.clone());
        tokio::task::spawn_blocking(move || geowallet_harness::check_all(&path, &state))
            .await
            .context("the checker thread died")?
            .map_err(|e| anyhow::anyhow!(e))?
    };
    // Replicas are compared on disk: first let every one apply what its
    // group had committed (a node restarted late may still be catching up).
    if let Err(lag) = wait_replicas_applied(&net, &probe, CONVERGE_TIMEOUT).await {
        println!("geowallet-jepsen: {lag}");
    }
    cluster.stop_all();
    let replicas = compare_replicas(&cluster, &layout);
    let edn_path = dir.join("history.edn");
    std::fs::write(&edn_path, to_edn(&history))
        .with_context(|| format!("write {}", edn_path.display()))?;
    let summary = Summary {
        seed,
        history: &history,
        faults: &faults,
        checked: &checked,
        replicas: &replicas,
        surprises: &surprises,
        history_path: &history_path,
        edn_path: &edn_path,
    };
    summary.print();
    Ok(summary.valid())
}

fn locate_geowallet(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()
            .context("find this executable")?
            .with_file_name("geowallet"),
    };
    if !path.is_file() {
        bail!(
            "no geowallet binary at {}: build it (cargo build --release -p geowallet-node) or pass --geowallet PATH",
            path.display()
        );
    }
    Ok(path)
}

/// Waits until some node names a leader of every group of `layout` (and,
/// in the geo shape, of the directory).
async fn wait_leaders(
    net: &Net,
    probe: &Client,
    layout: &Layout,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut wanted: Vec<u64> = layout.groups.iter().map(|g| g.id).collect();
    if layout.topology == Topology::Geo {
        wanted.push(0);
    }
    loop {
        let mut led = std::collections::BTreeSet::new();
        for i in 0..net.nodes.len() {
            if let Ok(s) = probe.status_of(&net.node_endpoint(i)).await {
                if s.groups.is_empty() && s.leader_id > 0 {
                    led.insert(1);
                }
                led.extend(s.groups.iter().filter(|g| g.leader_id > 0).map(|g| g.id));
            }
        }
        if wanted.iter().all(|g| led.contains(g)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "groups {wanted:?} not all led within {timeout:?} (led: {led:?}); see the node.log files"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until every node has applied, in each group it hosts, at least
/// what that group had committed when the wait began. `Err` names the
/// replicas still behind at `timeout`.
async fn wait_replicas_applied(net: &Net, probe: &Client, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut targets: std::collections::BTreeMap<u64, u64> = std::collections::BTreeMap::new();
    for i in 0..net.nodes.len() {
        if let Ok(s) = probe.status_of(&net.node_endpoint(i)).await {
            for g in &s.groups {
                let t = targets.entry(g.id).or_default();
                *t = (*t).max(g.committed_index);
            }
        }
    }
    loop {
        let mut behind = Vec::new();
        for i in 0..net.nodes.len() {
            match probe.status_of(&net.node_endpoint(i)).await {
                Ok(s) => {
                    for g in &s.groups {
                        let target = targets.get(&g.id).copied().unwrap_or(0);
                        if g.applied_index < target {
                            behind.push(format!(
                                "n{} group {} applied {} < {target}",
                                s.node_id, g.id, g.applied_index
                            ));
                        }
                    }
                }
                Err(e) => behind.push(format!("node {i}: {e}")),
            }
        }
        if behind.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "replicas still behind after {timeout:?}: {}",
                behind.join(", ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One history of every client host's events, in time order (every host
/// reads the same monotonic clock; equal times stay in host order, and the
/// checker treats them as concurrent).
fn merge_histories(parts: &[PathBuf], out: &Path) -> anyhow::Result<()> {
    let mut events: Vec<(u64, usize, usize, HistoryEvent)> = Vec::new();
    for (host, path) in parts.iter().enumerate() {
        for (line, e) in read_history(path)?.into_iter().enumerate() {
            events.push((e.time_ns, host, line, e));
        }
    }
    events.sort_by_key(|(t, h, l, _)| (*t, *h, *l));
    let mut text = String::new();
    for (_, _, _, e) in &events {
        text.push_str(&serde_json::to_string(e)?);
        text.push('\n');
    }
    std::fs::write(out, text).with_context(|| format!("write {}", out.display()))
}

/// Every group's replicas, read from the stopped nodes' RocksDB: identical
/// accounts, holds, tx records and system positions, and books that
/// balance per currency. A node with a flipped bit may instead report the
/// damage (a checksum or corruption error); it may never differ silently.
fn compare_replicas(cluster: &Cluster, layout: &Layout) -> Result<String, String> {
    let dbs: Vec<Result<Db, String>> = cluster
        .nodes
        .iter()
        .map(|node| {
            let path = node.data_dir().join("db");
            Db::open(&path).map_err(|e| format!("open {}: {e}", path.display()))
        })
        .collect();
    let mut said = Vec::new();
    for group in &layout.groups {
        let mut states = Vec::new();
        for &i in &group.replicas {
            let node = &cluster.nodes[i];
            let rows = dbs[i].as_ref().map_err(Clone::clone).and_then(|db| {
                db.state_store(GroupId(group.id))
                    .dump()
                    .map_err(|e| format!("read its ledger rows: {e}"))
            });
            match rows {
                Ok(rows) => states.push((node.id, rows)),
                Err(e) if !cluster.flipped(i).is_empty() && reports_damage(&e) => {
                    said.push(format!("n{}: damage detected ({e})", node.id));
                }
                Err(e) => return Err(format!("n{}: {e}", node.id)),
            }
        }
        said.push(format!("group {}: {}", group.id, compare_group(&states)?));
    }
    Ok(said.join("; "))
}

/// Whether a storage error says stored bytes are damaged.
fn reports_damage(error: &str) -> bool {
    let error = error.to_lowercase();
    error.contains("corrupt") || error.contains("checksum")
}

fn compare_group(states: &[(u64, geowallet_ledger::MemRows)]) -> Result<String, String> {
    let Some((first_id, first)) = states.first() else {
        return Err("no replica could be read".into());
    };
    for (id, rows) in states {
        let unbalanced: Vec<_> = rows
            .currency_totals()
            .into_iter()
            .filter(|(_, t)| *t != 0)
            .collect();
        if !unbalanced.is_empty() {
            return Err(format!("n{id}: books do not balance: {unbalanced:?}"));
        }
    }
    for (id, rows) in &states[1..] {
        let same = rows.accounts == first.accounts
            && rows.holds == first.holds
            && rows.tx_records == first.tx_records
            && rows.system == first.system;
        if !same {
            return Err(format!(
                "n{id} differs from n{first_id}: {} vs {} accounts, {} vs {} tx records",
                rows.accounts.len(),
                first.accounts.len(),
                rows.tx_records.len(),
                first.tx_records.len()
            ));
        }
    }
    Ok(format!(
        "{} nodes identical: {} accounts, {} holds, {} tx records; books balance",
        states.len(),
        first.accounts.len(),
        first.holds.len(),
        first.tx_records.len()
    ))
}
