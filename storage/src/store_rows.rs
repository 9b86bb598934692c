//! The ledger's rows read from the store for one apply: the keys an entry
//! names are fetched in one batched read before apply runs, anything else
//! (the due keys of the time indexes, the rows they point at) on demand.
//! `LedgerRows` cannot fail, so the first read error is kept and the caller
//! must check [`StoreRows::finish`] before using the outcome.

use std::cell::RefCell;
use std::collections::HashMap;

use geowallet_ledger::{
    Account, AccountId, Command, Currency, Hold, HoldId, LedgerRows, MemRows, Meta,
    PendingTransfer, PlayerId, PlayerMove, Request, SystemAccount, TimeIndex, TimeKey, TxId,
    TxRecord, WalletRows,
};
use serde::de::DeserializeOwned;

use crate::engine::{Cf, Direction, Engine};
use crate::keys::{
    StateKind, account_key, decode_time_key, hold_key, ledger_meta_key, player_key, player_range,
    players_total_key, system_key, time_range, transfer_key, tx_key,
};
use crate::seal::decode;
use crate::state_store::{decode_i128, dump_row};
use crate::{StateStore, StorageError};

/// Read access to one group's rows for `geowallet_ledger::apply`. Valid for
/// one entry: it caches what it read, so writes made after it was created
/// are not seen.
pub struct StoreRows<'a, E: Engine> {
    store: &'a StateStore<E>,
    cache: RefCell<HashMap<Vec<u8>, Option<Vec<u8>>>>,
    error: RefCell<Option<StorageError>>,
}

