//! geowallet-jepsen end to end: real node processes in namespaces under a
//! real nemesis, checked; and teardown on Ctrl-C. Needs root (namespaces,
//! iptables), as the harness itself does.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn jepsen(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_geowallet-jepsen"));
    cmd.args(args);
    cmd
}

/// The run prefix from the "network gjXXXX*" line.
fn prefix_of(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("geowallet-jepsen: network "))
        .and_then(|rest| rest.split('*').next())
        .expect("the run names its network")
        .to_string()
}

/// Namespaces and links of this machine whose name starts with `prefix`.
fn leftovers(prefix: &str) -> Vec<String> {
    let mut found = Vec::new();
    for args in [&["netns", "list"][..], &["-o", "link", "show"][..]] {
        let out = Command::new("ip").args(args).output().expect("run ip");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if line.contains(prefix) {
                found.push(line.to_string());
            }
        }
    }
    found
}

/// Waits for `child`, reading its output meanwhile (a full pipe would
/// block it), killing it after `limit`.
fn wait_with_deadline(mut child: Child, limit: Duration) -> Output {
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("geowallet-jepsen did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Runs geowallet-jepsen with `args` to its end (within 4 minutes):
/// its exit, stdout and stderr.
fn run_to_end(args: &[&str]) -> (Output, String, String) {
    let child = jepsen(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start geowallet-jepsen");
    let out = wait_with_deadline(child, Duration::from_secs(240));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

// Proves a run under kills, pauses, partitions, clock jumps, packet loss
// and a slow link completes with every checker passing, reports the faults
// it struck, moves its calls to fresh players every 5 s (the final state
// and the audits still cover the retired ones), writes the history as JSON
// lines and EDN, and leaves no namespace, link or node behind.
#[test]
fn a_run_under_every_nemesis_passes_every_checker() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().to_str().expect("utf-8 path");
    let (out, stdout, stderr) = run_to_end(&[
        "--nemesis",
        "kill,pause,partition,clock,loss,slow,disk",
        "--time-limit-s",
        "25",
        "--seed",
        "11",
        "--rotate-s",
        "5",
        "--dir",
        d,
    ]);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("valid: true"), "{stdout}");
    for checker in [
        "linearizable",
        "bank",
        "no-lost-ack",
        "no-double-apply",
        "no-negative",
        "replicas",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.trim_start().starts_with(checker) && l.contains(" ok ")),
            "{checker} passed: {stdout}"
        );
    }
    let struck = stdout
        .lines()
        .find_map(|l| l.strip_prefix("faults struck: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<u32>().ok())
        .expect("faults counted");
    assert!(struck >= 2, "a 25 s run strikes faults: {stdout}");
    let history = std::fs::read_to_string(dir.path().join("history.jsonl")).expect("history");
    assert!(history.lines().count() > 100, "calls recorded");
    // Generation g's players start at 2 x 6 x g (six players per generation).
    let generations: std::collections::BTreeSet<u64> = history
        .lines()
        .filter(|l| l.contains(r#""type":"ok""#))
        .filter_map(|l| l.split(r#""account":""#).nth(1))
        .filter_map(|rest| rest.split('/').next()?.parse::<u64>().ok())
        .map(|player| player / 12)
        .collect();
    assert!(
        generations.len() >= 3 && generations.iter().all(|g| *g <= 6),
        "calls moved through generations {generations:?}"
    );
    assert!(
        history.contains(r#""retired":{"EUR":"#),
        "audits sum the retired players"
    );
    let edn = std::fs::read_to_string(dir.path().join("history.edn")).expect("EDN");
    assert_eq!(edn.lines().count(), history.lines().count());
    assert!(
        edn.starts_with("{:type :invoke"),
        "{}",
        &edn[..80.min(edn.len())]
    );
    assert_eq!(leftovers(&prefix_of(&stdout)), Vec::<String>::new());
    let mounts = std::fs::read_to_string("/proc/mounts").expect("read /proc/mounts");
    assert!(
        !mounts.contains(d),
        "the nodes' disks are unmounted: {mounts}"
    );
}

// Proves the harness can fail: nodes whose disk lies about fsync (unsynced
// writes reach disk once a second) lose acknowledged writes when all of
// them are killed, and the checkers say so: exit 1, not valid.
#[test]
fn a_planted_lying_fsync_is_caught() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().to_str().expect("utf-8 path");
    let (out, stdout, stderr) = run_to_end(&[
        "--nemesis",
        "kill",
        "--time-limit-s",
        "20",
        "--seed",
        "3",
        "--plant-bug",
        "lying-fsync",
        "--dir",
        d,
    ]);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("valid: false"), "{stdout}");
    assert!(
        stdout.lines().any(|l| {
            let l = l.trim_start();
            (l.starts_with("no-lost-ack") || l.starts_with("linearizable")) && l.contains("FAILED")
        }),
        "a lost acknowledged write is named: {stdout}"
    );
    assert_eq!(leftovers(&prefix_of(&stdout)), Vec::<String>::new());
}

// Proves Ctrl-C mid-run exits 130 and tears down every namespace, link and
// process the run made.
#[test]
fn ctrl_c_tears_everything_down() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().to_str().expect("utf-8 path");
    let mut child = jepsen(&[
        "--nemesis",
        "partition",
        "--time-limit-s",
        "120",
        "--seed",
        "5",
        "--dir",
        d,
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("start geowallet-jepsen");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = String::new();
    let prefix = loop {
        let line = lines
            .next()
            .expect("the run prints its network before anything else")
            .expect("read stdout");
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("geowallet-jepsen: network ") {
            break prefix_of(&line);
        }
    };
    assert!(!leftovers(&prefix).is_empty(), "the run made its network");
    std::thread::sleep(Duration::from_secs(5));
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("send SIGINT");
    let status = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = child.try_wait().expect("poll") {
                break s;
            }
            assert!(Instant::now() < deadline, "no exit after SIGINT");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert_eq!(status.code(), Some(130), "{seen}");
    assert_eq!(leftovers(&prefix), Vec::<String>::new());
    let nodes = Command::new("pgrep")
        .args(["-f", d])
        .output()
        .expect("pgrep");
    assert!(
        String::from_utf8_lossy(&nodes.stdout).trim().is_empty(),
        "node processes of the run are gone"
    );
}

// Proves a missing geowallet binary is a clear error before anything is made.
#[test]
fn missing_geowallet_binary_is_a_clear_error() {
    let out = jepsen(&[
        "--geowallet",
        "/nonexistent/geowallet",
        "--time-limit-s",
        "5",
    ])
    .output()
    .expect("run geowallet-jepsen");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/geowallet"), "{stderr}");
}

// Proves the geo shape runs under datacenter loss and region partitions
// with every checker passing: both home groups' replicas are compared,
// wallets open in both regions (so transfers cross the groups, and apply),
// and no audit is refused for a stale route (a cross-group transfer's
// refusal once poisoned the payer's route).
#[test]
fn a_geo_run_under_datacenter_loss_and_region_cuts_passes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().to_str().expect("utf-8 path");
    let (out, stdout, stderr) = run_to_end(&[
        "--topology",
        "geo",
        "--nemesis",
        "dc,region",
        "--time-limit-s",
        "25",
        "--seed",
        "4",
        "--dir",
        d,
    ]);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("valid: true"), "{stdout}");
    let replicas = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("replicas"))
        .expect("a replicas line");
    assert!(
        replicas.contains("group 1: 3 nodes identical")
            && replicas.contains("group 2: 3 nodes identical"),
        "{replicas}"
    );
    assert!(
        stdout.contains("datacenter ") || stdout.contains("region "),
        "a geo fault struck: {stdout}"
    );
    let history = std::fs::read_to_string(dir.path().join("history.jsonl")).expect("history");
    assert!(
        !history
            .lines()
            .any(|l| l.contains(r#""f":"read_all""#) && l.contains("wrong_group")),
        "an audit was refused wrong_group"
    );
    // Wallets open in both regions, so transfers cross the two groups:
    // they apply now (two-phase), and none is refused `cross_group`.
    assert!(
        !history.contains("cross_group"),
        "a transfer across the groups was refused"
    );
    assert!(
        history.contains(r#""type":"ok","f":"transfer""#),
        "transfers applied"
    );
    assert_eq!(leftovers(&prefix_of(&stdout)), Vec::<String>::new());
}

// Proves a datacenter fault without the geo shape is a clear error before anything is made.
#[test]
fn a_datacenter_fault_needs_the_geo_topology() {
    let out = jepsen(&["--nemesis", "dc", "--time-limit-s", "5"])
        .output()
        .expect("run geowallet-jepsen");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--topology geo"), "{stderr}");
}

// Proves a bit flipped in a stopped node's RocksDB files (here its
// write-ahead log) is detected, never served: the node refuses to open its
// damaged database, the other two carry on, every checker passes and the
// replica comparison names the damage.
#[test]
fn a_flipped_bit_is_detected_and_never_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().to_str().expect("utf-8 path");
    let (out, stdout, stderr) = run_to_end(&[
        "--nemesis",
        "bitflip",
        "--time-limit-s",
        "20",
        "--seed",
        "1",
        "--dir",
        d,
    ]);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("valid: true"), "{stdout}");
    assert!(
        stdout.contains(".log (") && stdout.contains(") flipped"),
        "a bit of a write-ahead log flipped: {stdout}"
    );
    let replicas = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("replicas"))
        .expect("a replicas line");
    assert!(
        replicas.contains("damage detected") && replicas.contains("Corruption"),
        "{replicas}"
    );
    assert_eq!(leftovers(&prefix_of(&stdout)), Vec::<String>::new());
}

// Proves wallets moving between the geo shape's two groups, on real
// processes, while whole datacenters die and nodes are SIGKILLed, keep
// every checker passing: each audit reads one group's own view (which
// balances by itself), the final journals merge both groups' lines, and
// moves did complete.
#[test]
fn wallets_moving_under_datacenter_loss_and_kills_pass() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().to_str().expect("utf-8 path");
    let (out, stdout, stderr) = run_to_end(&[
        "--topology",
        "geo",
        "--nemesis",
        "dc,kill",
        "--time-limit-s",
        "25",
        "--seed",
        "7",
        "--move-every-ms",
        "300",
        "--dir",
        d,
    ]);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("valid: true"), "{stdout}");
    let moves: u64 = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("geowallet-jepsen worker: "))
        .filter_map(|l| l.split_once(" wallet moves"))
        .filter_map(|(n, _)| n.parse::<u64>().ok())
        .sum();
    assert!(
        moves >= 10,
        "only {moves} wallet moves completed:\n{stderr}"
    );
}
