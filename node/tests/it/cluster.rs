use std::path::Path;
use std::time::Duration;

use geowallet_client::{Client, ClientConfig};
use geowallet_node::config::RaftTuning;
use geowallet_node::local_cluster::LocalCluster;

/// Fast elections so failover tests finish quickly; small snapshot threshold
/// so a restarted node can be made to catch up by snapshot.
pub fn tuning(snapshot_logs_since_last: u64) -> RaftTuning {
    RaftTuning {
        heartbeat_interval_ms: 50,
        election_timeout_ms_min: 300,
        election_timeout_ms_max: 600,
        snapshot_logs_since_last,
        logs_kept_after_snapshot: 10,
        ..RaftTuning::default()
    }
}

/// Writes configs for `topology` under a new temp dir (named with
/// `prefix`) and starts every node; the dir lives as long as the result.
pub fn start_topology(
    prefix: &str,
    topology: &geowallet_node::local_cluster::Topology,
) -> (LocalCluster, tempfile::TempDir) {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_geowallet"));
    let mut cluster =
        LocalCluster::prepare_topology(binary, dir.path(), topology, tuning(100_000)).unwrap();
    for id in 1..=topology.nodes.len() as u64 {
        cluster.spawn(id).unwrap();
    }
    (cluster, dir)
}

/// The geo shape (one group per region) with every node's crash points
/// armed (`geowallet_node::mover::MOVE_CRASH_DIR_ENV`): a file
/// `<player>-<point>` in the returned directory kills the node passing it.
pub fn start_geo_with_crash_points(
    prefix: &str,
) -> (LocalCluster, tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    let crash = dir.path().join("crash");
    std::fs::create_dir_all(&crash).unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_geowallet"));
    let topology = geowallet_node::local_cluster::Topology::geo(1);
    let mut cluster = LocalCluster::prepare_topology(
        binary,
        &dir.path().join("cluster"),
        &topology,
        tuning(100_000),
    )
    .unwrap();
    for node in cluster.nodes.iter_mut() {
        let var = geowallet_node::mover::MOVE_CRASH_DIR_ENV.to_string();
        node.env.push((var, crash.display().to_string()));
    }
    for id in 1..=topology.nodes.len() as u64 {
        cluster.spawn(id).unwrap();
    }
    (cluster, dir, crash)
}

pub struct TestCluster {
    pub cluster: LocalCluster,
    pub _dir: tempfile::TempDir,
}

impl TestCluster {
    pub async fn start(snapshot_logs_since_last: u64) -> TestCluster {
        TestCluster::start_tuned(tuning(snapshot_logs_since_last)).await
    }

    pub async fn start_tuned(tuning: RaftTuning) -> TestCluster {
        let dir = tempfile::Builder::new()
            .prefix("geowallet-it-")
            .tempdir()
            .unwrap();
        let cluster = LocalCluster::start(
            Path::new(env!("CARGO_BIN_EXE_geowallet")),
            dir.path(),
            3,
            tuning,
        )
        .unwrap();
        let tc = TestCluster { cluster, _dir: dir };
        tc.cluster
            .wait_for_leader(Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{e:#}\n{}", tc.logs()));
        tc
    }

    pub fn client(&self) -> Client {
        self.cluster
            .client(ClientConfig {
                retry_budget: Duration::from_secs(20),
                ..Default::default()
            })
            .unwrap()
    }

    /// Node `id`'s applied log index as it reports it (0 if unreachable).
    pub async fn applied_index(&self, id: u64) -> u64 {
        let endpoint = self.cluster.node(id).endpoint.clone();
        match self.client().status_of(&endpoint).await {
            Ok(s) => s.applied_index,
            Err(_) => 0,
        }
    }

    /// Waits (at most 30 s) until every node applied what node `id` has
    /// applied now: a node slow to start on a busy machine may not have
    /// received a single entry when the writes a test made were acknowledged.
    pub async fn wait_all_caught_up_with(&self, id: u64) {
        let target = self.applied_index(id).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        for n in &self.cluster.nodes {
            while self.applied_index(n.id).await < target {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "node {} did not apply index {target} within 30 s\n{}",
                    n.id,
                    self.logs()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Every node's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for n in &self.cluster.nodes {
            let text = std::fs::read_to_string(n.log_path()).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            out.push_str(&format!("--- node {} log (last 40 lines) ---\n", n.id));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}
