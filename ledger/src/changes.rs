use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    Account, AccountId, Currency, Hold, HoldId, JournalEntry, PendingTransfer, PlayerId,
    PlayerMove, SystemAccount, TimeIndex, TimeKey, TxId, TxRecord,
};

/// Ledger-wide values that are not per account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The last effective leader time; never goes backwards.
    pub leader_time_ns: u64,
    /// Per time index, the time of the last key expiry or purging took:
    /// every key before it is gone, so the next walk starts there instead
    /// of stepping over the deleted keys (RocksDB tombstones) every entry.
    /// New keys are never older: holds expire after now, records younger
    /// than the window are kept, holds close now.
    pub swept_ns: [u64; 3],
    /// Per time index, a time no present key is older than: a walk whose
    /// bound is before it cannot find anything and is skipped (no seek).
    /// Lowered by every insert, raised by a walk to the next key it saw.
    pub next_due_ns: [u64; 3],
}

impl Meta {
    pub fn swept_ns(&self, index: TimeIndex) -> u64 {
        self.swept_ns[index.slot()]
    }
}

/// Everything one or more applies wrote, for the storage layer to persist in
/// one write batch: one item per key with its latest value (`None` or
/// `false` = deleted), keys in ascending order; the journal in the order it
/// was written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// `None` = removed (the wallet moved to another group).
    pub accounts: BTreeMap<AccountId, Option<Account>>,
    pub holds: BTreeMap<(AccountId, HoldId), Option<Hold>>,
    /// By (wallet, tx id); `None` = purged.
    pub tx_records: BTreeMap<(AccountId, TxId), Option<TxRecord>>,
    pub system: BTreeMap<(Currency, SystemAccount), i128>,
    /// Sum of every player account of a currency (available + held).
    pub players_total: BTreeMap<Currency, i128>,
    /// Time index keys: `true` = present, `false` = removed.
    pub time_index: BTreeMap<TimeKey, bool>,
    pub journal: Vec<JournalEntry>,
    /// Players' move markers; `None` = removed.
    pub players: BTreeMap<PlayerId, Option<PlayerMove>>,
    /// Transfers to other groups by (payer, tx id); `None` = settled or moved away.
    pub transfers: BTreeMap<(AccountId, TxId), Option<PendingTransfer>>,
    /// `Some` if `apply` ran.
    pub meta: Option<Meta>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
            && self.holds.is_empty()
            && self.tx_records.is_empty()
            && self.system.is_empty()
            && self.players_total.is_empty()
            && self.time_index.is_empty()
            && self.journal.is_empty()
            && self.players.is_empty()
            && self.transfers.is_empty()
            && self.meta.is_none()
    }

    /// Folds `later` into `self`: later values win, journals concatenate.
    pub fn merge(&mut self, later: Changes) {
        self.accounts.extend(later.accounts);
        self.holds.extend(later.holds);
        self.tx_records.extend(later.tx_records);
        self.system.extend(later.system);
        self.players_total.extend(later.players_total);
        self.time_index.extend(later.time_index);
        self.journal.extend(later.journal);
        self.players.extend(later.players);
        self.transfers.extend(later.transfers);
        if later.meta.is_some() {
            self.meta = later.meta;
        }
    }
}
