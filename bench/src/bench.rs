//! One bench run, phase by phase: cluster (ours or given), preload, audit,
//! measured run, lost outcomes resolved, audit, cluster stopped, report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use geowallet_client::{Client, ClientConfig, ClientTls};

use crate::args::{Args, Topology};
use crate::auditor::{AuditReport, audit_all};
use crate::cluster_file::{ClusterNode, read_cluster_file};
use crate::dev_cluster::DevCluster;
use crate::invariant::{Invariant, Resolution, resolve_lost};
use crate::key_picker::KeyPicker;
use crate::load_runner::LoadRunner;
use crate::node_monitor::{NodeMonitor, NodeStats};
use crate::preloader::Preloader;
use crate::progress::Progress;
use crate::report::Report;
use crate::svg_plot::SvgPlot;
use crate::tally::Tally;
use crate::wallet_set::WalletSet;
use crate::workload::now_ns;
use crate::{geowallet_binary, proc_fs};

/// Everything measured, before the report.
struct Measured {
    tally: Tally,
    elapsed: Duration,
    nodes: Vec<NodeStats>,
    bench_cpu_pct: Option<f64>,
    other_cpu_pct: Option<f64>,
    resolution: Resolution,
    invariant: Invariant,
}

/// Runs the bench (once per `--topology` cluster); `Ok(true)` when the
/// books balance afterwards.
pub async fn run(args: Args) -> anyhow::Result<bool> {
    let run_dir = make_run_dir(args.dir.as_deref())?;
    println!("geowallet-bench: run dir {}", run_dir.display());
    let runs = if args.endpoints.is_empty() {
        args.topology.runs()
    } else {
        vec![Topology::External]
    };
    if runs.len() > 1 && args.svg.is_some() {
        bail!("--svg names one file: with --topology both each run writes its own under RUN_DIR");
    }
    let mut ok = true;
    let mut figures = Vec::new();
    for topology in &runs {
        let dir = if runs.len() > 1 {
            let d = run_dir.join(topology.name());
            std::fs::create_dir_all(&d).with_context(|| format!("create {}", d.display()))?;
            println!(
                "geowallet-bench: {} cluster, run dir {}",
                topology.name(),
                d.display()
            );
            d
        } else {
            run_dir.clone()
        };
        let (good, figure) = run_one(&args, *topology, &dir).await?;
        ok &= good;
        figures.push((*topology, figure));
    }
    if let [(_, single), (_, geo)] = figures.as_slice() {
        println!(
            "geowallet-bench: geo {:.0} ops/s (p99 {:.1} ms) against single group {:.0} ops/s \
             (p99 {:.1} ms): {:.2}x the throughput",
            geo.ops_per_s,
            geo.p99_us as f64 / 1000.0,
            single.ops_per_s,
            single.p99_us as f64 / 1000.0,
            geo.ops_per_s / single.ops_per_s.max(f64::MIN_POSITIVE)
        );
    }
    Ok(ok)
}

/// The headline of one run.
struct Figure {
    ops_per_s: f64,
    p99_us: u64,
}

/// One run against one cluster, reported.
async fn run_one(
    args: &Args,
    topology: Topology,
    run_dir: &Path,
) -> anyhow::Result<(bool, Figure)> {
    let mut cluster = None;
    let (endpoints, nodes, tls) = if args.endpoints.is_empty() {
        let geowallet = geowallet_binary::locate(args.geowallet.as_deref())?;
        let dev_dir = run_dir.join("cluster");
        if dev_dir.exists() {
            bail!(
                "{} exists: give a new --dir for each run",
                dev_dir.display()
            );
        }
        let c = cluster.insert(DevCluster::start(&geowallet, &dev_dir, topology)?);
        let nodes = c.wait_ready().await?;
        let endpoints = nodes.iter().map(|n| n.endpoint.clone()).collect();
        let tls = c
            .client_tls()
            .context("geowallet dev wrote no root client certificate")?;
        println!(
            "geowallet-bench: {} cluster up ({} nodes, {})",
            topology.name(),
            nodes.len(),
            geowallet.display()
        );
        (endpoints, nodes, Some(tls))
    } else {
        let nodes = match &args.cluster_json {
            Some(path) => read_cluster_file(path)?,
            None => Vec::new(),
        };
        let tls = match &args.tls_dir {
            Some(dir) => Some(ClientTls::from_dir(dir, "root")?),
            None => None,
        };
        (args.endpoints.clone(), nodes, tls)
    };
    let measured = measure(args, endpoints, &nodes, tls).await;
    if let Some(c) = cluster.as_mut() {
        stop_cluster(c, args.keep_data);
    }
    let m = measured?;
    let ticks = proc_fs::clock_ticks_per_s();
    let report = Report {
        args,
        topology,
        tally: &m.tally,
        elapsed: m.elapsed,
        nodes: &m.nodes,
        ticks_per_s: ticks,
        bench_cpu_pct: m.bench_cpu_pct,
        other_cpu_pct: m.other_cpu_pct,
        resolution: &m.resolution,
        invariant: &m.invariant,
    };
    let svg_path = write_svg(args, run_dir, &report)?;
    report.print_tables(&svg_path);
    println!("{}", report.result_line());
    let figure = Figure {
        ops_per_s: report.ops_per_s(),
        p99_us: m.tally.histogram.value_at_quantile(0.99),
    };
    Ok((m.invariant.ok(), figure))
}

fn make_run_dir(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    match dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
            Ok(d.to_path_buf())
        }
        None => Ok(tempfile::Builder::new()
            .prefix("geowallet-bench-")
            .tempdir()
            .context("create a temp run dir")?
            .keep()),
    }
}

