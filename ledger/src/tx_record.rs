use serde::{Deserialize, Serialize};

use crate::Outcome;

/// What the ledger remembers of an applied transaction id, for the
/// idempotency window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRecord {
    pub created_at_ns: u64,
    /// [`crate::fingerprint`] of the command first applied under this id.
    pub fingerprint: u64,
    pub outcome: Outcome,
}
