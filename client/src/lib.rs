//! geowallet's client library, the one game and payment services link.
//!
//! It finds and caches the group leader, follows `NotLeader` redirects,
//! coalesces concurrent commands to the same node into one RPC, and retries
//! transport failures and timeouts with the *same* transaction id (and
//! creation time), so a retry can never apply twice. Refusals come back as
//! typed errors; a command whose outcome is still unknown when the retry
//! budget is spent is reported as `Error::Indeterminate`: retry it later
//! with the same `Tx` to learn its outcome.
//!
//! Depends only on `geowallet-proto`: it knows nothing of server internals.

mod batcher;
mod client;
mod error;
mod events;
mod types;

pub use client::{BackupOf, BackupStream, Client, ClientConfig, ClientTls};
pub use error::Error;
pub use events::{Chain, EventLine, EventStream, GroupEvents, Resume};
pub use types::{
    Account, Audit, Balance, CreditKind, CurrencyTotals, DebitKind, GroupStatus, JournalCursor,
    JournalEntry, JournalPage, Migration, MoveStats, NodeRef, Receipt, Replica, Status, Tx,
};
