use geowallet_ledger::Outcome;

use crate::Proposal;

openraft::declare_raft_types!(
    /// geowallet's openraft configuration: log entries carry a `Proposal`
    /// (a batch of ledger requests with the leader's time), and apply answers
    /// one outcome per request.
    pub TypeConfig:
        D = Proposal,
        R = Vec<Outcome>,
        NodeId = u64,
        Node = openraft::BasicNode,
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
