//! A cluster of real `geowallet node` processes on 127.0.0.1, each with its
//! own data dir: what `geowallet dev` runs and what integration tests kill
//! and restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use geowallet_client::{Client, ClientConfig, ClientTls};
use serde::{Deserialize, Serialize};

use crate::certs::{Ca, ROLES};
use crate::config::{DEFAULT_REGION, GroupConfig, NodeConfig, PeerConfig, RaftTuning};
use crate::tls::TlsConfig;

/// The names a local cluster's node certificates are valid for.
const LOOPBACK_HOSTS: [&str; 2] = ["127.0.0.1", "localhost"];

/// `DIR/cluster.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterFile {
    pub nodes: Vec<ClusterNode>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterNode {
    pub id: u64,
    /// `host:port` of the client API.
    pub endpoint: String,
    /// `host:port` of the node-to-node listener (Raft, move steps).
    #[serde(default)]
    pub raft_endpoint: String,
    /// `host:port` of the Prometheus endpoint (`GET /metrics`).
    #[serde(default)]
    pub metrics: String,
    /// `null` while the node is stopped (never 0: `kill 0` would signal the
    /// caller's own process group).
    pub pid: Option<u32>,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub dc: String,
    /// The node's config file: `geowallet node --config PATH` restarts it.
    #[serde(default)]
    pub config: PathBuf,
}

/// The shape of a local cluster: each node's place (ids from 1, in order)
/// and the shard groups.
#[derive(Debug, Clone)]
pub struct Topology {
    /// (region, dc) of node 1, 2, ...
    pub nodes: Vec<(String, String)>,
    /// Empty: one group (1) on every node.
    pub groups: Vec<GroupConfig>,
}

impl Topology {
    /// The smallest shape that shows dual-datacenter failover across
    /// regions: `eu` and `us` with datacenters `a` and `b` (nodes 1, 2 and
    /// 3, 4) and a tiebreaker site `ap` (node 5); `groups_per_region`
    /// groups homed in each of eu and us with the default replica sets
    /// (1+1+1: both home datacenters and the tiebreaker).
    pub fn geo(groups_per_region: u64) -> Topology {
        let place = |r: &str, dc: &str| (r.to_string(), dc.to_string());
        let mut groups = Vec::new();
        for (i, region) in ["eu", "us"].iter().enumerate() {
            for g in 0..groups_per_region {
                groups.push(GroupConfig {
                    id: i as u64 * groups_per_region + g + 1,
                    home_region: region.to_string(),
                    replicas: Vec::new(),
                    dual_dc: Default::default(),
                });
            }
        }
        Topology {
            nodes: vec![
                place("eu", "a"),
                place("eu", "b"),
                place("us", "a"),
                place("us", "b"),
                place("ap", "a"),
            ],
            groups,
        }
    }

    /// `n` nodes in one region, alternating datacenters `a` and `b`, one group.
    pub fn single_region(n: u64) -> Topology {
        Topology {
            nodes: (1..=n)
                .map(|id| {
                    let dc = if id % 2 == 1 { "a" } else { "b" };
                    (DEFAULT_REGION.to_string(), dc.to_string())
                })
                .collect(),
            groups: Vec::new(),
        }
    }
}

pub struct NodeProc {
    pub id: u64,
    pub endpoint: String,
    pub raft_endpoint: String,
    /// `host:port` of its Prometheus endpoint.
    pub metrics: String,
    pub region: String,
    pub dc: String,
    pub dir: PathBuf,
    /// Extra environment of the node's process (tests: a skewed clock).
    pub env: Vec<(String, String)>,
    child: Option<Child>,
}

impl NodeProc {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("node.toml")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("node.log")
    }
}

pub struct LocalCluster {
    pub dir: PathBuf,
    pub nodes: Vec<NodeProc>,
    binary: PathBuf,
}

/// Picks ports on 127.0.0.1 that are free and distinct from each other.
/// Each stays bound until the picker is dropped: the kernel chooses a port
/// for `bind(0)` at random, and a port released at once could be handed out
/// again to the next call (CI saw a node's client endpoint equal another
/// node's Raft endpoint: the client then reached a listener without the
/// wallet service and was answered "unimplemented").
#[derive(Default)]
pub struct PortPicker {
    held: Vec<std::net::TcpListener>,
}

