use serde::{Deserialize, Serialize};

use crate::{LogIndex, Refusal};

/// A player account's money, in minor units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    pub available: u64,
    pub held: u64,
}

/// What a successful command reports back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The log entry that applied the command (the first one, for a retry).
    pub log_index: LogIndex,
    /// The primary account after the command.
    pub balance: Balance,
    /// A transfer's `to` account after the command; `None` otherwise.
    pub counterpart: Option<Balance>,
}

/// The result of one request.
pub type Outcome = Result<Receipt, Refusal>;
