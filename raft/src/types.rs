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
        AsyncRuntime = openraft::TokioRuntime,
);

/// One shard group's Raft handle (RocksDB by default; `MemEngine` in simulation).
pub type GroupRaft<E = geowallet_storage::RocksEngine> =
    openraft::Raft<TypeConfig, crate::LedgerStateMachine<E>>;
