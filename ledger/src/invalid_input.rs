use std::fmt;

use serde::{Deserialize, Serialize};

/// A value from outside (client, wire, disk) that breaks a syntax rule of an id.
///
/// Each variant carries the offending text, escaped so that it prints on one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvalidInput {
    Currency(String),
    TxId(String),
    HoldId(String),
}

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidInput::Currency(s) => write!(
                f,
                "invalid currency {s:?}: must be 3 to 8 characters of A-Z and 0-9, \
                 starting with a letter"
            ),
            InvalidInput::TxId(s) => write!(
                f,
                "invalid transaction id {s:?}: must be 1 to 64 bytes of printable ASCII \
                 without spaces (0x21..=0x7e)"
            ),
            InvalidInput::HoldId(s) => write!(
                f,
                "invalid hold id {s:?}: must be 1 to 64 bytes of printable ASCII \
                 without spaces (0x21..=0x7e)"
            ),
        }
    }
}

impl std::error::Error for InvalidInput {}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves each message names the bad value and states the rule.
    #[test]
    fn display_names_value_and_rule() {
        let s = InvalidInput::Currency("eu".into()).to_string();
        assert!(s.contains("\"eu\"") && s.contains("3 to 8"), "{s}");
        let s = InvalidInput::TxId("a b".into()).to_string();
        assert!(s.contains("transaction id") && s.contains("0x21"), "{s}");
        let s = InvalidInput::HoldId(String::new()).to_string();
        assert!(s.contains("hold id") && s.contains("1 to 64"), "{s}");
    }
}
