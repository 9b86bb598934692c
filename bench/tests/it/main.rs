//! Runs the built `geowallet-bench` binary against clusters it starts
//! itself (it finds `geowallet` next to itself: build it first with
//! `cargo build --release -p geowallet-node`). Every run is bounded by a
//! deadline; on expiry the bench gets SIGINT (it stops its cluster) and
//! then SIGKILL.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BENCH: &str = env!("CARGO_BIN_EXE_geowallet-bench");
/// Longest a tiny bench run may take (cluster start, preload, run, stop).
const RUN_TIMEOUT: Duration = Duration::from_secs(150);
const POLL: Duration = Duration::from_millis(50);

struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

fn spawn_bench(args: &[&str]) -> Child {
    Command::new(BENCH)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start geowallet-bench")
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// Collects the child's output lines as they come.
fn pipe_lines(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for `child` until `deadline`; past it, SIGINT, then SIGKILL.
fn finish(mut child: Child, deadline: Instant) -> Finished {
    // A caller may have taken stdout to watch it; then it is not collected.
    let out = child.stdout.take().map(pipe_lines);
    let err = child.stderr.take().map(pipe_lines);
    let mut interrupted = false;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline && !interrupted {
            signal(child.id(), "INT");
            interrupted = true;
        }
        if Instant::now() > deadline + Duration::from_secs(30) {
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(POLL);
    };
    let collect = |rx: Option<mpsc::Receiver<String>>| {
        rx.map(|rx| rx.iter().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    };
    let f = Finished {
        status,
        stdout: collect(out),
        stderr: collect(err),
    };
    assert!(
        !interrupted,
        "bench exceeded {RUN_TIMEOUT:?}\n{}\n{}",
        f.stdout, f.stderr
    );
    f
}

fn run_bench(args: &[&str]) -> Finished {
    finish(spawn_bench(args), Instant::now() + RUN_TIMEOUT)
}

/// The fields of the one RESULT line.
fn result_fields(f: &Finished) -> HashMap<String, String> {
    let lines: Vec<&str> = f
        .stdout
        .lines()
        .filter(|l| l.starts_with("RESULT "))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "exactly one RESULT line\n{}\n{}",
        f.stdout,
        f.stderr
    );
    lines[0]
        .split_whitespace()
        .skip(1)
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("key=value");
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn num(fields: &HashMap<String, String>, key: &str) -> u64 {
    fields[key]
        .parse()
        .unwrap_or_else(|_| panic!("{key}={} is not a number", fields[key]))
}

/// The pids in a cluster.json, `None` for a stopped node.
fn cluster_pids(path: &Path) -> Vec<Option<u64>> {
    let text = std::fs::read_to_string(path).expect("read cluster.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("cluster.json is JSON");
    json["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["pid"].as_u64())
        .collect()
}

fn assert_clean_success(f: &Finished, dir: &Path, svg_name: &str) -> HashMap<String, String> {
    assert!(
        f.status.success(),
        "exit {:?}\n{}\n{}",
        f.status,
        f.stdout,
        f.stderr
    );
    let r = result_fields(f);
    assert_eq!(r["system"], "geowallet");
    assert!(num(&r, "ops_per_s") > 0, "{r:?}");
    assert_eq!(num(&r, "errors"), 0, "{}", f.stdout);
    assert!(num(&r, "rss_kb_max") > 0, "{r:?}");
    assert_eq!(r["invariant"], "ok", "{}", f.stdout);
    assert_eq!(r["sum_check"], "ok", "{}", f.stdout);
    let svg = std::fs::read_to_string(dir.join(svg_name)).expect("SVG written in the run dir");
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
    let pids = cluster_pids(&dir.join("cluster/cluster.json"));
    assert!(
        pids.len() == 3 && pids.iter().all(Option::is_none),
        "nodes stopped: {pids:?}"
    );
    assert!(!dir.join("cluster/n1/data").exists(), "node data removed");
    r
}

// Proves a closed-loop bet-settle run with preloaded tx records ends clean with every field.
#[test]
fn bet_settle_closed_loop_with_preload() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().to_str().expect("utf-8 path");
    let f = run_bench(&[
        "--workload",
        "bet-settle",
        "--clients",
        "4",
        "--duration-s",
        "2",
        "--wallets",
        "50",
        "--preload-tx",
        "200",
        "--dir",
        d,
    ]);
    let r = assert_clean_success(&f, dir.path(), "bench-bet-settle-4.svg");
    assert_eq!(num(&r, "preload_tx"), 200);
    assert_eq!(num(&r, "wallets"), 50);
    assert_eq!(num(&r, "clients"), 4);
    assert_eq!(
        (r["workload"].as_str(), r["mode"].as_str()),
        ("bet-settle", "closed")
    );
    assert!(f.stdout.contains("p99.9"), "percentile table printed");
}

// Proves an open-loop wallet run at a fixed rate ends clean, with every due op sent.
#[test]
fn wallet_open_loop_at_fixed_rate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().to_str().expect("utf-8 path");
    let f = run_bench(&[
        "--workload",
        "wallet",
        "--clients",
        "4",
        "--duration-s",
        "2",
        "--wallets",
        "50",
        "--rate",
        "200",
        "--dist",
        "hot",
        "--dir",
        d,
    ]);
    let r = assert_clean_success(&f, dir.path(), "bench-wallet-4.svg");
    assert_eq!(
        (r["mode"].as_str(), r["rate"].as_str(), r["dist"].as_str()),
        ("open", "200", "hot")
    );
    assert_eq!(num(&r, "ops"), 400, "2 s at 200/s, none dropped");
    assert_eq!(num(&r, "dropped"), 0);
    assert_eq!(num(&r, "preload_tx"), 0);
}

// Proves SIGINT mid-run stops the bench with 130 and leaves none of its nodes running.
#[test]
fn sigint_mid_run_leaves_no_node_running() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().to_str().expect("utf-8 path");
    let mut child = spawn_bench(&[
        "--duration-s",
        "120",
        "--wallets",
        "20",
        "--clients",
        "2",
        "--dir",
        d,
    ]);
    let out = pipe_lines(child.stdout.take().expect("piped"));
    let deadline = Instant::now() + RUN_TIMEOUT;
    // Wait for the measured run to start, so every node is up and busy.
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match out.recv_timeout(left) {
            Ok(line) if line.starts_with("run:") => break,
            Ok(_) => {}
            Err(e) => panic!("no run line before the deadline: {e}"),
        }
    }
    let pids: Vec<u64> = cluster_pids(&dir.path().join("cluster/cluster.json"))
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(pids.len(), 3, "three nodes running");
    signal(child.id(), "INT");
    let f = finish(child, Instant::now() + Duration::from_secs(60));
    assert_eq!(f.status.code(), Some(130), "{}", f.stderr);
    for pid in pids {
        let alive =
            std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.contains(d));
        assert!(!alive, "node pid {pid} still running");
    }
}