impl<'a, E: Engine> StoreRows<'a, E> {
    pub(crate) fn new(store: &'a StateStore<E>) -> StoreRows<'a, E> {
        StoreRows {
            store,
            cache: RefCell::new(HashMap::new()),
            error: RefCell::new(None),
        }
    }

    /// Reads every row `requests` name (accounts, records, holds, the
    /// players' move markers, the currencies' totals, the ledger meta) in
    /// one batched read.
    pub fn prefetch(&self, requests: &[Request]) {
        let g = self.store.group;
        let mut keys = vec![ledger_meta_key(g)];
        let mut currencies = Vec::new();
        for r in requests {
            let wallet = r.command.account();
            keys.push(account_key(g, &wallet));
            keys.push(tx_key(g, &wallet, &r.tx));
            keys.extend(r.command.players().into_iter().map(|p| player_key(g, p.0)));
            currencies.push(wallet.currency);
            match &r.command {
                Command::Transfer { to, .. } => keys.push(account_key(g, to)),
                Command::Hold { hold, .. }
                | Command::Capture { hold, .. }
                | Command::Release { hold, .. } => keys.push(hold_key(g, &wallet, hold)),
                _ => {}
            }
        }
        currencies.sort();
        currencies.dedup();
        for c in currencies {
            keys.push(players_total_key(g, c));
            for which in SystemAccount::ALL {
                keys.push(system_key(g, c, which));
            }
        }
        keys.sort();
        keys.dedup();
        match self.store.db.engine().multi_get(Cf::State, &keys) {
            Ok(values) => self.cache.borrow_mut().extend(keys.into_iter().zip(values)),
            Err(e) => self.fail(e),
        }
    }

    /// The first read error, if any: then the apply's outcome must be discarded.
    pub fn finish(self) -> Result<(), StorageError> {
        match self.error.into_inner() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn fail(&self, e: StorageError) {
        let mut error = self.error.borrow_mut();
        if error.is_none() {
            *error = Some(e);
        }
    }

    fn raw(&self, key: Vec<u8>) -> Option<Vec<u8>> {
        if let Some(value) = self.cache.borrow().get(&key) {
            return value.clone();
        }
        match self.store.db.engine().get(Cf::State, &key) {
            Ok(value) => {
                self.cache.borrow_mut().insert(key, value.clone());
                value
            }
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    fn row<T: DeserializeOwned>(&self, what: &'static str, key: Vec<u8>) -> Option<T> {
        let value = self.raw(key.clone())?;
        decode::<T>(what, &key, &value)
            .map_err(|e| self.fail(e))
            .ok()
    }

    fn money(&self, what: &'static str, key: Vec<u8>) -> i128 {
        let Some(value) = self.raw(key.clone()) else {
            return 0;
        };
        decode_i128(&key, &value, what)
            .map_err(|e| self.fail(e))
            .unwrap_or(0)
    }
}

impl<E: Engine> LedgerRows for StoreRows<'_, E> {
    fn account(&self, id: &AccountId) -> Option<Account> {
        let account: Account = self.row("account", account_key(self.store.group, id))?;
        if account.total().is_none() {
            // apply never writes such a row: it is damage, reported, not used.
            self.fail(StorageError::Checksum {
                what: "account row (available + held overflows)",
                key: crate::seal::hex(&account_key(self.store.group, id)),
            });
        }
        Some(account)
    }

    fn hold(&self, id: &AccountId, hold: &HoldId) -> Option<Hold> {
        self.row("hold", hold_key(self.store.group, id, hold))
    }

    fn tx_record(&self, wallet: &AccountId, tx: &TxId) -> Option<TxRecord> {
        self.row("tx record", tx_key(self.store.group, wallet, tx))
    }

    fn pending_transfer(&self, from: &AccountId, tx: &TxId) -> Option<PendingTransfer> {
        self.row("pending transfer", transfer_key(self.store.group, from, tx))
    }

    fn system_balance(&self, currency: Currency, which: SystemAccount) -> i128 {
        self.money(
            "system balance",
            system_key(self.store.group, currency, which),
        )
    }

    fn players_total(&self, currency: Currency) -> i128 {
        self.money(
            "players' total",
            players_total_key(self.store.group, currency),
        )
    }

    fn meta(&self) -> Meta {
        self.row("ledger meta", ledger_meta_key(self.store.group))
            .unwrap_or_default()
    }

    fn first_after(&self, index: TimeIndex, after_ns: u64) -> Option<u64> {
        let from_ns = after_ns.checked_add(1)?;
        let first = self.due(index, from_ns, u64::MAX, 1);
        first.first().map(TimeKey::time_ns)
    }

    fn player_move(&self, player: PlayerId) -> Option<PlayerMove> {
        self.row("player move", player_key(self.store.group, player.0))
    }

    /// Four range scans (accounts, holds, tx records, pending transfers), each row decoded
    /// and checked as a dump decodes it.
    fn wallet_rows(&self, player: PlayerId) -> WalletRows {
        let mut rows = MemRows::default();
        let engine = self.store.db.engine();
        let kinds = [
            StateKind::Account,
            StateKind::Hold,
            StateKind::Tx,
            StateKind::Transfer,
        ];
        for kind in kinds {
            let (lower, upper) = player_range(self.store.group, kind, player.0);
            let scanned = engine.scan(
                Cf::State,
                &lower,
                &upper,
                Direction::Forward,
                &mut |k, v| dump_row(&mut rows, k, v).map(|()| true),
            );
            if let Err(e) = scanned {
                self.fail(e);
            }
        }
        rows.wallet_rows(player)
    }

    fn due(&self, index: TimeIndex, from_ns: u64, until_ns: u64, limit: usize) -> Vec<TimeKey> {
        let mut keys = Vec::new();
        if limit == 0 || from_ns > until_ns {
            return keys;
        }
        let (lower, upper) = time_range(self.store.group, index, from_ns, until_ns);
        let engine = self.store.db.engine();
        let scanned = engine.scan(
            Cf::State,
            &lower,
            &upper,
            Direction::Forward,
            &mut |k, _| {
                let key = k.get(9..).and_then(decode_time_key);
                let key = key.ok_or_else(|| StorageError::Checksum {
                    what: "time index key",
                    key: crate::seal::hex(k),
                })?;
                keys.push(key);
                Ok(keys.len() < limit)
            },
        );
        if let Err(e) = scanned {
            self.fail(e);
        }
        keys
    }
}
