//! A balance as reported by the system under test.

use serde::{Deserialize, Serialize};

/// Minor units, signed and wide on purpose: this is an *observation*, and a
/// buggy system may report a negative or wrapped-around (> i64::MAX) value
/// that the checkers must see rather than fail to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Balance {
    pub available: i128,
    pub held: i128,
}

impl Balance {
    pub fn new(available: u64, held: u64) -> Self {
        Balance {
            available: i128::from(available),
            held: i128::from(held),
        }
    }

    /// available + held.
    pub fn total(&self) -> i128 {
        self.available + self.held
    }

    /// True when both parts fit a non-negative `i64` (minor units as stored).
    pub fn is_plausible(&self) -> bool {
        let range = 0..=i128::from(i64::MAX);
        range.contains(&self.available) && range.contains(&self.held)
    }
}
