//! The shard groups one node process hosts. Every group is its own openraft
//! `Raft` over the node's one storage engine (keys prefixed by group, one
//! group-commit syncer for all), with its own proposer and ledger-time
//! ticker; all of them share the node's peer connections (one HTTP/2
//! connection per peer, whatever the number of groups), its clock
//! measurements and one gRPC service that routes by group id. The
//! production node and the simulator both run this, so the simulator runs
//! what production runs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use geowallet_ledger::LedgerConfig;
use geowallet_raft::{
    ClockQuorum, Dial, GroupRaft, GroupRegistry, LedgerStateMachine, LogAdapter, MessageLimits,
    NetworkFactory, NodeInfo, PeerChannels, RaftRpcService,
};
use geowallet_storage::{Db, Engine, GroupId, StateStore};
use tokio::task::JoinHandle;

use crate::dual_dc::{DualDc, DualDcPolicy};
use crate::metrics::Metrics;
use crate::placement::{self, PlacementPolicy};
use crate::proposer::Proposer;

/// How often a group's leader proposes an empty entry, so hold expiry
/// advances with leader time even when no client writes.
pub const TICK_INTERVAL: Duration = Duration::from_secs(1);
/// Under `snapshot_root`: checkpoints of backups being streamed.
pub const BACKUP_SCRATCH: &str = "backups";

/// What every group of a node shares.
pub struct HostConfig {
    pub node_id: u64,
    /// Every node of the cluster (the address book for memberships and
    /// leader hints).
    pub nodes: BTreeMap<u64, NodeInfo>,
    /// Replicas of every group of the cluster, hosted here or not (where to
    /// send a request for a group this node does not host).
    pub topology: BTreeMap<GroupId, Vec<u64>>,
    /// The home region of every shard group of the cluster (where a wallet
    /// moving to a region goes).
    pub home_regions: BTreeMap<GroupId, String>,
    /// Wallets follow their players (`None`: only explicit moves).
    pub move_policy: Option<crate::move_policy::MovePolicyConfig>,
    /// openraft settings of every group.
    pub raft: Arc<openraft::Config>,
    pub limits: MessageLimits,
    pub clocks: ClockQuorum,
    /// Received and built snapshots go under `snapshot_root/<group>`.
    pub snapshot_root: PathBuf,
    /// How long a write waits for a live but lagging datacenter of its
    /// group's home region before the group's policy decides.
    pub dual_dc_wait: Duration,
    /// A datacenter whose voters did not answer the leader for this long is
    /// down: writes do not wait for it.
    pub dc_down_after: Duration,
    /// Leader placement: how often a leader looks, how long a better-placed
    /// voter must be healthy before it takes over, and the least time
    /// between two hand-overs.
    pub placement_interval: Duration,
    pub placement_stable_for: Duration,
    pub placement_transfer_gap: Duration,
    /// How this node reaches its peers' node-to-node listeners (`None`:
    /// plaintext to each node's `NodeInfo::addr`).
    pub dial: Option<Dial>,
}

/// One group to host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    pub id: GroupId,
    pub home_region: String,
    /// Node ids of its voters.
    pub replicas: Vec<u64>,
    /// The replica that initializes a new group (the others wait to be
    /// contacted); `None`: the lowest replica id.
    pub initializer: Option<u64>,
    /// What writes do while a datacenter of the home region cannot confirm.
    pub dual_dc: DualDcPolicy,
}

/// A hosted group: its Raft, proposer and ledger state.
pub struct Group<E: Engine> {
    pub id: GroupId,
    pub home_region: String,
    pub raft: GroupRaft<E>,
    pub proposer: Proposer,
    pub store: StateStore<E>,
    pub dual_dc: Arc<DualDc>,
    /// The ledger-time ticker and the leader placer.
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("group {0} is already hosted on this node")]
    Exists(GroupId),
    #[error("group {group}: node {node} is a replica but not in the cluster's node list")]
    UnknownNode { group: GroupId, node: u64 },
    #[error("group {group}: this node ({node}) is not one of its replicas {replicas:?}")]
    NotAReplica {
        group: GroupId,
        node: u64,
        replicas: Vec<u64>,
    },
    #[error("group {group}: open the ledger state: {source}")]
    State {
        group: GroupId,
        source: std::io::Error,
    },
    #[error("group {group}: start raft (a damaged log is reported here): {message}")]
    Raft { group: GroupId, message: String },
}

/// The groups of one node.
pub struct GroupHost<E: Engine> {
    config: HostConfig,
    /// `config.raft` with openraft's own heartbeat timers off: the host
    /// beats for every group it leads at once (`beat`).
    group_raft: Arc<openraft::Config>,
    db: Db<E>,
    channels: PeerChannels,
    registry: Arc<GroupRegistry<E>>,
    groups: RwLock<BTreeMap<GroupId, Arc<Group<E>>>>,
    heartbeats: JoinHandle<()>,
    metrics: Arc<Metrics>,
}

