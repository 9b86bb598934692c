use geowallet_ledger::Request;
use serde::{Deserialize, Serialize};

/// The payload of one Raft entry: requests proposed together by the leader
/// (batching amortises fsync and replication), stamped with the leader's
/// clock, which is the only time the ledger rules ever see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub leader_time_ns: u64,
    pub requests: Vec<Request>,
}

impl std::fmt::Display for Proposal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "proposal of {} requests at {} ns",
            self.requests.len(),
            self.leader_time_ns
        )
    }
}
