use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{
    Account, AccountId, Currency, Hold, HoldId, JournalEntry, SystemAccount, TxId, TxRecord,
};

/// Ledger-wide values that are not per account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The last effective leader time; never goes backwards.
    pub leader_time_ns: u64,
}

/// Everything `apply` touched since the last `take_changes`, for the storage
/// layer to persist in one write batch.
///
/// One item per key with its latest value (`None` = deleted), keys in
/// ascending order; the journal in the order it was written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    pub accounts: Vec<(AccountId, Account)>,
    /// `None` = purged.
    pub holds: Vec<(AccountId, HoldId, Option<Hold>)>,
    /// `None` = purged.
    pub tx_records: Vec<(TxId, Option<TxRecord>)>,
    pub system: Vec<(Currency, SystemAccount, i128)>,
    pub journal: Vec<JournalEntry>,
    /// `Some` if `apply` ran since the last `take_changes`.
    pub meta: Option<Meta>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
            && self.holds.is_empty()
            && self.tx_records.is_empty()
            && self.system.is_empty()
            && self.journal.is_empty()
            && self.meta.is_none()
    }
}

/// Keys written since the last `take_changes`; values are read from the state
/// when changes are taken, so the last write wins by construction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Dirty {
    pub(crate) accounts: BTreeSet<AccountId>,
    pub(crate) holds: BTreeSet<(AccountId, HoldId)>,
    pub(crate) tx_records: BTreeSet<TxId>,
    pub(crate) system: BTreeSet<(Currency, SystemAccount)>,
    pub(crate) journal: Vec<JournalEntry>,
    pub(crate) meta: bool,
}
