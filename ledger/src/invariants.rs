use std::collections::BTreeMap;

use crate::state::hold_time;
use crate::{Currency, State};

/// One currency's money: players' total and the system accounts' position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CurrencyMoney {
    /// Sum of available + held over every player account.
    pub players: i128,
    /// Net position of the house and gateway accounts; `-players` when the books balance.
    pub system: i128,
}

impl State {
    /// Per currency, the sum of every balance, players (available + held)
    /// and system accounts. Conservation means every value is 0.
    pub fn currency_totals(&self) -> BTreeMap<Currency, i128> {
        self.currency_money()
            .into_iter()
            .map(|(currency, money)| (currency, money.players.wrapping_add(money.system)))
            .collect()
    }

    /// Per currency, what players hold in total and the system accounts'
    /// net position. O(accounts): meant for audits, not the hot path.
    pub fn currency_money(&self) -> BTreeMap<Currency, CurrencyMoney> {
        let mut money: BTreeMap<Currency, CurrencyMoney> = BTreeMap::new();
        for (id, a) in &self.accounts {
            let m = money.entry(id.currency).or_default();
            m.players = m
                .players
                .wrapping_add(i128::from(a.available) + i128::from(a.held));
        }
        for ((currency, _), balance) in &self.system {
            let m = money.entry(*currency).or_default();
            m.system = m.system.wrapping_add(*balance);
        }
        money
    }

    /// Panics if any state invariant is broken. O(state): for tests, debug
    /// builds and after loading state, not for every entry in release.
    pub fn check_invariants(&self) {
        for (currency, total) in self.currency_totals() {
            assert_eq!(total, 0, "money of {currency} is not conserved");
        }
        let mut held_by_account = BTreeMap::new();
        for ((id, hold), h) in &self.holds {
            assert!(
                self.accounts.contains_key(id),
                "hold {hold} on missing account {id}"
            );
            assert!(h.remaining <= h.amount, "hold {hold} on {id} grew");
            let key = (hold_time(h), *id, hold.clone());
            if h.is_active() {
                assert!(
                    h.remaining > 0 && h.closed_at_ns == 0,
                    "active hold {hold} on {id} is empty"
                );
                assert!(
                    self.active_by_expiry.contains(&key),
                    "active hold {hold} on {id} unindexed"
                );
                *held_by_account.entry(*id).or_insert(0u128) += u128::from(h.remaining);
            } else {
                assert_eq!(
                    h.remaining, 0,
                    "closed hold {hold} on {id} still holds money"
                );
                assert!(
                    self.closed_by_time.contains(&key),
                    "closed hold {hold} on {id} unindexed"
                );
            }
        }
        assert_eq!(
            self.active_by_expiry.len() + self.closed_by_time.len(),
            self.holds.len()
        );
        for (id, a) in &self.accounts {
            let held = held_by_account.get(id).copied().unwrap_or(0);
            assert_eq!(
                u128::from(a.held),
                held,
                "held of {id} differs from its holds"
            );
            assert!(a.total().is_some(), "{id} holds more than u64::MAX");
        }
        for (tx, r) in &self.tx_records {
            assert!(
                self.tx_by_created.contains(&(r.created_at_ns, tx.clone())),
                "tx {tx} unindexed"
            );
        }
        assert_eq!(self.tx_by_created.len(), self.tx_records.len());
    }
}
