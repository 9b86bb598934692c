use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Currency, InvalidInput};

/// Longest accepted transaction or hold id, in bytes.
const TOKEN_LEN_MAX: usize = 64;
/// Longest id the ledger derives for its own records ([`TxId::reserved`]).
const RESERVED_LEN_MAX: usize = 128;
/// The first byte of the ids the ledger derives for its own records;
/// clients may not use it ([`TxId::is_reserved`]).
const RESERVED_PREFIX: char = '~';

/// A player, as numbered by the operator.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct PlayerId(pub u64);

impl fmt::Display for PlayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One wallet: a player's balance in one currency. Displays as `42/EUR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AccountId {
    pub player: PlayerId,
    pub currency: Currency,
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.player, self.currency)
    }
}

/// Index of a Raft log entry; every journal entry and receipt names one.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct LogIndex(pub u64);

impl fmt::Display for LogIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Whether `s` is 1..=64 bytes of printable ASCII without space (0x21..=0x7e).
fn is_token(s: &str) -> bool {
    let len_ok = (1..=TOKEN_LEN_MAX).contains(&s.len());
    len_ok && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// [`is_token`], or a longer id the ledger derived (reserved prefix, up to 128 bytes).
fn is_tx_token(s: &str) -> bool {
    let derived = s.starts_with(RESERVED_PREFIX) && s.len() <= RESERVED_LEN_MAX;
    is_token(s) || (derived && s.bytes().all(|b| (0x21..=0x7e).contains(&b)))
}

/// A client-chosen transaction id: the key of exactly-once application.
///
/// Validated on construction and on deserialization.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TxId(String);

impl TxId {
    pub fn new(s: impl Into<String>) -> Result<TxId, InvalidInput> {
        let s = s.into();
        if is_tx_token(&s) {
            Ok(TxId(s))
        } else {
            Err(InvalidInput::TxId(s))
        }
    }

    /// Whether the id starts with `~`, the prefix of the ids the ledger
    /// derives for its own records: a client's request may not use one.
    pub fn is_reserved(&self) -> bool {
        self.0.starts_with(RESERVED_PREFIX)
    }

    /// The id under which the payee's group records the credit of a
    /// transfer from another group: `~<payer player>/<currency>/<tx>`.
    /// Unique per payer wallet and transfer, and apart from every client id.
    pub fn transfer_credit(from: AccountId, tx: &TxId) -> TxId {
        TxId(format!("{RESERVED_PREFIX}{from}/{tx}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TxId {
    type Error = InvalidInput;

    fn try_from(s: String) -> Result<TxId, InvalidInput> {
        TxId::new(s)
    }
}

impl From<TxId> for String {
    fn from(id: TxId) -> String {
        id.0
    }
}

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client-chosen id of a hold, unique per account.
///
/// Same syntax as [`TxId`]; validated on construction and on deserialization.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HoldId(String);

impl HoldId {
    pub fn new(s: impl Into<String>) -> Result<HoldId, InvalidInput> {
        let s = s.into();
        if is_token(&s) {
            Ok(HoldId(s))
        } else {
            Err(InvalidInput::HoldId(s))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for HoldId {
    type Error = InvalidInput;

    fn try_from(s: String) -> Result<HoldId, InvalidInput> {
        HoldId::new(s)
    }
}

impl From<HoldId> for String {
    fn from(id: HoldId) -> String {
        id.0
    }
}

impl fmt::Display for HoldId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves the token rule: length 1..=64 and bytes 0x21..=0x7e only.
    #[test]
    fn token_rule() {
        let max = "x".repeat(64);
        for ok in ["a", "bet-123:round/7", "~!", max.as_str()] {
            assert_eq!(TxId::new(ok).unwrap().as_str(), ok);
            assert_eq!(HoldId::new(ok).unwrap().as_str(), ok);
        }
        let long = "x".repeat(65);
        for bad in ["", "a b", "tab\t", "é", "\u{7f}", long.as_str()] {
            assert_eq!(TxId::new(bad), Err(InvalidInput::TxId(bad.to_owned())));
            assert_eq!(HoldId::new(bad), Err(InvalidInput::HoldId(bad.to_owned())));
        }
    }

    // Proves a derived credit id is a valid, reserved tx id even for the
    // longest client id, and differs per payer and per transfer.
    #[test]
    fn derived_credit_ids_are_reserved_and_distinct() {
        let long = TxId::new("x".repeat(64)).unwrap();
        let payer = |p| AccountId {
            player: PlayerId(p),
            currency: Currency::parse("EUR").unwrap(),
        };
        let id = TxId::transfer_credit(payer(u64::MAX), &long);
        assert!(id.is_reserved());
        assert_eq!(TxId::new(id.as_str()).unwrap(), id);
        assert_ne!(TxId::transfer_credit(payer(1), &long), id);
        let other = TxId::new("y").unwrap();
        assert_ne!(
            TxId::transfer_credit(payer(1), &other),
            TxId::transfer_credit(payer(1), &long)
        );
        assert!(!TxId::new("a~").unwrap().is_reserved());
        // Only the reserved prefix buys the longer length.
        assert!(TxId::new("x".repeat(65)).is_err());
        assert!(TxId::new(format!("~{}", "x".repeat(128))).is_err());
    }

    // Proves the account id prints as player/currency.
    #[test]
    fn account_display() {
        let id = AccountId {
            player: PlayerId(42),
            currency: Currency::parse("EUR").unwrap(),
        };
        assert_eq!(id.to_string(), "42/EUR");
    }

    // Proves a deserialized id is validated, not trusted.
    #[test]
    fn try_from_validates() {
        assert!(TxId::try_from("ok".to_owned()).is_ok());
        assert!(TxId::try_from(String::new()).is_err());
        assert!(HoldId::try_from("a b".to_owned()).is_err());
    }
}
