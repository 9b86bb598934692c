//! The ledger's rows in memory: the reference implementation of
//! [`LedgerRows`] for unit tests, the property test and the fuzzer.
//! Production keeps them in RocksDB (geowallet-storage).

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    Account, AccountId, Changes, Currency, Hold, HoldId, LedgerRows, Meta, PendingTransfer,
    PlayerId, PlayerMove, SystemAccount, TimeIndex, TimeKey, TxId, TxRecord, WalletRows,
};

/// Every row of one group's ledger, in ordered maps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemRows {
    pub accounts: BTreeMap<AccountId, Account>,
    pub holds: BTreeMap<(AccountId, HoldId), Hold>,
    pub tx_records: BTreeMap<(AccountId, TxId), TxRecord>,
    pub system: BTreeMap<(Currency, SystemAccount), i128>,
    pub players_total: BTreeMap<Currency, i128>,
    /// The time indexes, each its own ordered set.
    pub time_index: BTreeMap<TimeIndex, BTreeSet<TimeKey>>,
    /// Move markers of the players a move touched.
    pub players: BTreeMap<PlayerId, PlayerMove>,
    /// Transfers to other groups not settled yet.
    pub transfers: BTreeMap<(AccountId, TxId), PendingTransfer>,
    pub meta: Meta,
}

impl MemRows {
    /// Writes what an apply changed.
    pub fn commit(&mut self, changes: &Changes) {
        for (id, a) in &changes.accounts {
            match a {
                Some(a) => self.accounts.insert(*id, a.clone()),
                None => self.accounts.remove(id),
            };
        }
        for (player, m) in &changes.players {
            match m {
                Some(m) => self.players.insert(*player, m.clone()),
                None => self.players.remove(player),
            };
        }
        for (key, h) in &changes.holds {
            match h {
                Some(h) => self.holds.insert(key.clone(), h.clone()),
                None => self.holds.remove(key),
            };
        }
        for (key, r) in &changes.tx_records {
            match r {
                Some(r) => self.tx_records.insert(key.clone(), r.clone()),
                None => self.tx_records.remove(key),
            };
        }
        for (key, t) in &changes.transfers {
            match t {
                Some(t) => self.transfers.insert(key.clone(), t.clone()),
                None => self.transfers.remove(key),
            };
        }
        self.system
            .extend(changes.system.iter().map(|(k, v)| (*k, *v)));
        let totals = changes.players_total.iter().map(|(k, v)| (*k, *v));
        self.players_total.extend(totals);
        for (key, present) in &changes.time_index {
            let index = self.time_index.entry(key.index()).or_default();
            if *present {
                index.insert(key.clone());
            } else {
                index.remove(key);
            }
            // No empty sets: two MemRows with the same rows compare equal.
            if index.is_empty() {
                self.time_index.remove(&key.index());
            }
        }
        if let Some(meta) = changes.meta {
            self.meta = meta;
        }
    }

    /// Per currency, players' total plus the system accounts: 0 when the books balance.
    pub fn currency_totals(&self) -> BTreeMap<Currency, i128> {
        let mut totals: BTreeMap<Currency, i128> = BTreeMap::new();
        for (id, a) in &self.accounts {
            let t = totals.entry(id.currency).or_default();
            *t = t.wrapping_add(i128::from(a.available) + i128::from(a.held));
        }
        for ((currency, _), balance) in &self.system {
            let t = totals.entry(*currency).or_default();
            *t = t.wrapping_add(*balance);
        }
        totals
    }

