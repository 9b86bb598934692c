use serde::{Deserialize, Serialize};

use crate::Balance;

/// A player account's state.
///
/// Invariant: `available + held` fits in a `u64`, so releasing or expiring a
/// hold can never overflow. The `*_with` methods return `None` when a
/// change would break this or overflow a counter; callers turn that into a
/// refusal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub available: u64,
    /// Sum of what active holds still hold (pending debits).
    pub held: u64,
    /// Lifetime money out (debits, transfers out, captures), minor units.
    pub debited_total: u128,
    /// Lifetime money in (credits, transfers in), minor units.
    pub credited_total: u128,
    pub frozen: bool,
    /// Sequence number of the wallet's last journal line (0 before its open line).
    pub journal_seq: u64,
}

impl Account {
    pub fn balance(&self) -> Balance {
        Balance {
            available: self.available,
            held: self.held,
        }
    }

    /// `available + held`, or `None` if the invariant is broken.
    pub fn total(&self) -> Option<u64> {
        self.available.checked_add(self.held)
    }

    pub(crate) fn credit_with(&self, amount: u64) -> Option<Account> {
        self.total()?.checked_add(amount)?;
        Some(Account {
            available: self.available.checked_add(amount)?,
            credited_total: self.credited_total.checked_add(u128::from(amount))?,
            ..self.clone()
        })
    }

    pub(crate) fn debit_with(&self, amount: u64) -> Option<Account> {
        Some(Account {
            available: self.available.checked_sub(amount)?,
            debited_total: self.debited_total.checked_add(u128::from(amount))?,
            ..self.clone()
        })
    }

    pub(crate) fn hold_with(&self, amount: u64) -> Option<Account> {
        Some(Account {
            available: self.available.checked_sub(amount)?,
            held: self.held.checked_add(amount)?,
            ..self.clone()
        })
    }

    pub(crate) fn capture_with(&self, amount: u64) -> Option<Account> {
        Some(Account {
            held: self.held.checked_sub(amount)?,
            debited_total: self.debited_total.checked_add(u128::from(amount))?,
            ..self.clone()
        })
    }

    pub(crate) fn release_with(&self, amount: u64) -> Option<Account> {
        Some(Account {
            available: self.available.checked_add(amount)?,
            held: self.held.checked_sub(amount)?,
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves a credit is refused when available + held would pass u64::MAX.
    #[test]
    fn credit_respects_total_bound() {
        let a = Account {
            available: 1,
            held: u64::MAX - 2,
            ..Account::default()
        };
        assert!(a.credit_with(1).is_some());
        assert!(a.credit_with(2).is_none());
    }

    // Proves each transition moves money between the right fields.
    #[test]
    fn transitions() {
        let a = Account {
            available: 10,
            ..Account::default()
        };
        let h = a.hold_with(4).unwrap();
        assert_eq!((h.available, h.held), (6, 4));
        let c = h.capture_with(3).unwrap();
        assert_eq!((c.available, c.held, c.debited_total), (6, 1, 3));
        let r = c.release_with(1).unwrap();
        assert_eq!((r.available, r.held), (7, 0));
        assert!(r.debit_with(8).is_none());
        assert_eq!(r.debit_with(7).unwrap().debited_total, 10);
        assert!(a.hold_with(11).is_none());
    }
}
