use serde::{Deserialize, Serialize};

use crate::{Command, LogIndex, TxId};

/// A command as the client sent it, with its transaction id and the time the
/// client first created it (a retry reuses both).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub tx: TxId,
    pub created_at_ns: u64,
    pub command: Command,
}

/// What the log entry carrying a batch of requests says about itself: its
/// index and the time its leader stamped on it. The only clock apply sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryContext {
    /// The shard group whose log carries the entry (recorded in journal lines).
    pub group: u64,
    pub log_index: LogIndex,
    pub leader_time_ns: u64,
}
