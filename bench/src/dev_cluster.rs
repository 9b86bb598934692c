//! A 3-node cluster of our own: `geowallet dev --dir DIR` (real processes,
//! RocksDB, fsync on), stopped with SIGINT to the dev process, which stops
//! its nodes. Dropping a `DevCluster` stops it too, so an error, a panic or
//! Ctrl-C in the bench never leaves a node running: after the dev process
//! exits, any node still alive (checked by pid *and* command line, so a
//! reused pid is never touched) is killed.
//!
//! The dev process stays in the bench's process group, so a signal to the
//! whole group (a terminal's Ctrl-C, a test runner's timeout) reaches the
//! nodes as well.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use geowallet_client::{Account, Client, ClientConfig, ClientTls, Error};

use crate::args::Topology;
use crate::cluster_file::{ClusterNode, read_cluster_file};
use crate::proc_fs;

/// How long the cluster may take to elect a leader and serve a read.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the dev process may take to stop its nodes after SIGINT (it
/// gives each node 5 s after SIGTERM, one after the other).
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a killed leftover node may take to disappear.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Budget of one readiness probe.
const PROBE_RETRY_BUDGET: Duration = Duration::from_millis(500);

pub struct DevCluster {
    /// The dir given to `geowallet dev --dir`.
    dir: PathBuf,
    dev: Option<Child>,
    nodes: Vec<ClusterNode>,
}

/// How a stop went.
#[derive(Debug, Clone, Default)]
pub struct StopReport {
    pub dev_exited: bool,
    /// Nodes still alive after the dev process had exited, killed by us.
    pub nodes_killed: Vec<u32>,
}

impl DevCluster {
    /// Starts `geowallet dev --topology T --dir dir` with its output in
    /// `dir.log`.
    pub fn start(geowallet: &Path, dir: &Path, topology: Topology) -> anyhow::Result<DevCluster> {
        let log_path = dir.with_extension("log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("create {}", log_path.display()))?;
        let dev = Command::new(geowallet)
            .arg("dev")
            .args(["--topology", topology.name()])
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {} dev", geowallet.display()))?;
        Ok(DevCluster {
            dir: dir.to_path_buf(),
            dev: Some(dev),
            nodes: Vec::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `root` client certificate `geowallet dev` wrote for this
    /// cluster (`None` until it did).
    pub fn client_tls(&self) -> Option<ClientTls> {
        ClientTls::from_dir(&self.dir.join("tls"), "root").ok()
    }

    /// Waits until cluster.json lists every node with a pid and the cluster
    /// answers a linearizable read; returns the nodes.
    pub async fn wait_ready(&mut self) -> anyhow::Result<Vec<ClusterNode>> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let file = self.dir.join("cluster.json");
        loop {
            if let Some(status) = self.dev.as_mut().and_then(|d| d.try_wait().ok().flatten()) {
                bail!(
                    "geowallet dev exited ({status}); see {}",
                    self.dir.with_extension("log").display()
                );
            }
            // The file may be absent or half written at first.
            if let Ok(nodes) = read_cluster_file(&file)
                && !nodes.is_empty()
                && nodes.iter().all(|n| n.pid.is_some())
            {
                self.nodes = nodes.clone();
                if serves_reads(&nodes, self.client_tls()).await {
                    return Ok(nodes);
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "cluster not ready within {READY_TIMEOUT:?}; \
                     see {} and the node.log files under {}",
                    self.dir.with_extension("log").display(),
                    self.dir.display()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// SIGINT to the dev process, wait for it, then make sure no node of
    /// this cluster is left. Idempotent.
    pub fn stop(&mut self) -> StopReport {
        let mut report = StopReport::default();
        // Pids as last written, in case we stop before `wait_ready` saw them.
        if let Ok(nodes) = read_cluster_file(&self.dir.join("cluster.json")) {
            self.nodes.extend(nodes);
        }
        if let Some(mut dev) = self.dev.take() {
            // The child is not reaped until `wait`, so its pid cannot be reused yet.
            signal(dev.id(), "INT");
            report.dev_exited = wait_child(&mut dev, STOP_TIMEOUT);
            if !report.dev_exited {
                let _ = dev.kill();
                let _ = dev.wait();
            }
        }
        let mut pids: Vec<u32> = self.nodes.iter().filter_map(|n| n.pid).collect();
        pids.sort_unstable();
        pids.dedup();
        for pid in pids {
            if self.is_our_node(pid) {
                signal(pid, "KILL");
                report.nodes_killed.push(pid);
            }
        }
        let deadline = Instant::now() + KILL_TIMEOUT;
        while report.nodes_killed.iter().any(|p| self.is_our_node(*p)) && Instant::now() < deadline
        {
            std::thread::sleep(POLL_INTERVAL);
        }
        self.nodes.clear();
        report
    }

    /// Whether `pid` is alive and is a node of this cluster (its config lives under our dir).
    fn is_our_node(&self, pid: u32) -> bool {
        let Some(cmd) = proc_fs::cmdline(pid) else {
            return false;
        };
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(true);
        // A node runs `geowallet node --config DIR/n<id>/node.toml`.
        let config_prefix = format!("{}/n", self.dir.to_string_lossy());
        !zombie && cmd.contains(" node --config ") && cmd.contains(&config_prefix)
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        if self.dev.is_some() {
            let report = self.stop();
            eprintln!(
                "geowallet-bench: cluster stopped on the way out \
                 (dev exited: {}, nodes killed: {:?})",
                report.dev_exited, report.nodes_killed
            );
        }
    }
}

/// Whether the cluster answers a linearizable read (an unknown account is an answer).
async fn serves_reads(nodes: &[ClusterNode], tls: Option<ClientTls>) -> bool {
    let config = ClientConfig {
        retry_budget: PROBE_RETRY_BUDGET,
        tls,
        ..ClientConfig::default()
    };
    let Ok(client) = Client::connect(nodes.iter().map(|n| n.endpoint.clone()), config) else {
        return false;
    };
    matches!(
        client.balance(&Account::new(0, "EUR")).await,
        Ok(_) | Err(Error::UnknownAccount { .. })
    )
}

/// `kill -SIG pid`: std has no signal API and the bench does not link libc.
fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Waits up to `timeout` for `child` to exit; true if it did.
fn wait_child(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}
