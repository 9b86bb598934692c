use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::run_dir::RunDir;
use geowallet_node::group_host::{GroupHost, GroupSpec, HostConfig};
use geowallet_node::mover::MoveStepService;
use geowallet_node::wallet_service::WalletService;
use geowallet_proto::raft::move_service_server::MoveServiceServer;
use geowallet_proto::raft::raft_service_server::RaftServiceServer;
use geowallet_proto::v1::wallet_server::WalletServer;
use geowallet_raft::directory::GroupEntry;
use geowallet_raft::{
    CLOCK_TOLERANCE_DEFAULT, ClockQuorum, GroupRaft, MessageLimits, NodeInfo, WallClock,
};
use geowallet_storage::{
    Cf, CrashFaults, Db, GroupId, MemEngine, StateStore, StorageError, SyncMode,
};
use madsim::runtime::{Handle, NodeHandle};
use openraft::async_runtime::WatchReceiver;
use openraft::{Config, ServerState, SnapshotPolicy};

/// The group the simulated nodes replicate.
pub const GROUP: GroupId = GroupId(1);
/// Every node serves Raft and the client API on this port.
const PORT: u16 = 7000;
/// Where the harness's clients run (outside the group's nodes).
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
/// Simulated fsync latency bounds: each node start draws its latency from
/// the seed (some disks are slow), and its engine syncs that often.
const FSYNC_MICROS_MIN: u64 = 100;
const FSYNC_MICROS_MAX: u64 = 5_000;

/// A simulated node's view as the harness sees it.
pub type Replica = (GroupRaft<MemEngine>, StateStore<MemEngine>);

/// Where a node runs. One region with two datacenters today; regions and
/// inter-region faults slot in here when groups span regions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub region: &'static str,
    pub datacenter: &'static str,
}

struct SimNode {
    engine: Arc<MemEngine>,
    /// The machine's clock: it keeps its skew across process restarts.
    clock: WallClock,
    handle: NodeHandle,
    place: Place,
}

/// Simulated replicas of one group. Their storage engines outlive the
/// simulated processes, so a killed node restarts on what was durable.
pub struct SimCluster {
    nodes: BTreeMap<u64, SimNode>,
    replicas: Arc<Mutex<BTreeMap<u64, Replica>>>,
    _dir: RunDir,
}

/// A node's address on madsim's virtual network. No socket is ever opened:
/// madsim delivers messages between simulated nodes inside this process.
/// Not loopback (madsim routes 127/8 back to the sender itself); TEST-NET-1
/// (RFC 5737), reserved for documentation and routed nowhere.
fn addr(id: u64) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, id as u8)), PORT)
}

/// Raft settings of the simulated nodes: production's, with simulation
/// timings. The broken variant (lying disks) also lets a follower's log go
/// backwards and a restarted leader lead again without an election
/// (openraft's default, which production turns off): otherwise openraft's
/// own assertions stop the run when committed entries vanish, before the
/// loss reaches a client; this way it does, and the checkers must find it.
fn raft_config(disk: SyncMode) -> Arc<Config> {
    let config = Config {
        allow_log_reversion: Some(disk == SyncMode::Lying),
        enable_leader_restore: Some(disk == SyncMode::Lying),
        cluster_name: "geowallet-sim".into(),
        heartbeat_interval: 50,
        election_timeout_min: 300,
        election_timeout_max: 600,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(64),
        max_in_snapshot_log_to_keep: 8,
        ..geowallet_raft::base_config()
    };
    Arc::new(config.validate().expect("valid simulation raft config"))
}

/// The shape of a simulated cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `n` nodes in region `eu`, datacenters alternating `a`, `b`; one
    /// group on all of them and no directory.
    Single(u64),
    /// Regions `eu` (a: node 1, b: node 2) and `us` (a: 3, b: 4) and a
    /// tiebreaker site `ap` (5); group 1 homed in eu on 1, 2, 5, group 2 in
    /// us on 3, 4, 5 (1+1+1 each), the directory on all five.
    Geo,
}

impl Shape {
    fn nodes(self) -> u64 {
        match self {
            Shape::Single(n) => n,
            Shape::Geo => 5,
        }
    }

    /// Where node `id` runs.
    fn place(self, id: u64) -> Place {
        match self {
            Shape::Single(_) => Place {
                region: "eu",
                datacenter: if id % 2 == 1 { "a" } else { "b" },
            },
            Shape::Geo => {
                let (region, datacenter) = match id {
                    1 => ("eu", "a"),
                    2 => ("eu", "b"),
                    3 => ("us", "a"),
                    4 => ("us", "b"),
                    _ => ("ap", "a"),
                };
                Place { region, datacenter }
            }
        }
    }