/// Stops our cluster and, unless asked to keep it, deletes the nodes'
/// data (logs, configs and cluster.json stay). A failed deletion is only
/// reported: the measurement stands.
fn stop_cluster(cluster: &mut DevCluster, keep_data: bool) {
    let report = cluster.stop();
    if !report.dev_exited || !report.nodes_killed.is_empty() {
        eprintln!(
            "geowallet-bench: the dev process did not stop its nodes cleanly (exited: {}); \
             killed leftover node pids {:?}",
            report.dev_exited, report.nodes_killed
        );
    }
    println!("geowallet-bench: cluster stopped");
    if keep_data {
        return;
    }
    if let Err(e) = remove_node_data(cluster.dir()) {
        eprintln!("geowallet-bench: warning: {e:#}");
    }
}

fn remove_node_data(cluster_dir: &Path) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(cluster_dir)
        .with_context(|| format!("list {}", cluster_dir.display()))?;
    for entry in entries {
        let data = entry?.path().join("data");
        if data.is_dir() {
            std::fs::remove_dir_all(&data).with_context(|| format!("remove {}", data.display()))?;
        }
    }
    Ok(())
}

fn write_svg(args: &Args, run_dir: &Path, report: &Report<'_>) -> anyhow::Result<PathBuf> {
    let path = args.svg.clone().unwrap_or_else(|| {
        run_dir.join(format!(
            "bench-{}-{}.svg",
            args.workload.name(),
            args.clients
        ))
    });
    let title = format!(
        "geowallet {} ({}, {} loop, {} clients{}): {:.0} ops/s",
        args.workload.name(),
        args.dist.name(),
        args.mode().name(),
        args.clients,
        args.rate
            .map(|r| format!(", {r}/s offered"))
            .unwrap_or_default(),
        report.ops_per_s()
    );
    let svg = SvgPlot {
        title,
        histogram: &report.tally.histogram,
    }
    .render();
    std::fs::write(&path, svg).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

/// Preload, audit, measured run, resolution, audit; the cluster keeps running.
async fn measure(
    args: &Args,
    endpoints: Vec<String>,
    nodes: &[ClusterNode],
    tls: Option<ClientTls>,
) -> anyhow::Result<Measured> {
    let monitor = NodeMonitor::start(nodes, proc_fs::clock_ticks_per_s().0);
    let config = ClientConfig {
        tls,
        ..ClientConfig::default()
    };
    let client = Client::connect(endpoints, config)?;
    let wallets = WalletSet::new(args.wallets);
    let run_tag = format!("{:x}", now_ns());
    preload(args, &client, wallets, &run_tag).await?;
    let before = audit_all(&client, &wallets)
        .await
        .context("audit before the run")?;
    let seed = args.seed.unwrap_or_else(now_ns);
    println!(
        "run: workload={} dist={} mode={} clients={} duration_s={} seed={seed}",
        args.workload.name(),
        args.dist.name(),
        args.mode().name(),
        args.clients,
        args.duration_s
    );
    let runner = Arc::new(LoadRunner {
        client: client.clone(),
        wallets,
        picker: KeyPicker::new(args.wallets, args.dist),
        workload: args.workload,
        seed,
        run_tag,
        completed: Arc::new(AtomicU64::new(0)),
    });
    let (rss_start, start_mark) = (monitor.rss_now(), monitor.cpu_mark());
    let progress = Progress::start("run ops", runner.completed.clone(), None);
    let started = Instant::now();
    let duration = Duration::from_secs(args.duration_s);
    let tally = match args.rate {
        None => runner.closed_loop(args.clients, duration).await,
        Some(rate) => runner.open_loop(rate, duration).await,
    };
    let elapsed = started.elapsed();
    let end_mark = monitor.cpu_mark();
    drop(progress);
    let bench_cpu_pct = monitor.bench_cpu_pct(&start_mark, &end_mark);
    let other_cpu_pct = monitor.other_cpu_pct(&start_mark, &end_mark);
    let (resolution, invariant) = verify(&client, &wallets, &tally, &before).await?;
    let nodes = monitor.finish(&rss_start, &start_mark, &end_mark);
    Ok(Measured {
        tally,
        elapsed,
        nodes,
        bench_cpu_pct,
        other_cpu_pct,
        resolution,
        invariant,
    })
}

/// Opens and funds the wallets, then writes `--preload-tx` records.
async fn preload(
    args: &Args,
    client: &Client,
    wallets: WalletSet,
    run_tag: &str,
) -> anyhow::Result<()> {
    let preloader = Preloader {
        client: client.clone(),
        wallets,
        run_tag: run_tag.to_owned(),
    };
    let started = Instant::now();
    preloader.wallets().await.context("preload wallets")?;
    println!(
        "preload: {} wallets open and funded in {:.1} s",
        args.wallets,
        started.elapsed().as_secs_f64()
    );
    if args.preload_tx > 0 {
        let started = Instant::now();
        preloader
            .tx_records(args.preload_tx)
            .await
            .context("preload tx records")?;
        println!(
            "preload: {} tx records in {:.1} s",
            args.preload_tx,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Resolves lost outcomes, audits again, and judges.
async fn verify(
    client: &Client,
    wallets: &WalletSet,
    tally: &Tally,
    before: &AuditReport,
) -> anyhow::Result<(Resolution, Invariant)> {
    let resolution = resolve_lost(client, wallets, &tally.unresolved).await;
    let after = audit_all(client, wallets)
        .await
        .context("audit after the run")?;
    let mut deltas = tally.deltas;
    for (d, r) in deltas.iter_mut().zip(resolution.deltas) {
        *d += r;
    }
    let unresolved = resolution.unresolved + tally.unresolved_overflow;
    let invariant = Invariant::judge(before, &after, deltas, unresolved);
    Ok((resolution, invariant))
}
