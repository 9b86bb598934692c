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
    /// Transfers whose payer's and payee's lines were written by different
    /// shard groups (a transfer between groups), as the journals show.
    #[serde(default)]
    pub transfers_between_groups: u64,
    /// Tx ids of transfers between groups whose payee refused after the
    /// payer was debited: the money came back (a `transfer_back` line).
    #[serde(default)]
    pub returned_transfers: BTreeSet<String>,
}