impl<E: Engine> GroupHost<E> {
    /// Must be called within a runtime (it starts the node's heartbeat
    /// ticker).
    pub fn new(config: HostConfig, db: Db<E>) -> Arc<GroupHost<E>> {
        let group_raft = Arc::new(openraft::Config {
            enable_heartbeat: false,
            ..(*config.raft).clone()
        });
        let registry = Arc::new(GroupRegistry::default());
        let channels = match &config.dial {
            Some(dial) => PeerChannels::new(dial.clone()),
            None => PeerChannels::default(),
        };
        let interval = Duration::from_millis(config.raft.heartbeat_interval.max(1));
        let heartbeats = tokio::spawn(beat(Arc::downgrade(&registry), channels.clone(), interval));
        Arc::new(GroupHost {
            config,
            group_raft,
            db,
            channels,
            registry,
            groups: RwLock::new(BTreeMap::new()),
            heartbeats,
            metrics: Arc::new(Metrics::new()),
        })
    }

    /// Heartbeats this node sent to its peers, and the calls that carried
    /// them (one per peer per tick, whatever the number of groups).
    pub fn heartbeat_stats(&self) -> (u64, u64) {
        self.channels.beat_stats()
    }

    /// This node's metrics (what `/metrics` serves).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn node_id(&self) -> u64 {
        self.config.node_id
    }

    /// Every node of the cluster.
    pub fn nodes(&self) -> &BTreeMap<u64, NodeInfo> {
        &self.config.nodes
    }

    /// This node's connection to peer `id`'s node-to-node listener (shared
    /// with every group's Raft traffic).
    pub fn peer_channel(&self, id: u64) -> Result<tonic::transport::Channel, String> {
        let node = self
            .config
            .nodes
            .get(&id)
            .ok_or_else(|| format!("node {id} is not in this node's address book"))?;
        self.channels.channel(id, node)
    }

    /// A new path for a backup's checkpoint of group `id` (under
    /// `snapshot_root/backups`, which a starting node empties).
    pub fn backup_scratch(&self, id: GroupId) -> PathBuf {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.config
            .snapshot_root
            .join(BACKUP_SCRATCH)
            .join(format!("{}-{n}", id.0))
    }

    /// This node's own entry of the address book.
    pub fn me(&self) -> Option<&NodeInfo> {
        self.config.nodes.get(&self.config.node_id)
    }

    /// Replicas of group `id` as the topology lists them.
    pub fn replicas_of(&self, id: GroupId) -> Option<&[u64]> {
        self.config.topology.get(&id).map(Vec::as_slice)
    }

    /// The shard group a wallet moving to `region` goes to: the lowest id
    /// homed there.
    pub fn group_in_region(&self, region: &str) -> Option<GroupId> {
        self.config
            .home_regions
            .iter()
            .find(|(_, r)| r.as_str() == region)
            .map(|(g, _)| *g)
    }

    /// The home region of shard group `id`.
    pub fn home_region_of(&self, id: GroupId) -> Option<&str> {
        self.config.home_regions.get(&id).map(String::as_str)
    }

    /// Every shard group of the cluster.
    pub fn shard_groups(&self) -> Vec<GroupId> {
        self.config.home_regions.keys().copied().collect()
    }

    /// Every region some shard group is homed in.
    pub fn regions(&self) -> std::collections::BTreeSet<&str> {
        self.config
            .home_regions
            .values()
            .map(String::as_str)
            .collect()
    }

    /// The node's message bounds.
    pub fn limits(&self) -> MessageLimits {
        self.config.limits
    }

    /// The policy of automatic wallet moves, if they are on.
    pub fn move_policy(&self) -> Option<&crate::move_policy::MovePolicyConfig> {
        self.config.move_policy.as_ref()
    }

    pub fn clocks(&self) -> &ClockQuorum {
        &self.config.clocks
    }

    /// The node-to-node Raft service for every hosted group.
    pub fn raft_service(&self) -> RaftRpcService<E> {
        RaftRpcService::new(self.registry.clone(), self.config.clocks.clock().clone())
    }

    /// Starts hosting `spec`: opens its state and log, starts its Raft,
    /// proposer and ticker, and (on its initializer, once) initializes a new
    /// group's membership.
    pub async fn add_group(&self, spec: GroupSpec) -> Result<Arc<Group<E>>, HostError> {
        let id = spec.id;
        if self.group(id).is_some() {
            return Err(HostError::Exists(id));
        }
        if !spec.replicas.contains(&self.config.node_id) {
            return Err(HostError::NotAReplica {
                group: id,
                node: self.config.node_id,
                replicas: spec.replicas,
            });
        }
        let mut members = BTreeMap::new();
        for r in &spec.replicas {
            let info = self.config.nodes.get(r).ok_or(HostError::UnknownNode {
                group: id,
                node: *r,
            })?;
            members.insert(*r, info.clone());
        }
        let snapshot_dir = self.config.snapshot_root.join(id.to_string());
        let sm = LedgerStateMachine::open(
            self.db.state_store(id),
            snapshot_dir.clone(),
            LedgerConfig::default(),
        )
        .map_err(|source| HostError::State { group: id, source })?;
        let store = sm.store().clone();
        let network = NetworkFactory::new(
            id,
            self.config.limits,
            self.config.clocks.clone(),
            self.channels.clone(),
        );
        let raft = openraft::Raft::new(
            self.config.node_id,
            self.group_raft.clone(),
            network,
            LogAdapter::new(self.db.log_store(id)),
            sm,
        )
        .await
        .map_err(|e| HostError::Raft {
            group: id,
            message: e.to_string(),
        })?;
        self.registry.insert(id, raft.clone(), snapshot_dir);
        let dual_dc = Arc::new(DualDc::new(
            spec.home_region.clone(),
            spec.dual_dc,
            self.config.dual_dc_wait,
            self.config.dc_down_after,
        ));
        let proposer = Proposer::start(
            raft.clone(),
            self.config.limits,
            self.config.clocks.clone(),
            dual_dc.clone(),
            (self.metrics.clone(), id.0),
        );
        let initializer = spec
            .initializer
            .unwrap_or_else(|| spec.replicas.iter().copied().min().unwrap_or(0));
        if initializer == self.config.node_id {
            tokio::spawn(initialize(raft.clone(), id, members));
        }
        let placement = PlacementPolicy {
            home_region: spec.home_region.clone(),
            interval: self.config.placement_interval,
            stable_for: self.config.placement_stable_for,
            silent_after: self.config.dc_down_after,
            transfer_gap: self.config.placement_transfer_gap,
        };
        let tasks = vec![
            tokio::spawn(tick(raft.clone(), proposer.clone())),
            tokio::spawn({
                let (dual_dc, raft) = (dual_dc.clone(), raft.clone());
                async move { dual_dc.watch_leadership(raft).await }
            }),
            tokio::spawn(placement::run(
                id,
                raft.clone(),
                self.config.clocks.clone(),
                placement,
            )),
        ];
        let group = Arc::new(Group {
            id,
            home_region: spec.home_region,
            raft,
            proposer,
            store,
            dual_dc,
            tasks,
        });
        self.groups
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, group.clone());
        Ok(group)
    }

    /// Stops hosting group `id` (its Raft shuts down; its rows stay on
    /// disk). False when it was not hosted.
    pub async fn remove_group(&self, id: GroupId) -> bool {
        let removed = self
            .groups
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        let Some(group) = removed else {
            return false;
        };
        self.registry.remove(id);
        group.tasks.iter().for_each(JoinHandle::abort);
        if let Err(e) = group.raft.shutdown().await {
            tracing::warn!(group = %id, error = %e, "raft shutdown failed");
        }
        true
    }

    pub fn group(&self, id: GroupId) -> Option<Arc<Group<E>>> {
        self.groups
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }

    /// The group a request without a group id goes to: the lowest shard
    /// group hosted (never the directory).
    pub fn default_group(&self) -> Option<Arc<Group<E>>> {
        self.groups
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .range(GroupId(1)..)
            .next()
            .map(|(_, g)| g.clone())
    }

    /// Every hosted group, by id.
    pub fn groups(&self) -> Vec<Arc<Group<E>>> {
        self.groups
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Shuts every group's Raft down, waiting up to `timeout` for each.
    pub async fn shutdown(&self, timeout: Duration) {
        self.heartbeats.abort();
        for g in self.groups() {
            g.tasks.iter().for_each(JoinHandle::abort);
            let _ = tokio::time::timeout(timeout, g.raft.shutdown()).await;
        }
    }
}