    /// (group, home region, replicas) of every shard group.
    fn groups(self) -> Vec<(GroupId, &'static str, Vec<u64>)> {
        match self {
            Shape::Single(n) => vec![(GROUP, "eu", (1..=n).collect())],
            Shape::Geo => vec![
                (GROUP, "eu", vec![1, 2, 5]),
                (GroupId(2), "us", vec![3, 4, 5]),
            ],
        }
    }

    fn directory(self) -> Option<Vec<u64>> {
        match self {
            Shape::Single(_) => None,
            Shape::Geo => Some((1..=5).collect()),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_node(
    id: u64,
    shape: Shape,
    initializer: u64,
    disk: SyncMode,
    engine: Arc<MemEngine>,
    clock: WallClock,
    snapshot_root: PathBuf,
    replicas: Arc<Mutex<BTreeMap<u64, Replica>>>,
) {
    let clocks = ClockQuorum::new(id, clock, CLOCK_TOLERANCE_DEFAULT);
    let syncer = engine.clone();
    let fsync =
        FSYNC_MICROS_MIN + madsim::rand::random::<u64>() % (FSYNC_MICROS_MAX - FSYNC_MICROS_MIN);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_micros(fsync)).await;
            syncer.sync();
        }
    });
    let nodes = (1..=shape.nodes())
        .map(|i| {
            let place = shape.place(i);
            let info = NodeInfo {
                addr: addr(i).to_string(),
                region: place.region.to_string(),
                dc: place.datacenter.to_string(),
            };
            (i, info)
        })
        .collect();
    let mut topology: BTreeMap<GroupId, Vec<u64>> =
        shape.groups().into_iter().map(|(g, _, r)| (g, r)).collect();
    let home_regions = shape
        .groups()
        .into_iter()
        .map(|(g, home, _)| (g, home.to_string()))
        .collect();
    if let Some(d) = shape.directory() {
        topology.insert(GroupId::DIRECTORY, d);
    }
    let host = GroupHost::new(
        HostConfig {
            node_id: id,
            nodes,
            topology,
            home_regions,
            move_policy: None,
            raft: raft_config(disk),
            limits: MessageLimits::default(),
            clocks,
            snapshot_root,
            dual_dc_wait: Duration::from_secs(1),
            dc_down_after: Duration::from_millis(300),
            placement_interval: Duration::from_millis(150),
            placement_stable_for: Duration::from_millis(600),
            placement_transfer_gap: Duration::from_secs(3),
            dial: None,
        },
        Db::with_engine(engine),
    );
    let starts = "the durable state of a simulated node loads and raft starts";
    if let Some(replicas) = shape.directory().filter(|r| r.contains(&id)) {
        let dir = host
            .add_group(GroupSpec {
                id: GroupId::DIRECTORY,
                home_region: shape.place(1).region.into(),
                replicas,
                initializer: None,
                dual_dc: Default::default(),
            })
            .await
            .expect(starts);
        let groups = shape
            .groups()
            .into_iter()
            .map(|(g, home, _)| GroupEntry {
                id: g.0,
                home_region: home.into(),
            })
            .collect();
        tokio::spawn(geowallet_node::directory::bootstrap(
            dir.raft.clone(),
            dir.store.clone(),
            groups,
        ));
    }
    for (g, home, members) in shape.groups() {
        if !members.contains(&id) {
            continue;
        }
        let group = host
            .add_group(GroupSpec {
                id: g,
                home_region: home.into(),
                initializer: members.contains(&initializer).then_some(initializer),
                replicas: members,
                dual_dc: Default::default(),
            })
            .await
            .expect(starts);
        if g == GROUP {
            replicas
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id, (group.raft.clone(), group.store.clone()));
        }
    }
    let server = tonic::transport::Server::builder()
        .add_service(RaftServiceServer::new(host.raft_service()))
        .add_service(MoveServiceServer::new(MoveStepService {
            host: host.clone(),
            auto_moves: None,
        }))
        .add_service(WalletServer::new(
            WalletService::new(host, None, Default::default())
                .expect("the simulated node's service starts"),
        ));
    if let Err(e) = server.serve(addr(id)).await {
        panic!("simulated node {id} stopped serving: {e}");
    }
}

impl SimCluster {
    /// Starts `n` simulated replicas whose disks behave as `disk` says. A
    /// node drawn from the seed initializes the group (and usually leads
    /// first). Nodes alternate between datacenters `a` and `b`.
    pub fn start(n: u64, disk: SyncMode) -> SimCluster {
        SimCluster::start_shape(Shape::Single(n), disk)
    }

