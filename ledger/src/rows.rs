//! The rows `apply` reads, behind a trait so the rules stay pure: storage
//! implements it over RocksDB (batched point reads, prefetched per entry),
//! [`crate::MemRows`] in memory for tests, the property test and the fuzzer.

use serde::{Deserialize, Serialize};

use crate::{
    Account, AccountId, Currency, Hold, HoldId, Meta, PendingTransfer, PlayerId, PlayerMove,
    SystemAccount, TxId, TxRecord,
};

/// One key of the ledger's time indexes. Ordered by index kind, then time,
/// then wallet and id, which is the order expiry and purging walk them in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TimeKey {
    /// An active hold, by the time it expires.
    HoldExpiry {
        expires_at_ns: u64,
        account: AccountId,
        hold: HoldId,
    },
    /// A closed hold, by the time it closed (purged one window later).
    HoldClosed {
        closed_at_ns: u64,
        account: AccountId,
        hold: HoldId,
    },
    /// A transaction record, by the time its request was created.
    TxCreated {
        created_at_ns: u64,
        account: AccountId,
        tx: TxId,
    },
}

/// Which of the time indexes a [`TimeKey`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimeIndex {
    HoldExpiry,
    HoldClosed,
    TxCreated,
}

impl TimeIndex {
    /// Position in per-index arrays ([`crate::Meta::swept_ns`]).
    pub fn slot(self) -> usize {
        match self {
            TimeIndex::HoldExpiry => 0,
            TimeIndex::HoldClosed => 1,
            TimeIndex::TxCreated => 2,
        }
    }
}

impl TimeKey {
    pub fn index(&self) -> TimeIndex {
        match self {
            TimeKey::HoldExpiry { .. } => TimeIndex::HoldExpiry,
            TimeKey::HoldClosed { .. } => TimeIndex::HoldClosed,
            TimeKey::TxCreated { .. } => TimeIndex::TxCreated,
        }
    }

    pub fn time_ns(&self) -> u64 {
        match self {
            TimeKey::HoldExpiry { expires_at_ns, .. } => *expires_at_ns,
            TimeKey::HoldClosed { closed_at_ns, .. } => *closed_at_ns,
            TimeKey::TxCreated { created_at_ns, .. } => *created_at_ns,
        }
    }

    /// The index key of a hold: by expiry while active, by closing once closed.
    pub fn of_hold(account: AccountId, hold: HoldId, h: &Hold) -> TimeKey {
        if h.is_active() {
            TimeKey::HoldExpiry {
                expires_at_ns: h.expires_at_ns,
                account,
                hold,
            }
        } else {
            TimeKey::HoldClosed {
                closed_at_ns: h.closed_at_ns,
                account,
                hold,
            }
        }
    }
}

/// Every row of one player's wallets in a group, each list in key order:
/// what moves when the player's wallet moves to another group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletRows {
    pub accounts: Vec<(AccountId, Account)>,
    pub holds: Vec<(AccountId, HoldId, Hold)>,
    /// By wallet (a command's primary account) and tx id.
    pub tx_records: Vec<(AccountId, TxId, TxRecord)>,
    /// Transfers to other groups not settled yet, by payer account and tx id.
    pub transfers: Vec<(AccountId, TxId, PendingTransfer)>,
}

impl WalletRows {
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
            && self.holds.is_empty()
            && self.tx_records.is_empty()
            && self.transfers.is_empty()
    }
}

/// Read access to one group's ledger rows, as of the last applied entry.
///
/// Reads cannot fail here: an implementation over a disk remembers the first
/// error, and its caller discards the outcome of that apply and stops.
pub trait LedgerRows {
    fn account(&self, id: &AccountId) -> Option<Account>;
    fn hold(&self, id: &AccountId, hold: &HoldId) -> Option<Hold>;
    /// The record of `tx` in `wallet` (a command's primary account).
    fn tx_record(&self, wallet: &AccountId, tx: &TxId) -> Option<TxRecord>;
    /// The transfer `tx` from `from` to another group, while unsettled.
    fn pending_transfer(&self, from: &AccountId, tx: &TxId) -> Option<PendingTransfer>;
    /// A system account's balance; 0 if it never moved.
    fn system_balance(&self, currency: Currency, which: SystemAccount) -> i128;
    /// Sum of available + held over every player account of `currency`.
    fn players_total(&self, currency: Currency) -> i128;
    fn meta(&self) -> Meta;
    /// Up to `limit` keys of `index` whose time is in `from_ns..=until_ns`,
    /// in key order.
    fn due(&self, index: TimeIndex, from_ns: u64, until_ns: u64, limit: usize) -> Vec<TimeKey>;
    /// The time of the first key of `index` after `after_ns`, if any (a
    /// time at or before it is also acceptable: it is used as a bound).
    fn first_after(&self, index: TimeIndex, after_ns: u64) -> Option<u64>;
    /// Every account, hold and tx record of `player` (a range read: the
    /// player's rows are contiguous in every store).
    fn wallet_rows(&self, player: PlayerId) -> WalletRows;
    /// Where `player` stands in this group's moves, if a move touched it.
    fn player_move(&self, player: PlayerId) -> Option<PlayerMove>;
}
