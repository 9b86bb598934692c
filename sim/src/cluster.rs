use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use geowallet_ledger::LedgerConfig;
use geowallet_proto::raft::raft_service_server::RaftServiceServer;
use geowallet_raft::{
    GroupRaft, GroupRegistry, LedgerStateMachine, LedgerView, LogAdapter, NetworkFactory,
    RaftRpcService,
};
use geowallet_storage::{CrashFaults, Db, GroupId, MemEngine, SyncMode};
use madsim::runtime::{Handle, NodeHandle};
use openraft::async_runtime::WatchReceiver;
use openraft::{BasicNode, Config, ServerState, SnapshotPolicy};

/// The group the simulated nodes replicate.
pub const GROUP: GroupId = GroupId(1);
const RAFT_PORT: u16 = 7000;
/// Simulated fsync latency bounds: each node start draws its latency from
/// the seed (some disks are slow), and its engine syncs that often.
const FSYNC_MICROS_MIN: u64 = 100;
const FSYNC_MICROS_MAX: u64 = 5_000;

/// A simulated node's view as the harness sees it.
pub type Replica = (GroupRaft<MemEngine>, LedgerView);

struct SimNode {
    engine: Arc<MemEngine>,
    handle: NodeHandle,
}

/// Simulated replicas of one group. Their storage engines outlive the
/// simulated processes, so a killed node restarts on what was durable.
pub struct SimCluster {
    nodes: BTreeMap<u64, SimNode>,
    replicas: Arc<Mutex<BTreeMap<u64, Replica>>>,
    _dir: tempfile::TempDir,
}

/// A node's address on madsim's virtual network. No socket is ever opened:
/// madsim delivers messages between simulated nodes inside this process.
/// Not loopback (madsim routes 127/8 back to the sender itself); TEST-NET-1
/// (RFC 5737), reserved for documentation and routed nowhere.
fn addr(id: u64) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, id as u8)), RAFT_PORT)
}

fn raft_config() -> Arc<Config> {
    let config = Config {
        cluster_name: "geowallet-sim".into(),
        heartbeat_interval: 50,
        election_timeout_min: 300,
        election_timeout_max: 600,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(64),
        max_in_snapshot_log_to_keep: 8,
        ..Default::default()
    };
    Arc::new(config.validate().expect("valid simulation raft config"))
}

async fn run_node(
    id: u64,
    n: u64,
    engine: Arc<MemEngine>,
    snapshot_dir: PathBuf,
    replicas: Arc<Mutex<BTreeMap<u64, Replica>>>,
) {
    let syncer = engine.clone();
    let fsync =
        FSYNC_MICROS_MIN + madsim::rand::random::<u64>() % (FSYNC_MICROS_MAX - FSYNC_MICROS_MIN);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_micros(fsync)).await;
            syncer.sync();
        }
    });
    let db = Db::with_engine(engine);
    let sm = LedgerStateMachine::open(
        db.state_store(GROUP),
        snapshot_dir.clone(),
        LedgerConfig::default(),
    )
    .expect("the durable state of a simulated node loads");
    let view = sm.view();
    let raft = openraft::Raft::new(
        id,
        raft_config(),
        NetworkFactory::new(GROUP),
        LogAdapter::new(db.log_store(GROUP)),
        sm,
    )
    .await
    .expect("raft starts on a simulated node");
    let registry = Arc::new(GroupRegistry::default());
    registry.insert(GROUP, raft.clone(), snapshot_dir);
    replicas
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, (raft.clone(), view));
    if id == 1 && !raft.is_initialized().await.unwrap_or(true) {
        let members: BTreeMap<u64, BasicNode> = (1..=n)
            .map(|i| {
                (
                    i,
                    BasicNode {
                        addr: addr(i).to_string(),
                    },
                )
            })
            .collect();
        let _ = raft.initialize(members).await;
    }
    let server = tonic::transport::Server::builder()
        .add_service(RaftServiceServer::new(RaftRpcService::new(registry)));
    if let Err(e) = server.serve(addr(id)).await {
        panic!("simulated node {id} stopped serving: {e}");
    }
}

impl SimCluster {
    /// Starts `n` simulated replicas (node 1 initializes the group) whose
    /// disks behave as `disk` says.
    pub fn start(n: u64, disk: SyncMode) -> SimCluster {
        let dir = tempfile::Builder::new()
            .prefix("geowallet-sim-")
            .tempdir()
            .expect("a temp dir for snapshots");
        let replicas = Arc::new(Mutex::new(BTreeMap::new()));
        let handle = Handle::current();
        let mut nodes = BTreeMap::new();
        for id in 1..=n {
            let engine = MemEngine::new(disk);
            let snapshot_dir = dir.path().join(format!("n{id}"));
            let (e, r, d) = (engine.clone(), replicas.clone(), snapshot_dir.clone());
            let node = handle
                .create_node()
                .name(format!("n{id}"))
                .ip(addr(id).ip())
                .init(move || run_node(id, n, e.clone(), d.clone(), r.clone()))
                .build();
            nodes.insert(
                id,
                SimNode {
                    engine,
                    handle: node,
                },
            );
        }
        SimCluster {
            nodes,
            replicas,
            _dir: dir,
        }
    }

    /// The replicas currently running.
    pub fn replicas(&self) -> BTreeMap<u64, Replica> {
        self.replicas
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Kills node `id` like SIGKILL: its unsynced writes meet `faults`.
    pub fn kill(&self, id: u64, faults: CrashFaults) {
        let node = &self.nodes[&id];
        self.replicas
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        Handle::current().kill(node.handle.id());
        node.engine.crash(faults);
    }

    /// Cuts node `id` off the network, both ways (a partition of one).
    pub fn isolate(&self, id: u64) {
        madsim::net::NetSim::current().clog_node(self.nodes[&id].handle.id());
    }

    /// Reconnects node `id`.
    pub fn heal(&self, id: u64) {
        madsim::net::NetSim::current().unclog_node(self.nodes[&id].handle.id());
    }

    /// Freezes node `id` (SIGSTOP: a long GC or VM pause); its state stays.
    pub fn pause(&self, id: u64) {
        Handle::current().pause(self.nodes[&id].handle.id());
    }

    /// Thaws a paused node (SIGCONT).
    pub fn resume(&self, id: u64) {
        Handle::current().resume(self.nodes[&id].handle.id());
    }

    /// Node ids, ascending.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// Restarts a killed node on what its engine kept.
    pub fn restart(&self, id: u64) {
        Handle::current().restart(self.nodes[&id].handle.id());
    }

    /// The node that believes it leads in the highest term (an isolated old
    /// leader may still believe it leads, in an older term), waiting up to `timeout`.
    pub async fn leader(&self, timeout: Duration) -> Option<(u64, GroupRaft<MemEngine>)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut best: Option<(u64, u64, GroupRaft<MemEngine>)> = None;
            for (id, (raft, _)) in self.replicas() {
                let m = raft.metrics().borrow_watched().clone();
                let leads = m.state == ServerState::Leader && m.current_leader == Some(id);
                if leads
                    && best
                        .as_ref()
                        .is_none_or(|(term, _, _)| m.current_term > *term)
                {
                    best = Some((m.current_term, id, raft));
                }
            }
            if let Some((_, id, raft)) = best {
                return Some((id, raft));
            }
            if tokio::time::Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
