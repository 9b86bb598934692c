use geowallet_ledger::{Outcome, Request};
use serde::{Deserialize, Serialize};

use crate::directory::{DirCommand, DirReply};

/// The payload of one Raft entry: requests proposed together by the leader
/// (batching amortises fsync and replication), stamped with the leader's
/// clock, which is the only time the ledger rules ever see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub leader_time_ns: u64,
    pub requests: Vec<Request>,
    /// Directory commands (the directory group's entries only).
    pub directory: Vec<DirCommand>,
}

impl Proposal {
    /// Ledger requests stamped with `leader_time_ns`.
    pub fn ledger(leader_time_ns: u64, requests: Vec<Request>) -> Proposal {
        Proposal {
            leader_time_ns,
            requests,
            directory: Vec::new(),
        }
    }
}

/// What applying one entry answered: an outcome per ledger request and a
/// reply per directory command, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub outcomes: Vec<Outcome>,
    pub directory: Vec<DirReply>,
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
