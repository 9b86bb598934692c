use std::process::Command;

use geowallet_node::local_cluster::LocalCluster;

use crate::cluster::TestCluster;

/// `geowallet ctl` against `cluster`, as its `root` client.
pub fn ctl(cluster: &LocalCluster, args: &[&str]) -> (i32, String, String) {
    let eps = cluster.endpoints().join(",");
    let tls = cluster.dir.join("tls");
    ctl_at(&eps, Some(&tls), &[&["--role", "root"][..], args].concat())
}

/// `geowallet ctl --endpoints endpoints [--tls-dir tls_dir] args`.
pub fn ctl_at(
    endpoints: &str,
    tls_dir: Option<&std::path::Path>,
    args: &[&str],
) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_geowallet"));
    cmd.args(["ctl", "--endpoints", endpoints]);
    if let Some(dir) = tls_dir {
        cmd.arg("--tls-dir").arg(dir);
    }
    let out = cmd.args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

// The ctl contract scripts rely on: --json prints one object with available/held; a refusal exits
// non-zero with one clear line on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_json_and_refusal_contract() {
    let tc = TestCluster::start(100_000).await;
    let w = ["--player", "5", "--currency", "EUR"];
    let (code, _, err) = ctl(
        &tc.cluster,
        &[&["open"][..], &w, &["--tx", "ctl-open"]].concat(),
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = ctl(
        &tc.cluster,
        &[
            &["--json", "credit"][..],
            &w,
            &["--tx", "ctl-dep", "--amount", "1234"],
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["available"], 1234);
    // A retry that passes the printed creation time gets the first result back unchanged.
    let created = v["created_at_ns"].as_u64().unwrap().to_string();
    let retry = [
        &["--json", "credit"][..],
        &w,
        &["--tx", "ctl-dep", "--amount", "1234"],
    ]
    .concat();
    let (code, again, err) = ctl(
        &tc.cluster,
        &[&retry[..], &["--created-at-ns", &created]].concat(),
    );
    assert_eq!(code, 0, "{err}");
    let again: serde_json::Value = serde_json::from_str(again.trim()).unwrap();
    assert_eq!(
        (again["available"].as_u64(), again["log_index"].as_u64()),
        (Some(1234), v["log_index"].as_u64())
    );
    let (code, out, _) = ctl(&tc.cluster, &[&["--json", "balance"][..], &w].concat());
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (v["available"].as_u64(), v["held"].as_u64()),
        (Some(1234), Some(0))
    );
    let (code, out, err) = ctl(
        &tc.cluster,
        &[&["debit"][..], &w, &["--tx", "ctl-bet", "--amount", "5000"]].concat(),
    );
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("insufficient funds: 1234 available, 5000 requested"),
        "{err}"
    );
    let (code, _, err) = ctl(
        &tc.cluster,
        &[&["credit"][..], &w, &["--tx", "ctl-dep", "--amount", "1"]].concat(),
    );
    assert_eq!(
        code, 1,
        "reusing a tx id for a different command is refused"
    );
    assert!(err.contains("tx_id_conflict"), "{err}");
    // Same id, another creation time: a conflict, never a second apply.
    let later = (created.parse::<u64>().unwrap() + 1).to_string();
    let (code, _, err) = ctl(
        &tc.cluster,
        &[&retry[..], &["--created-at-ns", &later]].concat(),
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("tx_id_conflict"), "{err}");
    // Created before the window: outcome unknown (exit 3), with how to retry, on one line.
    let old = (created.parse::<u64>().unwrap() - 8 * 24 * 3600 * 1_000_000_000).to_string();
    let (code, _, err) = ctl(
        &tc.cluster,
        &[
            &["credit"][..],
            &w,
            &["--tx", "ctl-old", "--amount", "1", "--created-at-ns", &old],
        ]
        .concat(),
    );
    assert_eq!(code, 3, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("too old to tell") && err.contains("[tx_id_expired]"),
        "{err}"
    );
    assert!(
        err.contains(&format!("--tx ctl-old --created-at-ns {old}")),
        "{err}"
    );
    let (code, out, err) = ctl(&tc.cluster, &[&["--json", "journal"][..], &w].concat());
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let seqs: Vec<_> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64())
        .collect();
    assert_eq!(seqs, [Some(1), Some(2)], "open and the one credit: {v}");
    let (code, out, err) = ctl(
        &tc.cluster,
        &["--json", "audit", "--players", "5,6", "--currency", "EUR"],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["accounts"][0]["available"], 1234);
    assert_eq!(v["accounts"][1]["exists"], false);
    assert_eq!(
        (
            v["totals"]["EUR"]["players"].as_str(),
            v["balanced"].as_bool()
        ),
        (Some("1234"), Some(true))
    );
    let (code, out, _) = ctl(&tc.cluster, &["--json", "status"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["nodes"].as_array().unwrap().len(), 3);
    // Clocks agree on one machine: nobody refuses writes, and the leader
    // has measured its peers' clocks.
    let nodes = v["nodes"].as_array().unwrap();
    assert!(
        nodes
            .iter()
            .all(|n| n["clock_refusing_writes"] == serde_json::json!(false)),
        "{v}"
    );
    let leader = nodes.iter().find(|n| n["state"] == "leader").unwrap();
    assert_eq!(
        leader["clock_offsets_ns"].as_object().unwrap().len(),
        2,
        "{v}"
    );
}