impl PortPicker {
    pub fn pick(&mut self) -> anyhow::Result<u16> {
        let l =
            std::net::TcpListener::bind("127.0.0.1:0").context("find a free port on 127.0.0.1")?;
        let port = l.local_addr()?.port();
        self.held.push(l);
        Ok(port)
    }
}

impl LocalCluster {
    /// Writes configs for `n` nodes under `dir` and starts them with `binary`.
    pub fn start(
        binary: &Path,
        dir: &Path,
        n: u64,
        tuning: RaftTuning,
    ) -> anyhow::Result<LocalCluster> {
        let mut cluster = LocalCluster::prepare(binary, dir, n, tuning)?;
        for id in 1..=n {
            cluster.spawn(id)?;
        }
        Ok(cluster)
    }

    /// Writes configs for `n` nodes under `dir`, starting none: set
    /// `NodeProc::env` or edit a config first, then `spawn` each node.
    pub fn prepare(
        binary: &Path,
        dir: &Path,
        n: u64,
        tuning: RaftTuning,
    ) -> anyhow::Result<LocalCluster> {
        LocalCluster::prepare_topology(binary, dir, &Topology::single_region(n), tuning)
    }

    /// Writes configs for the nodes of `topology` under `dir`, starting none.
    pub fn prepare_topology(
        binary: &Path,
        dir: &Path,
        topology: &Topology,
        tuning: RaftTuning,
    ) -> anyhow::Result<LocalCluster> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let mut ports = PortPicker::default();
        let mut peers = Vec::new();
        for (i, (region, dc)) in topology.nodes.iter().enumerate() {
            peers.push(PeerConfig {
                id: i as u64 + 1,
                endpoint: format!("127.0.0.1:{}", ports.pick()?),
                raft_endpoint: Some(format!("127.0.0.1:{}", ports.pick()?)),
                region: region.clone(),
                dc: dc.clone(),
            });
        }
        // A throwaway CA, a certificate per node and one per role.
        let tls_dir = dir.join("tls");
        let ca = Ca::open_or_create(&tls_dir, "geowallet dev")?;
        for role in ROLES {
            ca.issue_client(&tls_dir, role)?;
        }
        let mut nodes = Vec::new();
        for p in &peers {
            let node_dir = dir.join(format!("n{}", p.id));
            std::fs::create_dir_all(&node_dir)?;
            let (cert, key) = ca.issue_node(&tls_dir, p.id, &LOOPBACK_HOSTS.map(String::from))?;
            let metrics = format!("127.0.0.1:{}", ports.pick()?);
            let config = NodeConfig {
                node_id: p.id,
                listen: p.endpoint.parse()?,
                raft_listen: p.raft_endpoint.as_deref().map(str::parse).transpose()?,
                metrics_listen: Some(metrics.parse()?),
                tls: Some(TlsConfig {
                    ca: tls_dir.join("ca.pem"),
                    cert,
                    key,
                    clients: Default::default(),
                }),
                insecure_plaintext: false,
                data_dir: node_dir.join("data"),
                peers: peers.clone(),
                groups: topology.groups.clone(),
                directory: Vec::new(),
                raft: tuning.clone(),
                moves: Default::default(),
            };
            config.validate()?;
            std::fs::write(node_dir.join("node.toml"), toml::to_string(&config)?)?;
            nodes.push(NodeProc {
                id: p.id,
                endpoint: p.endpoint.clone(),
                raft_endpoint: p.raft_endpoint.clone().unwrap_or_default(),
                metrics,
                region: p.region.clone(),
                dc: p.dc.clone(),
                dir: node_dir,
                env: Vec::new(),
                child: None,
            });
        }
        let cluster = LocalCluster {
            dir: dir.to_path_buf(),
            nodes,
            binary: binary.to_path_buf(),
        };
        cluster.write_cluster_file()?;
        Ok(cluster)
    }

    /// Rewrites node `id`'s `node.toml` with `edit` applied (takes effect
    /// at its next start).
    pub fn edit_config(&self, id: u64, edit: impl FnOnce(&mut NodeConfig)) -> anyhow::Result<()> {
        let path = self.node(id).config_path();
        let mut config = NodeConfig::load(&path)?;
        edit(&mut config);
        std::fs::write(&path, toml::to_string(&config)?)
            .with_context(|| format!("write {}", path.display()))
    }

    pub fn node_mut(&mut self, id: u64) -> &mut NodeProc {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .expect("node id of this cluster")
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.endpoint.clone()).collect()
    }

    pub fn node(&self, id: u64) -> &NodeProc {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .expect("node id of this cluster")
    }

    /// Starts (or restarts) node `id` on its existing data dir.
    pub fn spawn(&mut self, id: u64) -> anyhow::Result<()> {
        let binary = self.binary.clone();
        let node = self.node_mut(id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.log_path())?;
        let child = Command::new(&binary)
            .arg("node")
            .arg("--config")
            .arg(node.config_path())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info,openraft=warn".into()),
            )
            .envs(node.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        node.child = Some(child);
        self.write_cluster_file()
    }

    /// SIGKILL: no shutdown, no flush; what a power cut looks like to us.
    pub fn kill(&mut self, id: u64) -> anyhow::Result<()> {
        if let Some(mut child) = self.node_mut(id).child.take() {
            child.kill().context("kill node")?;
            child.wait()?;
        }
        self.write_cluster_file()
    }

    /// The nodes whose process exited by itself (a crash), reaped here:
    /// `spawn` starts them again.
    pub fn exited(&mut self) -> anyhow::Result<Vec<u64>> {
        let mut gone = Vec::new();
        for node in self.nodes.iter_mut() {
            if let Some(child) = node.child.as_mut()
                && child.try_wait()?.is_some()
            {
                node.child = None;
                gone.push(node.id);
            }
        }
        Ok(gone)
    }

    /// Waits for node `id` to exit by itself and returns its exit status.
    pub fn wait_exit(
        &mut self,
        id: u64,
        timeout: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        let node = self.node_mut(id);
        let Some(child) = node.child.as_mut() else {
            bail!("node {id} is not running")
        };
        loop {
            if let Some(status) = child.try_wait()? {
                node.child = None;
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("node {id} did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn write_cluster_file(&self) -> anyhow::Result<()> {
        let file = ClusterFile {
            nodes: self
                .nodes
                .iter()
                .map(|n| ClusterNode {
                    id: n.id,
                    endpoint: n.endpoint.clone(),
                    raft_endpoint: n.raft_endpoint.clone(),
                    metrics: n.metrics.clone(),
                    pid: n.pid(),
                    region: n.region.clone(),
                    dc: n.dc.clone(),
                    config: n.config_path(),
                })
                .collect(),
        };
        let path = self.dir.join("cluster.json");
        std::fs::write(&path, serde_json::to_string_pretty(&file)?)
            .with_context(|| format!("write {}", path.display()))
    }

    /// `config` with this cluster's `root` certificate, unless it has TLS
    /// material of its own.
    pub fn with_root_tls(&self, mut config: ClientConfig) -> anyhow::Result<ClientConfig> {
        let dir = self.dir.join("tls");
        if config.tls.is_none() && dir.join("root.pem").exists() {
            config.tls = Some(ClientTls::from_dir(&dir, "root")?);
        }
        Ok(config)
    }

    /// A client for this cluster (as `root`).
    pub fn client(&self, config: ClientConfig) -> anyhow::Result<Client> {
        Ok(Client::connect(
            self.endpoints(),
            self.with_root_tls(config)?,
        )?)
    }

    /// Waits until one running node is leader and serves a linearizable
    /// read; returns the leader's id.
    /// Each shard group's leader as the running nodes report it through
    /// `probe`: the node they all name, 0 when they disagree or none knows.
    pub async fn group_leaders(&self, probe: &Client) -> BTreeMap<u64, u64> {
        let mut seen: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for n in self.nodes.iter().filter(|n| n.pid().is_some()) {
            if let Ok(s) = probe.status_of(&n.endpoint).await {
                for g in s.groups.iter().filter(|g| g.id != 0) {
                    seen.entry(g.id).or_default().push(g.leader_id);
                }
            }
        }
        seen.into_iter()
            .map(|(g, v)| {
                (
                    g,
                    if v.iter().all(|l| *l == v[0]) {
                        v[0]
                    } else {
                        0
                    },
                )
            })
            .collect()
    }

    /// Waits until the running nodes agree that group `g` is led by
    /// `want[g]`, for every `g`; returns how long that took.
    pub async fn wait_group_leaders(
        &self,
        want: &BTreeMap<u64, u64>,
        timeout: Duration,
    ) -> anyhow::Result<Duration> {
        let probe = self.client(ClientConfig::default())?;
        let started = Instant::now();
        loop {
            let leaders = self.group_leaders(&probe).await;
            if want.iter().all(|(g, l)| leaders.get(g) == Some(l)) {
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                bail!(
                    "leaders did not settle on {want:?} within {timeout:?}: nodes report {leaders:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_for_leader(&self, timeout: Duration) -> anyhow::Result<u64> {
        let client = self.client(ClientConfig {
            retry_budget: Duration::from_millis(500),
            ..Default::default()
        })?;
        let deadline = Instant::now() + timeout;
        let probe = geowallet_client::Account::new(0, "EUR");
        loop {
            for n in &self.nodes {
                if n.child.is_none() {
                    continue;
                }
                let Ok(s) = client.status_of(&n.endpoint).await else {
                    continue;
                };
                if s.state == "leader" && s.node_id == n.id {
                    match client.balance(&probe).await {
                        Ok(_) | Err(geowallet_client::Error::UnknownAccount { .. }) => {
                            return Ok(n.id);
                        }
                        Err(_) => {}
                    }
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "no leader within {timeout:?}; see the node.log files under {}",
                    self.dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops every node with SIGTERM (SIGKILL after a grace period).
    pub fn stop_all(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut child) = n.child.take() {
                terminate(&mut child, Duration::from_secs(5));
            }
        }
        let _ = self.write_cluster_file();
    }
}

fn terminate(child: &mut Child, grace: Duration) {
    let pid = child.id().to_string();
    let _ = Command::new("kill").arg("-TERM").arg(&pid).status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut child) = n.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    // Proves cluster.json lists a stopped node with `"pid": null` (not 0) and a running one with its pid.
    use super::*;

    #[test]
    fn cluster_file_has_null_pid_for_stopped_node() {
        let dir = tempfile::tempdir().expect("temp dir");
        let running = Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let running_pid = running.id();
        let proc = |id: u64, child: Option<Child>| NodeProc {
            id,
            endpoint: format!("127.0.0.1:{}", 7000 + id),
            raft_endpoint: format!("127.0.0.1:{}", 7100 + id),
            metrics: format!("127.0.0.1:{}", 7200 + id),
            region: "eu".into(),
            dc: "b".into(),
            dir: dir.path().join(format!("n{id}")),
            env: Vec::new(),
            child,
        };
        // Dropping the cluster kills and reaps the `sleep` child.
        let cluster = LocalCluster {
            dir: dir.path().to_path_buf(),
            nodes: vec![proc(1, None), proc(2, Some(running))],
            binary: PathBuf::from("/nonexistent/geowallet"),
        };
        cluster.write_cluster_file().expect("write cluster.json");
        let text = std::fs::read_to_string(dir.path().join("cluster.json")).expect("read");
        let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let nodes = json["nodes"].as_array().expect("nodes array");
        assert_eq!(nodes[0]["id"], 1);
        assert!(nodes[0]["pid"].is_null(), "stopped node: {text}");
        assert_eq!(nodes[1]["id"], 2);
        assert_eq!(nodes[1]["pid"], running_pid, "running node: {text}");
        assert!(text.contains("\"pid\": null"), "{text}");
        assert_eq!(nodes[1]["metrics"], "127.0.0.1:7202", "{text}");
        assert_eq!(nodes[1]["region"], "eu");
        assert_eq!(nodes[1]["dc"], "b");
        let config = dir.path().join("n2").join("node.toml");
        assert_eq!(nodes[1]["config"], config.to_str().expect("utf-8 path"));
        let parsed: ClusterFile = serde_json::from_str(&text).expect("round trip");
        assert_eq!(parsed.nodes[0].pid, None);
        assert_eq!(parsed.nodes[1].pid, Some(running_pid));
    }

    // Every endpoint of a prepared cluster is its own port. Before ports
    // were held until all were picked, a 300-node cluster (900 draws from
    // the kernel's random choice) all but surely repeated one.
    #[test]
    fn prepared_endpoints_never_share_a_port() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cluster = LocalCluster::prepare_topology(
            Path::new("/nonexistent/geowallet"),
            dir.path(),
            &Topology::single_region(300),
            RaftTuning::default(),
        )
        .expect("prepare");
        let mut seen = std::collections::BTreeSet::new();
        for n in &cluster.nodes {
            for addr in [&n.endpoint, &n.raft_endpoint, &n.metrics] {
                assert!(seen.insert(addr.clone()), "{addr} given twice");
            }
        }
        assert_eq!(seen.len(), 900);
    }
}