/// Initializes a new group's membership. Initializing an initialized group
/// is refused and harmless.
async fn initialize<E: Engine>(
    raft: GroupRaft<E>,
    group: GroupId,
    members: BTreeMap<u64, NodeInfo>,
) {
    match raft.is_initialized().await {
        Ok(true) => return,
        Ok(false) => {}
        Err(e) => {
            tracing::error!(%group, error = %e, "cannot tell whether raft is initialized");
            return;
        }
    }
    match raft.initialize(members).await {
        Ok(()) => tracing::info!(%group, "initialized the group"),
        Err(e) => tracing::info!(%group, error = %e, "group initialization skipped"),
    }
}

impl<E: Engine> Drop for GroupHost<E> {
    fn drop(&mut self) {
        self.heartbeats.abort();
    }
}

/// Every `interval`, triggers the heartbeat of every group this node leads,
/// all at once, so the transport sends them to each peer in one call
/// (openraft's per-group heartbeat timers are off). Ends with the host.
async fn beat<E: Engine>(
    registry: std::sync::Weak<GroupRegistry<E>>,
    channels: PeerChannels,
    interval: Duration,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(registry) = registry.upgrade() else {
            return;
        };
        channels.mark_beat();
        for raft in registry.rafts() {
            if raft.is_leader() {
                // Only fails once that group's Raft has stopped.
                let _ = raft.trigger().heartbeat().await;
            }
        }
    }
}

async fn tick<E: Engine>(raft: GroupRaft<E>, proposer: Proposer) {
    let mut interval = tokio::time::interval(TICK_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if raft.is_leader()
            && let Err(e) = proposer.propose(Vec::new()).await
        {
            tracing::debug!(error = %e, "tick proposal failed");
        }
    }
}
