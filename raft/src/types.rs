use serde::{Deserialize, Serialize};

use crate::{Applied, Proposal};

/// A member of a group as its membership records it (in log entries and
/// snapshots): where to reach it and where it stands. Region and datacenter
/// decide dual-datacenter acknowledgement and leader placement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeInfo {
    /// `host:port` of the node's gRPC server.
    pub addr: String,
    /// Region name, e.g. `eu`.
    pub region: String,
    /// Datacenter within the region: `a` or `b`.
    pub dc: String,
}

impl std::fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}/{})", self.addr, self.region, self.dc)
    }
}

openraft::declare_raft_types!(
    /// geowallet's openraft configuration: log entries carry a `Proposal`
    /// (a batch of ledger requests with the leader's time), and apply answers
    /// one outcome per request.
    pub TypeConfig:
        D = Proposal,
        R = Applied,
        NodeId = u64,
        Node = NodeInfo,
        AsyncRuntime = Runtime,
);

/// openraft's runtime: real tokio, or madsim's simulated one under `--cfg madsim`.
#[cfg(not(madsim))]
pub type Runtime = openraft::TokioRuntime;
#[cfg(madsim)]
pub type Runtime = crate::sim_runtime::MadsimRuntime;

/// One shard group's Raft handle (RocksDB by default; `MemEngine` in simulation).
pub type GroupRaft<E = geowallet_storage::DefaultEngine> =
    openraft::Raft<TypeConfig, crate::LedgerStateMachine<E>>;

/// The openraft settings every geowallet node uses (production and
/// simulation); callers set cluster name, timeouts and snapshot policy on top.
pub fn base_config() -> openraft::Config {
    openraft::Config {
        // Replicate entries as soon as they are written (they are readable at
        // once), so the leader's fsync overlaps the followers'; commit still
        // needs a majority with the entry durable.
        broadcast_submitted_on_append: Some(true),
        // A restarted leader must win an election again. Restoring it at once
        // (openraft's default) is unsafe here: applied state and the committed
        // index are not fsynced, so the restored leader serves reads from a
        // stale state machine (found by the simulator: a read missing an
        // acknowledged credit after a power loss, seed 100326 of `crashes`).
        enable_leader_restore: Some(false),
        // Entries per AppendEntries at most; bytes are bounded separately
        // (`MessageLimits`: the network sends the prefix that fits).
        max_payload_entries: 256,
        ..Default::default()
    }
}
