//! What an operator sees of a running cluster: the Prometheus endpoint
//! (scraped and parsed), gRPC health and reflection (through a generic
//! client that has no `.proto` file), and request ids in the logs.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use geowallet_client::{Account, ClientConfig, ClientTls, CreditKind, DebitKind, Error, Tx};
use geowallet_node::local_cluster::ClusterFile;

use crate::cluster::TestCluster;

/// One sample of the text exposition: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus/OpenMetrics text format strictly enough to catch a
/// malformed line: `# HELP/TYPE/UNIT` comments, `# EOF` last, and samples
/// `name{k="v",...} value`.
fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.last(),
        Some(&"# EOF"),
        "exposition must end with # EOF"
    );
    for line in &lines[..lines.len() - 1] {
        if let Some(comment) = line.strip_prefix("# ") {
            let kind = comment.split(' ').next().unwrap_or_default();
            assert!(
                ["HELP", "TYPE", "UNIT"].contains(&kind),
                "bad comment line {line:?}"
            );
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels in {line:?}"));
                let labels = body
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|pair| {
                        let (k, v) = pair
                            .split_once('=')
                            .unwrap_or_else(|| panic!("bad label in {line:?}"));
                        let v = v
                            .strip_prefix('"')
                            .and_then(|v| v.strip_suffix('"'))
                            .unwrap_or_else(|| panic!("unquoted label in {line:?}"));
                        (k.to_string(), v.to_string())
                    })
                    .collect();
                (name, labels)
            }
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    samples
}

/// `GET path` on `addr` over HTTP/1.1: (status code, body).
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    (status, body.to_string())
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

// Proves each node's metrics endpoint (named in cluster.json) serves a
// well-formed exposition whose figures follow what the cluster did: one
// leader of group 1 among the nodes, the same term everywhere, the
// leader's proposals and fsyncs, the calls answered by method and status
// (a refused role included) and the ledger's refusals by code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_is_scraped_and_follows_the_cluster() {
    let tc = TestCluster::start(100_000).await;
    let file: ClusterFile = serde_json::from_str(
        &std::fs::read_to_string(tc.cluster.dir.join("cluster.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(file.nodes.len(), 3);
    for n in &file.nodes {
        assert!(n.metrics.starts_with("127.0.0.1:"), "{n:?}");
    }

    let client = tc.client();
    let a = Account::new(7, "EUR");
    client.open(&Tx::new("m-open"), &a).await.unwrap();
    client
        .credit(&Tx::new("m-dep"), &a, 100, CreditKind::Deposit)
        .await
        .unwrap();
    let err = client
        .debit(&Tx::new("m-big"), &a, 1_000, DebitKind::Withdrawal)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "insufficient_funds", "{err:?}");
    // The game role may not deposit: refused before the ledger sees it.
    let game = tc
        .cluster
        .client(ClientConfig {
            tls: Some(ClientTls::from_dir(&tc.cluster.dir.join("tls"), "game").unwrap()),
            ..Default::default()
        })
        .unwrap();
    let err = game
        .credit(&Tx::new("m-game-dep"), &a, 5, CreditKind::Deposit)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err:?}");
    // Its log line carries the request id the client library sent.
    let ours = format!("id={:x}-", std::process::id());
    let logs: String = tc
        .cluster
        .nodes
        .iter()
        .map(|n| std::fs::read_to_string(n.log_path()).unwrap_or_default())
        .collect();
    assert!(
        logs.lines()
            .any(|l| l.contains(&ours) && l.contains("method=Execute") && l.contains("denied")),
        "no refusal line with a request id {ours}...\n{}",
        tc.logs()
    );

    let leader = client
        .status_of(&tc.cluster.node(1).endpoint)
        .await
        .unwrap()
        .leader_id;
    tc.wait_all_caught_up_with(leader).await;
    let mut leaders = 0.0;
    let mut terms = Vec::new();
    for n in &file.nodes {
        let (status, body) = http_get(&n.metrics, "/metrics");
        assert_eq!(status, 200, "node {}: {body}", n.id);
        let samples = parse_exposition(&body);
        let g1 = [("group", "1")];
        leaders += value(&samples, "geowallet_group_is_leader", &g1).unwrap();
        terms.push(value(&samples, "geowallet_group_term", &g1).unwrap());
        // A follower applies once it learns the commit: only present here.
        assert!(value(&samples, "geowallet_group_applied_index", &g1).is_some());
        assert_eq!(
            value(&samples, "geowallet_group_dual_dc_degraded", &g1),
            Some(0.0)
        );
        // Every node syncs its log (followers append too).
        assert!(value(&samples, "geowallet_wal_fsync_seconds_count", &[]).unwrap() >= 1.0);
        if n.id == leader {
            assert!(value(&samples, "geowallet_group_applied_index", &g1).unwrap() >= 3.0);
            assert_eq!(
                value(&samples, "geowallet_group_leader_id", &g1),
                Some(leader as f64)
            );
            assert!(
                value(&samples, "geowallet_proposal_batch_requests_count", &g1).unwrap() >= 3.0,
                "{body}"
            );
            let execute_ok = [("method", "Execute"), ("code", "ok")];
            assert!(value(&samples, "geowallet_api_requests_total", &execute_ok).unwrap() >= 3.0);
            assert_eq!(
                value(
                    &samples,
                    "geowallet_api_refusals_total",
                    &[("method", "Execute"), ("code", "insufficient_funds")]
                ),
                Some(1.0),
                "{body}"
            );
            assert!(
                value(
                    &samples,
                    "geowallet_api_request_seconds_count",
                    &[("method", "Execute")]
                )
                .unwrap()
                    >= 4.0
            );
        }
    }
    assert_eq!(leaders, 1.0, "exactly one node leads group 1");
    assert!(terms.windows(2).all(|w| w[0] == w[1]), "terms {terms:?}");
    // The refused deposit was counted by the node that refused it.
    let denied: f64 = file
        .nodes
        .iter()
        .map(|n| {
            let samples = parse_exposition(&http_get(&n.metrics, "/metrics").1);
            value(
                &samples,
                "geowallet_api_requests_total",
                &[("method", "Execute"), ("code", "permission_denied")],
            )
            .unwrap_or(0.0)
        })
        .sum();
    assert!(denied >= 1.0, "no permission_denied counted");
    let (status, _) = http_get(&file.nodes[0].metrics, "/nothing");
    assert_eq!(status, 404);
}

