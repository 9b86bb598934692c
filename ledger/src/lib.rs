//! The money rules of geowallet: player accounts, holds, system (house and
//! gateway) accounts, the commands that move money between them, their
//! outcomes and refusals, the journal, the idempotency records and the
//! invariants (money is conserved per currency). `State::apply` is a pure,
//! deterministic function of the state and one log entry: the entry brings
//! its index and leader time, so every replica computes the same outcomes.
//! This crate must never depend on I/O, clocks, randomness, async, tokio,
//! RocksDB or openraft; it depends on serde alone, which is what lets it be
//! fuzzed, property-tested and simulated.

mod account;
mod amount;
mod changes;
mod command;
mod config;
mod currency;
mod entry;
mod execute;
mod fingerprint;
mod hold;
mod ids;
mod invalid_input;
mod invariants;
mod journal;
mod maintenance;
mod receipt;
mod refusal;
mod request;
mod state;
mod system_account;
mod tx_record;

#[cfg(test)]
mod fixture;

pub use account::Account;
pub use amount::Amount;
pub use changes::{Changes, Meta};
pub use command::{Command, CreditKind, DebitKind};
pub use config::LedgerConfig;
pub use currency::Currency;
pub use fingerprint::{Fnv1a, fingerprint};
pub use hold::{Hold, HoldStatus};
pub use ids::{AccountId, HoldId, LogIndex, PlayerId, TxId};
pub use invalid_input::InvalidInput;
pub use invariants::CurrencyMoney;
pub use journal::{JournalEntry, JournalKind};
pub use receipt::{Balance, Outcome, Receipt};
pub use refusal::Refusal;
pub use request::{EntryContext, Request};
pub use state::State;
pub use system_account::SystemAccount;
pub use tx_record::TxRecord;
