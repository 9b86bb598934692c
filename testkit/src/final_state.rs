//! What the cluster holds at the end of a run, as the harness dumps it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::balance::Balance;

/// Final journal and balances, filled by the harness after the run quiesces.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FinalState {
    /// Every transaction id found in the journal.
    pub applied_tx: BTreeSet<String>,
    /// Final balance of every account.
    pub balances: BTreeMap<String, Balance>,
    /// How many journal entries carry each transaction id.
    pub journal_tx_counts: BTreeMap<String, u32>,
}