    /// Starts a cluster of `shape`. Group 1's replicas (what `replicas`
    /// and `leader` report, and the checks compare) are its replicas only.
    pub fn start_shape(shape: Shape, disk: SyncMode) -> SimCluster {
        let n = shape.nodes();
        let initializer = 1 + madsim::rand::random::<u64>() % n;
        let seed = Handle::current().seed();
        let dir = RunDir::create("snapshots", seed).expect("a directory for snapshot files");
        let replicas = Arc::new(Mutex::new(BTreeMap::new()));
        let handle = Handle::current();
        let mut nodes = BTreeMap::new();
        for id in 1..=n {
            let engine = MemEngine::new(disk);
            let clock = WallClock::default();
            let snapshot_dir = dir.path().join(format!("n{id}"));
            let (e, c, r, d) = (
                engine.clone(),
                clock.clone(),
                replicas.clone(),
                snapshot_dir.clone(),
            );
            let node = handle
                .create_node()
                .name(format!("n{id}"))
                .ip(addr(id).ip())
                .init(move || {
                    run_node(
                        id,
                        shape,
                        initializer,
                        disk,
                        e.clone(),
                        c.clone(),
                        d.clone(),
                        r.clone(),
                    )
                })
                .build();
            nodes.insert(
                id,
                SimNode {
                    engine,
                    clock,
                    handle: node,
                    place: shape.place(id),
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

    /// Sets node `id`'s clock to read `offset_ns` from the true time (0:
    /// right again). The node keeps running.
    pub fn skew_clock(&self, id: u64, offset_ns: i64) {
        self.nodes[&id].clock.set_offset_ns(offset_ns);
    }

    /// Node ids, ascending.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// Restarts a killed node on what its engine kept.
    pub fn restart(&self, id: u64) {
        Handle::current().restart(self.nodes[&id].handle.id());
    }

    /// The client API endpoints (`host:port`) of every node.
    pub fn endpoints(&self) -> Vec<String> {
        self.ids()
            .into_iter()
            .map(|id| addr(id).to_string())
            .collect()
    }

    /// Where node `id` runs.
    pub fn place(&self, id: u64) -> &Place {
        &self.nodes[&id].place
    }

    /// A simulated host for clients, outside the group's nodes.
    pub fn client_host(&self) -> NodeHandle {
        Handle::current()
            .create_node()
            .name("client")
            .ip(IpAddr::V4(CLIENT_IP))
            .build()
    }

    /// Drops every message from `from` to `to` (one direction only).
    pub fn cut(&self, from: u64, to: u64) {
        let net = madsim::net::NetSim::current();
        net.clog_link(self.nodes[&from].handle.id(), self.nodes[&to].handle.id());
    }

    /// Undoes every `cut`, `isolate` and network setting: a healed network.
    pub fn heal_network(&self) {
        let net = madsim::net::NetSim::current();
        for a in self.nodes.values() {
            net.unclog_node(a.handle.id());
            for b in self.nodes.values() {
                net.unclog_link(a.handle.id(), b.handle.id());
            }
        }
        net.update_config(|c| *c = madsim::net::Config::default());
    }

    /// Every message on the network is lost with `loss` probability and
    /// delayed by a time in `latency`.
    pub fn degrade_network(&self, loss: f64, latency: std::ops::Range<Duration>) {
        madsim::net::NetSim::current().update_config(|c| {
            c.packet_loss_rate = loss;
            c.send_latency = latency;
        });
    }

    /// Flips one bit of a stored value of a killed node's disk (a log entry
    /// when `log`, else a ledger row), picked by `pick`. Returns the damaged
    /// key, or `None` if that column family is empty.
    pub fn flip_stored_bit(&self, id: u64, log: bool, pick: u64) -> Option<(Cf, Vec<u8>, usize)> {
        let cf = if log { Cf::Log } else { Cf::State };
        let engine = &self.nodes[&id].engine;
        let keys = engine.keys(cf);
        if keys.is_empty() {
            return None;
        }
        let key = keys[(pick % keys.len() as u64) as usize].clone();
        let bit = (pick >> 16) as usize;
        engine.flip_bit(cf, &key, bit).then_some((cf, key, bit))
    }

    /// Undoes [`SimCluster::flip_stored_bit`].
    pub fn unflip_stored_bit(&self, id: u64, (cf, key, bit): &(Cf, Vec<u8>, usize)) {
        self.nodes[&id].engine.flip_bit(*cf, key, *bit);
    }

    /// Reads everything node `id`'s disk holds (its log and its ledger
    /// rows) as a restart would, through the production stores.
    pub fn read_disk(&self, id: u64) -> Result<(), StorageError> {
        let db = Db::with_engine(self.nodes[&id].engine.clone());
        db.log_store(GROUP).read_range(0, u64::MAX)?;
        let store = db.state_store(GROUP);
        store.open_applied()?;
        store.dump()?;
        Ok(())
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
