use serde::{Deserialize, Serialize};

use crate::{AccountId, Balance, CreditKind, DebitKind, LogIndex, TxId};

/// What a journal entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JournalKind {
    Open,
    Credit(CreditKind),
    Debit(DebitKind),
    TransferOut,
    TransferIn,
    Hold,
    Capture(DebitKind),
    Release,
    Expire,
    Freeze,
    Unfreeze,
    /// The wallet left this group for another (its whole balance went to
    /// transit; the line's balance is zero).
    MoveOut,
    /// The wallet arrived from another group (its balance came from transit).
    MoveIn,
    /// The move was refused by the target: the wallet came back from transit.
    MoveBack,
    /// A transfer to a player of another group was refused there: its
    /// money came back from transit (the line after its `TransferOut`).
    TransferBack,
}

/// One line of a wallet's audit trail: one per account a successful command
/// (or a hold expiry) touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub account: AccountId,
    /// The wallet's own sequence, from 1 (its open line), without gaps: the
    /// journal's key, which a wallet keeps when it moves between groups.
    pub seq: u64,
    /// The shard group and log entry that applied it.
    pub group: u64,
    pub log_index: LogIndex,
    /// Order within the log entry, from 0; expiries come first.
    pub position: u32,
    /// `None` for a hold expiry, which no request caused.
    pub tx: Option<TxId>,
    pub kind: JournalKind,
    /// Money moved, minor units; 0 for open, freeze and unfreeze.
    pub amount: u64,
    /// The account after the change.
    pub balance: Balance,
}