    /// Panics if any invariant of the rows is broken. O(rows): for tests,
    /// the fuzzer and the property test.
    pub fn check_invariants(&self) {
        for (currency, total) in self.currency_totals() {
            assert_eq!(total, 0, "money of {currency} is not conserved");
        }
        let mut sums: BTreeMap<Currency, i128> = BTreeMap::new();
        for (id, a) in &self.accounts {
            assert!(a.total().is_some(), "{id} holds more than u64::MAX");
            *sums.entry(id.currency).or_default() += i128::from(a.available) + i128::from(a.held);
        }
        for (currency, total) in &self.players_total {
            let sum = sums.get(currency).copied().unwrap_or(0);
            assert_eq!(*total, sum, "players' total of {currency} is stale");
        }
        for currency in sums.keys() {
            assert!(
                self.players_total.contains_key(currency),
                "players' total of {currency} missing"
            );
        }
        let mut held_by_account = BTreeMap::new();
        for ((id, hold), h) in &self.holds {
            assert!(
                self.accounts.contains_key(id),
                "hold {hold} on missing account {id}"
            );
            assert!(h.remaining <= h.amount, "hold {hold} on {id} grew");
            if h.is_active() {
                assert!(
                    h.remaining > 0 && h.closed_at_ns == 0,
                    "active hold {hold} on {id} is empty"
                );
                *held_by_account.entry(*id).or_insert(0u128) += u128::from(h.remaining);
            } else {
                assert_eq!(h.remaining, 0, "closed hold {hold} on {id} holds money");
            }
            let key = TimeKey::of_hold(*id, hold.clone(), h);
            assert!(self.indexed(&key), "hold {hold} on {id} unindexed");
        }
        for (id, a) in &self.accounts {
            let held = held_by_account.get(id).copied().unwrap_or(0);
            assert_eq!(
                u128::from(a.held),
                held,
                "held of {id} differs from its holds"
            );
        }
        for ((wallet, tx), r) in &self.tx_records {
            let key = TimeKey::TxCreated {
                created_at_ns: r.created_at_ns,
                account: *wallet,
                tx: tx.clone(),
            };
            assert!(self.indexed(&key), "tx {tx} of {wallet} unindexed");
        }
        for (from, tx) in self.transfers.keys() {
            assert!(
                self.accounts.contains_key(from),
                "transfer {tx} from missing account {from}"
            );
        }
        for (player, m) in &self.players {
            if matches!(m, PlayerMove::Leaving { .. } | PlayerMove::Moved { .. }) {
                assert!(
                    self.wallet_rows(*player).is_empty(),
                    "player {player} left this group but still has rows here"
                );
            }
        }
        assert_eq!(
            self.time_index.values().map(BTreeSet::len).sum::<usize>(),
            self.holds.len() + self.tx_records.len(),
            "time index has keys of no row"
        );
    }
}

impl MemRows {
    fn indexed(&self, key: &TimeKey) -> bool {
        self.time_index
            .get(&key.index())
            .is_some_and(|keys| keys.contains(key))
    }
}

impl LedgerRows for MemRows {
    fn first_after(&self, index: TimeIndex, after_ns: u64) -> Option<u64> {
        let keys = self.time_index.get(&index)?;
        keys.iter().map(TimeKey::time_ns).find(|t| *t > after_ns)
    }

    fn account(&self, id: &AccountId) -> Option<Account> {
        self.accounts.get(id).cloned()
    }

    fn hold(&self, id: &AccountId, hold: &HoldId) -> Option<Hold> {
        self.holds.get(&(*id, hold.clone())).cloned()
    }

    fn tx_record(&self, wallet: &AccountId, tx: &TxId) -> Option<TxRecord> {
        self.tx_records.get(&(*wallet, tx.clone())).cloned()
    }

    fn pending_transfer(&self, from: &AccountId, tx: &TxId) -> Option<PendingTransfer> {
        self.transfers.get(&(*from, tx.clone())).cloned()
    }

    fn system_balance(&self, currency: Currency, which: SystemAccount) -> i128 {
        self.system.get(&(currency, which)).copied().unwrap_or(0)
    }

    fn players_total(&self, currency: Currency) -> i128 {
        self.players_total.get(&currency).copied().unwrap_or(0)
    }

    fn meta(&self) -> Meta {
        self.meta
    }

    fn player_move(&self, player: PlayerId) -> Option<PlayerMove> {
        self.players.get(&player).cloned()
    }

    fn wallet_rows(&self, player: PlayerId) -> WalletRows {
        let mine = |id: &AccountId| id.player == player;
        WalletRows {
            accounts: (self.accounts.iter())
                .filter(|(id, _)| mine(id))
                .map(|(id, a)| (*id, a.clone()))
                .collect(),
            holds: (self.holds.iter())
                .filter(|((id, _), _)| mine(id))
                .map(|((id, hold), h)| (*id, hold.clone(), h.clone()))
                .collect(),
            tx_records: (self.tx_records.iter())
                .filter(|((id, _), _)| mine(id))
                .map(|((id, tx), r)| (*id, tx.clone(), r.clone()))
                .collect(),
            transfers: (self.transfers.iter())
                .filter(|((id, _), _)| mine(id))
                .map(|((id, tx), t)| (*id, tx.clone(), t.clone()))
                .collect(),
        }
    }

    fn due(&self, index: TimeIndex, from_ns: u64, until_ns: u64, limit: usize) -> Vec<TimeKey> {
        let Some(keys) = self.time_index.get(&index) else {
            return Vec::new();
        };
        keys.iter()
            .skip_while(|k| k.time_ns() < from_ns)
            .take_while(|k| k.time_ns() <= until_ns)
            .take(limit)
            .cloned()
            .collect()
    }
}
