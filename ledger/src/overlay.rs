//! The ledger as one apply sees it: the stored rows with this entry's own
//! writes on top. Every write also lands in the entry's `Changes`, which is
//! what storage persists.

use crate::entry::Entry;
use crate::{
    Account, AccountId, Changes, Currency, Hold, HoldId, JournalKind, LedgerConfig, LedgerRows,
    Meta, PendingTransfer, PlayerId, PlayerMove, SystemAccount, TimeIndex, TimeKey, TxId, TxRecord,
    WalletRows,
};

pub(crate) struct Overlay<'a, R: LedgerRows + ?Sized> {
    base: &'a R,
    pub(crate) config: &'a LedgerConfig,
    pub(crate) changes: Changes,
}

impl<'a, R: LedgerRows + ?Sized> Overlay<'a, R> {
    pub(crate) fn new(base: &'a R, config: &'a LedgerConfig) -> Overlay<'a, R> {
        Overlay {
            base,
            config,
            changes: Changes::default(),
        }
    }

    /// Writes an account with one journal line for the change, counting the
    /// change of its money for the entry's conservation check. Every change
    /// of an account is journaled, so the line takes the wallet's next
    /// sequence number.
    pub(crate) fn put_account(
        &mut self,
        e: &mut Entry,
        id: AccountId,
        mut next: Account,
        line: (Option<&TxId>, JournalKind, u64),
    ) {
        let total = |a: &Account| i128::from(a.available) + i128::from(a.held);
        let before = self.account(&id);
        let delta = total(&next) - before.as_ref().map_or(0, total);
        e.record_net(id.currency, delta);
        let players = self.players_total(id.currency).wrapping_add(delta);
        self.changes.players_total.insert(id.currency, players);
        next.journal_seq = before.map_or(0, |a| a.journal_seq) + 1;
        let (tx, kind, amount) = line;
        e.journal(id, next.journal_seq, tx, kind, amount, next.balance());
        self.changes.accounts.insert(id, Some(next));
    }

    /// Removes an account whose wallet leaves the group, journaling the
    /// line `kind` (its last here) with the money it took along; returns
    /// the account as it leaves (journal sequence at that line).
    pub(crate) fn remove_account(
        &mut self,
        e: &mut Entry,
        id: AccountId,
        kind: JournalKind,
    ) -> Option<Account> {
        let mut leaving = self.account(&id)?;
        let total = i128::from(leaving.available) + i128::from(leaving.held);
        e.record_net(id.currency, -total);
        let players = self.players_total(id.currency).wrapping_sub(total);
        self.changes.players_total.insert(id.currency, players);
        leaving.journal_seq += 1;
        // A stored row beyond u64 is damage the store already reported
        // (`StoreRows::finish`), which discards this apply: no panic here.
        let moved = u64::try_from(total).unwrap_or(u64::MAX);
        let zero = crate::Balance {
            available: 0,
            held: 0,
        };
        e.journal(id, leaving.journal_seq, None, kind, moved, zero);
        self.changes.accounts.insert(id, None);
        Some(leaving)
    }

    /// Adds an account arriving from another group with its journal
    /// sequence, journaling the line `kind` after it.
    pub(crate) fn insert_account(
        &mut self,
        e: &mut Entry,
        id: AccountId,
        mut arriving: Account,
        kind: JournalKind,
    ) {
        let total = i128::from(arriving.available) + i128::from(arriving.held);
        e.record_net(id.currency, total);
        let players = self.players_total(id.currency).wrapping_add(total);
        self.changes.players_total.insert(id.currency, players);
        arriving.journal_seq += 1;
        // Checked before booking (`check_wallet`).
        let moved = u64::try_from(total).expect("available + held fits a u64");
        e.journal(
            id,
            arriving.journal_seq,
            None,
            kind,
            moved,
            arriving.balance(),
        );
        self.changes.accounts.insert(id, Some(arriving));
    }

    pub(crate) fn put_player_move(&mut self, player: PlayerId, m: Option<PlayerMove>) {
        self.changes.players.insert(player, m);
    }

    pub(crate) fn put_system(
        &mut self,
        e: &mut Entry,
        currency: Currency,
        which: SystemAccount,
        balance: i128,
    ) {
        let before = self.system_balance(currency, which);
        e.record_net(currency, balance.wrapping_sub(before));
        self.changes.system.insert((currency, which), balance);
    }

    /// Replaces a hold and keeps the time indexes in step.
    pub(crate) fn put_hold(&mut self, id: AccountId, hold: HoldId, h: Option<Hold>) {
        if let Some(old) = self.hold(&id, &hold) {
            let key = TimeKey::of_hold(id, hold.clone(), &old);
            self.changes.time_index.insert(key, false);
        }
        if let Some(h) = &h {
            let key = TimeKey::of_hold(id, hold.clone(), h);
            self.index_key(key);
        }
        self.changes.holds.insert((id, hold), h);
    }

    /// Replaces a transaction record and keeps the time index in step.
    pub(crate) fn put_tx_record(&mut self, wallet: AccountId, tx: TxId, r: Option<TxRecord>) {
        if let Some(old) = self.tx_record(&wallet, &tx) {
            let key = TimeKey::TxCreated {
                created_at_ns: old.created_at_ns,
                account: wallet,
                tx: tx.clone(),
            };
            self.changes.time_index.insert(key, false);
        }
        if let Some(r) = &r {
            let key = TimeKey::TxCreated {
                created_at_ns: r.created_at_ns,
                account: wallet,
                tx: tx.clone(),
            };
            self.index_key(key);
        }
        self.changes.tx_records.insert((wallet, tx), r);
    }

    pub(crate) fn put_pending_transfer(
        &mut self,
        from: AccountId,
        tx: TxId,
        t: Option<PendingTransfer>,
    ) {
        self.changes.transfers.insert((from, tx), t);
    }

    /// Adds a time index key, lowering the index's next-due bound.
    fn index_key(&mut self, key: TimeKey) {
        let mut meta = self.meta();
        let slot = key.index().slot();
        if key.time_ns() < meta.next_due_ns[slot] {
            meta.next_due_ns[slot] = key.time_ns();
            self.put_meta(meta);
        }
        self.changes.time_index.insert(key, true);
    }

    pub(crate) fn put_meta(&mut self, meta: Meta) {
        self.changes.meta = Some(meta);
    }
}

