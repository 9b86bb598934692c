use geowallet_ledger::{MoveCommand, MoveOutcome, Outcome, Request};
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
    /// A step of a wallet moving between groups (a shard group's entry
    /// that carries nothing else).
    pub wallet_move: Option<MoveCommand>,
}

impl Proposal {
    /// Ledger requests stamped with `leader_time_ns`.
    pub fn ledger(leader_time_ns: u64, requests: Vec<Request>) -> Proposal {
        Proposal {
            leader_time_ns,
            requests,
            directory: Vec::new(),
            wallet_move: None,
        }
    }

    /// Directory commands (no ledger time: the directory reads none).
    pub fn directory(commands: Vec<DirCommand>) -> Proposal {
        Proposal {
            leader_time_ns: 0,
            requests: Vec::new(),
            directory: commands,
            wallet_move: None,
        }
    }

    /// One step of a wallet move, stamped with `leader_time_ns` (arrivals
    /// settle what came due in flight by it).
    pub fn wallet_move(leader_time_ns: u64, step: MoveCommand) -> Proposal {
        Proposal {
            leader_time_ns,
            requests: Vec::new(),
            directory: Vec::new(),
            wallet_move: Some(step),
        }
    }
}

/// What applying one entry answered: an outcome per ledger request, a
/// reply per directory command, in order, and a wallet move step's outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub outcomes: Vec<Outcome>,
    pub directory: Vec<DirReply>,
    pub wallet_move: Option<MoveOutcome>,
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