// Proves a missing geowallet binary is a clear error, not a hang or a panic.
#[test]
fn missing_geowallet_binary_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().to_str().expect("utf-8 path");
    let f = run_bench(&["--geowallet", "/nonexistent/geowallet", "--dir", d]);
    assert_eq!(f.status.code(), Some(1));
    assert!(
        f.stderr.contains("--geowallet /nonexistent/geowallet"),
        "{}",
        f.stderr
    );
    assert!(!f.stdout.contains("RESULT"));
}

// Proves `--topology both` measures a single group, then the geo cluster
// (five nodes, four shard groups), in one run: a RESULT line for each,
// labelled, both audits clean, every node of both clusters stopped, and a
// line comparing their throughput.
#[test]
fn topology_both_measures_single_and_geo_in_one_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().to_str().expect("utf-8 path");
    let f = run_bench(&[
        "--topology",
        "both",
        "--clients",
        "4",
        "--duration-s",
        "1",
        "--wallets",
        "40",
        "--dir",
        d,
    ]);
    assert!(
        f.status.success(),
        "exit {:?}\n{}\n{}",
        f.status,
        f.stdout,
        f.stderr
    );
    let results: Vec<HashMap<String, String>> = f
        .stdout
        .lines()
        .filter(|l| l.starts_with("RESULT "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .collect();
    let labels: Vec<&str> = results.iter().map(|r| r["topology"].as_str()).collect();
    assert_eq!(labels, ["single", "geo"], "{}", f.stdout);
    for (r, (name, nodes)) in results.iter().zip([("single", 3), ("geo", 5)]) {
        assert!(num(r, "ops_per_s") > 0, "{r:?}");
        assert_eq!(num(r, "errors"), 0, "{}", f.stdout);
        assert_eq!(r["invariant"], "ok", "{}", f.stdout);
        let pids = cluster_pids(&dir.path().join(name).join("cluster/cluster.json"));
        assert!(
            pids.len() == nodes && pids.iter().all(Option::is_none),
            "{name}: nodes stopped: {pids:?}"
        );
    }
    assert!(
        f.stdout.contains("geowallet-bench: geo ") && f.stdout.contains("x the throughput"),
        "{}",
        f.stdout
    );
}