/// The Python interpreter with grpcio, grpcio-reflection and protobuf:
/// `GEOWALLET_PYTHON`, else the virtualenv scripts/setup.sh makes.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("GEOWALLET_PYTHON") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    let p = PathBuf::from(home).join(".cache/geowallet-py/bin/python");
    assert!(
        p.exists(),
        "{} missing: run scripts/setup.sh (it makes a virtualenv with grpcio, \
         grpcio-reflection and protobuf), or set GEOWALLET_PYTHON",
        p.display()
    );
    p
}

// Proves a generic gRPC client with no `.proto` at hand (Python's grpcio
// and grpcio-reflection) lists the client API's services through
// reflection, sees the wallet service SERVING through the health service,
// and calls Balance, getting the balance the cluster holds; and that the
// request id the client library sends is in the serving node's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generic_client_lists_and_calls_the_api_through_reflection() {
    let tc = TestCluster::start(100_000).await;
    let client = tc.client();
    let a = Account::new(11, "EUR");
    client.open(&Tx::new("r-open"), &a).await.unwrap();
    client
        .credit(&Tx::new("r-dep"), &a, 4_321, CreditKind::Deposit)
        .await
        .unwrap();
    // Balance is a linearizable read: the leader answers it.
    let leader = client
        .status_of(&tc.cluster.node(1).endpoint)
        .await
        .unwrap()
        .leader_id;
    let endpoint = tc.cluster.node(leader).endpoint.clone();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/grpc-generic-client.py");
    let tls = tc.cluster.dir.join("tls");
    let out = tokio::process::Command::new(python())
        .arg(&script)
        .arg(&endpoint)
        .arg(&tls)
        .arg("auditor")
        .arg("11")
        .arg("EUR")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let services: Vec<&str> = answer["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    for s in ["geowallet.v1.Wallet", "grpc.health.v1.Health"] {
        assert!(services.contains(&s), "{services:?}");
    }
    assert!(
        !services.iter().any(|s| s.contains("raft")),
        "node-to-node services are not on the client listener: {services:?}"
    );
    assert_eq!(answer["health"]["status"], "SERVING", "{answer}");
    // proto3 JSON writes uint64 as a string.
    assert_eq!(
        answer["balance"]["balance"]["available"], "4321",
        "{answer}"
    );
}
