//! The money rules of geowallet: player accounts, holds, system (house and
//! gateway) accounts, the commands that move money between them, their
//! outcomes and refusals, the journal, the idempotency records and the
//! invariants (money is conserved per currency). [`apply`] is a pure,
//! deterministic function of the stored rows (read through [`LedgerRows`])
//! and one log entry: the entry brings its index and leader time, so every
//! replica computes the same outcomes and the same [`Changes`] to write.
//! [`State`] keeps the rows in memory for tests; storage keeps them in RocksDB.
//! Moves of wallets and transfers between groups are steps of their own
//! ([`apply_move`]), each one entry of one group.
//! This crate must never depend on I/O, clocks, randomness, async, tokio,
//! RocksDB or openraft; it depends on serde alone, which is what lets it be
//! fuzzed, property-tested and simulated.

mod account;
mod amount;
mod changes;
mod command;
mod config;
mod cross_transfer;
mod currency;
mod entry;
mod events;
mod execute;
mod fingerprint;
mod hold;
mod ids;
mod invalid_input;
mod journal;
mod maintenance;
mod mem_rows;
mod overlay;
mod receipt;
mod refusal;
mod request;
mod rows;
mod state;
mod system_account;
mod tx_record;
mod wallet_move;

#[cfg(test)]
mod fixture;

pub use account::Account;
pub use amount::Amount;
pub use changes::{Changes, Meta};
pub use command::{Command, CreditKind, DebitKind};
pub use config::LedgerConfig;
pub use cross_transfer::{PendingTransfer, is_final};
pub use currency::Currency;
pub use events::{
    Chain, EntryEvents, GENESIS, LINE_COLUMNS, canonical_line, chain_next, entry_header, hex,
    parse_hex, quote_tx,
};
pub use fingerprint::{Fnv1a, fingerprint};
pub use hold::{Hold, HoldStatus};
pub use ids::{AccountId, HoldId, LogIndex, PlayerId, TxId};
pub use invalid_input::InvalidInput;
pub use journal::{JournalEntry, JournalKind};
pub use mem_rows::MemRows;
pub use receipt::{Balance, Outcome, Receipt};
pub use refusal::Refusal;
pub use request::{EntryContext, Request};
pub use rows::{LedgerRows, TimeIndex, TimeKey, WalletRows};
pub use state::{State, apply};
pub use system_account::SystemAccount;
pub use tx_record::TxRecord;
pub use wallet_move::{MoveCommand, MoveId, MoveOutcome, MoveRefusal, PlayerMove, apply_move};