impl<R: LedgerRows + ?Sized> LedgerRows for Overlay<'_, R> {
    fn account(&self, id: &AccountId) -> Option<Account> {
        match self.changes.accounts.get(id) {
            Some(a) => a.clone(),
            None => self.base.account(id),
        }
    }

    fn player_move(&self, player: PlayerId) -> Option<PlayerMove> {
        match self.changes.players.get(&player) {
            Some(m) => m.clone(),
            None => self.base.player_move(player),
        }
    }

    fn hold(&self, id: &AccountId, hold: &HoldId) -> Option<Hold> {
        match self.changes.holds.get(&(*id, hold.clone())) {
            Some(h) => h.clone(),
            None => self.base.hold(id, hold),
        }
    }

    fn pending_transfer(&self, from: &AccountId, tx: &TxId) -> Option<PendingTransfer> {
        match self.changes.transfers.get(&(*from, tx.clone())) {
            Some(t) => t.clone(),
            None => self.base.pending_transfer(from, tx),
        }
    }

    fn tx_record(&self, wallet: &AccountId, tx: &TxId) -> Option<TxRecord> {
        match self.changes.tx_records.get(&(*wallet, tx.clone())) {
            Some(r) => r.clone(),
            None => self.base.tx_record(wallet, tx),
        }
    }

    fn system_balance(&self, currency: Currency, which: SystemAccount) -> i128 {
        match self.changes.system.get(&(currency, which)) {
            Some(b) => *b,
            None => self.base.system_balance(currency, which),
        }
    }

    fn players_total(&self, currency: Currency) -> i128 {
        match self.changes.players_total.get(&currency) {
            Some(t) => *t,
            None => self.base.players_total(currency),
        }
    }

    fn meta(&self) -> Meta {
        self.changes.meta.unwrap_or_else(|| self.base.meta())
    }

    /// A lower bound: the base's (a key this entry removed still bounds)
    /// or one this entry added.
    fn first_after(&self, index: TimeIndex, after_ns: u64) -> Option<u64> {
        let mine = self
            .changes
            .time_index
            .iter()
            .filter(|(k, present)| **present && k.index() == index && k.time_ns() > after_ns)
            .map(|(k, _)| k.time_ns())
            .min();
        match (self.base.first_after(index, after_ns), mine) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The base's rows with this entry's writes on top, in key order.
    fn wallet_rows(&self, player: PlayerId) -> WalletRows {
        let base = self.base.wallet_rows(player);
        let mine = |id: &AccountId| id.player == player;
        let mut accounts: std::collections::BTreeMap<AccountId, Account> =
            base.accounts.into_iter().collect();
        for (id, a) in self.changes.accounts.iter().filter(|(id, _)| mine(id)) {
            match a {
                Some(a) => accounts.insert(*id, a.clone()),
                None => accounts.remove(id),
            };
        }
        let mut holds: std::collections::BTreeMap<(AccountId, HoldId), Hold> = base
            .holds
            .into_iter()
            .map(|(id, hold, h)| ((id, hold), h))
            .collect();
        for ((id, hold), h) in self.changes.holds.iter().filter(|((id, _), _)| mine(id)) {
            match h {
                Some(h) => holds.insert((*id, hold.clone()), h.clone()),
                None => holds.remove(&(*id, hold.clone())),
            };
        }
        let mut records: std::collections::BTreeMap<(AccountId, TxId), TxRecord> = base
            .tx_records
            .into_iter()
            .map(|(id, tx, r)| ((id, tx), r))
            .collect();
        for ((id, tx), r) in self
            .changes
            .tx_records
            .iter()
            .filter(|((id, _), _)| mine(id))
        {
            match r {
                Some(r) => records.insert((*id, tx.clone()), r.clone()),
                None => records.remove(&(*id, tx.clone())),
            };
        }
        let mut transfers: std::collections::BTreeMap<(AccountId, TxId), PendingTransfer> = base
            .transfers
            .into_iter()
            .map(|(id, tx, t)| ((id, tx), t))
            .collect();
        for ((id, tx), t) in self
            .changes
            .transfers
            .iter()
            .filter(|((id, _), _)| mine(id))
        {
            match t {
                Some(t) => transfers.insert((*id, tx.clone()), t.clone()),
                None => transfers.remove(&(*id, tx.clone())),
            };
        }
        WalletRows {
            accounts: accounts.into_iter().collect(),
            holds: holds
                .into_iter()
                .map(|((id, hold), h)| (id, hold, h))
                .collect(),
            tx_records: records
                .into_iter()
                .map(|((id, tx), r)| (id, tx, r))
                .collect(),
            transfers: transfers
                .into_iter()
                .map(|((id, tx), t)| (id, tx, t))
                .collect(),
        }
    }

    /// The base's due keys minus those this entry removed, plus those it
    /// added, in key order.
    fn due(&self, index: TimeIndex, from_ns: u64, until_ns: u64, limit: usize) -> Vec<TimeKey> {
        let mine = self
            .changes
            .time_index
            .iter()
            .filter(|(k, _)| k.index() == index && (from_ns..=until_ns).contains(&k.time_ns()));
        let removed = mine.clone().filter(|(_, present)| !**present).count();
        let mut keys: Vec<TimeKey> = self
            .base
            .due(index, from_ns, until_ns, limit.saturating_add(removed))
            .into_iter()
            .filter(|k| self.changes.time_index.get(k) != Some(&false))
            .collect();
        keys.extend(mine.filter(|(_, p)| **p).map(|(k, _)| k.clone()));
        keys.sort();
        keys.dedup();
        keys.truncate(limit);
        keys
    }
}
