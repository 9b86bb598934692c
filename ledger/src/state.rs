use std::collections::{BTreeMap, BTreeSet};

use crate::changes::Dirty;
use crate::entry::Entry;
use crate::{
    Account, AccountId, Changes, Currency, EntryContext, Hold, HoldId, LedgerConfig, Meta, Outcome,
    Refusal, Request, SystemAccount, TxId, TxRecord, fingerprint,
};

/// Key of a hold in a time index: (time, account, hold).
pub(crate) type HoldTimeKey = (u64, AccountId, HoldId);

/// The whole in-memory ledger state of one shard group.
///
/// Changed only by [`State::apply`] (recorded for [`State::take_changes`])
/// and by the `restore_*` methods (not recorded), which load what storage
/// persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub(crate) config: LedgerConfig,
    pub(crate) meta: Meta,
    pub(crate) accounts: BTreeMap<AccountId, Account>,
    pub(crate) holds: BTreeMap<(AccountId, HoldId), Hold>,
    /// Active holds by (expires_at_ns, account, hold), for expiry.
    pub(crate) active_by_expiry: BTreeSet<HoldTimeKey>,
    /// Closed holds by (closed_at_ns, account, hold), for purging.
    pub(crate) closed_by_time: BTreeSet<HoldTimeKey>,
    pub(crate) tx_records: BTreeMap<TxId, TxRecord>,
    /// Transaction records by (created_at_ns, tx), for purging.
    pub(crate) tx_by_created: BTreeSet<(u64, TxId)>,
    pub(crate) system: BTreeMap<(Currency, SystemAccount), i128>,
    pub(crate) dirty: Dirty,
}

impl State {
    pub fn new(config: LedgerConfig) -> State {
        State {
            config,
            meta: Meta::default(),
            accounts: BTreeMap::new(),
            holds: BTreeMap::new(),
            active_by_expiry: BTreeSet::new(),
            closed_by_time: BTreeSet::new(),
            tx_records: BTreeMap::new(),
            tx_by_created: BTreeSet::new(),
            system: BTreeMap::new(),
            dirty: Dirty::default(),
        }
    }

    /// Applies one log entry's requests, returning one outcome per request
    /// in the same order. Deterministic: the same state and arguments give
    /// the same outcomes and the same changes on every replica.
    pub fn apply(&mut self, ctx: EntryContext, requests: &[Request]) -> Vec<Outcome> {
        let now_ns = self.meta.leader_time_ns.max(ctx.leader_time_ns);
        self.meta.leader_time_ns = now_ns;
        self.dirty.meta = true;
        let mut entry = Entry::new(ctx.log_index, now_ns);
        self.expire_holds(&mut entry);
        self.purge_tx_records(now_ns);
        self.purge_closed_holds(now_ns);
        let outcomes = requests
            .iter()
            .map(|r| self.apply_request(&mut entry, r))
            .collect();
        entry.assert_balanced();
        self.dirty.journal.append(&mut entry.journal);
        #[cfg(any(test, debug_assertions))]
        self.check_invariants();
        outcomes
    }

    fn apply_request(&mut self, entry: &mut Entry, request: &Request) -> Outcome {
        self.check_tx_time(entry.now_ns, request)?;
        let fingerprint = fingerprint(&request.command);
        if let Some(record) = self.tx_records.get(&request.tx) {
            if record.fingerprint == fingerprint {
                return record.outcome.clone();
            }
            return Err(Refusal::TxIdConflict {
                tx: request.tx.clone(),
            });
        }
        let outcome = self.execute(entry, &request.tx, &request.command);
        let record = TxRecord {
            created_at_ns: request.created_at_ns,
            fingerprint,
            outcome: outcome.clone(),
        };
        self.put_tx_record(request.tx.clone(), Some(record));
        outcome
    }

    /// Refuses requests created outside the idempotency window or too far
    /// ahead of leader time. Such refusals are not recorded.
    fn check_tx_time(&self, now_ns: u64, request: &Request) -> Result<(), Refusal> {
        let created_at_ns = request.created_at_ns;
        if created_at_ns.saturating_add(self.config.idempotency_window_ns) < now_ns {
            return Err(Refusal::TxIdExpired {
                tx: request.tx.clone(),
                created_at_ns,
                oldest_allowed_ns: now_ns - self.config.idempotency_window_ns,
            });
        }
        if created_at_ns > now_ns.saturating_add(self.config.future_skew_ns_max) {
            return Err(Refusal::TxIdFromFuture {
                tx: request.tx.clone(),
                created_at_ns,
                leader_time_ns: now_ns,
            });
        }
        Ok(())
    }

    /// Everything changed since the last call, one item per key, keys in order.
    pub fn take_changes(&mut self) -> Changes {
        let dirty = std::mem::take(&mut self.dirty);
        let accounts = dirty
            .accounts
            .into_iter()
            .filter_map(|id| self.accounts.get(&id).map(|a| (id, a.clone())))
            .collect();
        let holds = dirty
            .holds
            .into_iter()
            .map(|key| {
                let hold = self.holds.get(&key).cloned();
                (key.0, key.1, hold)
            })
            .collect();
        let tx_records = dirty
            .tx_records
            .into_iter()
            .map(|tx| {
                let record = self.tx_records.get(&tx).cloned();
                (tx, record)
            })
            .collect();
        let system = dirty
            .system
            .into_iter()
            .map(|(c, w)| (c, w, self.system_balance(c, w)))
            .collect();
        let meta = dirty.meta.then_some(self.meta);
        Changes {
            accounts,
            holds,
            tx_records,
            system,
            journal: dirty.journal,
            meta,
        }
    }

    pub fn account(&self, id: &AccountId) -> Option<&Account> {
        self.accounts.get(id)
    }

    pub fn hold(&self, id: &AccountId, hold: &HoldId) -> Option<&Hold> {
        self.holds.get(&(*id, hold.clone()))
    }

    pub fn tx_record(&self, tx: &TxId) -> Option<&TxRecord> {
        self.tx_records.get(tx)
    }

    pub fn system_balance(&self, currency: Currency, which: SystemAccount) -> i128 {
        self.system.get(&(currency, which)).copied().unwrap_or(0)
    }

    pub fn meta(&self) -> Meta {
        self.meta
    }

    pub fn config(&self) -> &LedgerConfig {
        &self.config
    }

    /// All player accounts in `AccountId` order.
    pub fn accounts(&self) -> impl Iterator<Item = (&AccountId, &Account)> {
        self.accounts.iter()
    }

    /// All holds, open and closed (until purged), in (account, hold) order.
    pub fn holds(&self) -> impl Iterator<Item = (&AccountId, &HoldId, &Hold)> {
        self.holds.iter().map(|((a, h), hold)| (a, h, hold))
    }

    /// Loads an account. Panics if `available + held` overflows a u64,
    /// which no state written by `apply` has.
    pub fn restore_account(&mut self, id: AccountId, a: Account) {
        assert!(
            a.total().is_some(),
            "restored account {id} holds more than u64::MAX"
        );
        self.accounts.insert(id, a);
    }

    pub fn restore_hold(&mut self, id: AccountId, hold: HoldId, h: Hold) {
        self.store_hold(id, hold, Some(h));
    }

    pub fn restore_tx_record(&mut self, tx: TxId, r: TxRecord) {
        self.store_tx_record(tx, Some(r));
    }

    pub fn restore_system(&mut self, c: Currency, which: SystemAccount, balance: i128) {
        self.system.insert((c, which), balance);
    }

    pub fn restore_meta(&mut self, m: Meta) {
        self.meta = m;
    }

    /// Writes an account, counting the change of its money for the entry's
    /// conservation check.
    pub(crate) fn put_account(&mut self, entry: &mut Entry, id: AccountId, a: Account) {
        let total = |a: &Account| i128::from(a.available) + i128::from(a.held);
        let before = self.accounts.get(&id).map_or(0, total);
        entry.record_net(id.currency, total(&a) - before);
        self.accounts.insert(id, a);
        self.dirty.accounts.insert(id);
    }

    pub(crate) fn put_system(
        &mut self,
        entry: &mut Entry,
        currency: Currency,
        which: SystemAccount,
        balance: i128,
    ) {
        let before = self.system_balance(currency, which);
        entry.record_net(currency, balance.wrapping_sub(before));
        self.system.insert((currency, which), balance);
        self.dirty.system.insert((currency, which));
    }

    pub(crate) fn put_hold(&mut self, id: AccountId, hold: HoldId, h: Option<Hold>) {
        self.dirty.holds.insert((id, hold.clone()));
        self.store_hold(id, hold, h);
    }

    pub(crate) fn put_tx_record(&mut self, tx: TxId, r: Option<TxRecord>) {
        self.dirty.tx_records.insert(tx.clone());
        self.store_tx_record(tx, r);
    }

    /// Replaces a hold and keeps the time indexes in step.
    fn store_hold(&mut self, id: AccountId, hold: HoldId, h: Option<Hold>) {
        if let Some(old) = self.holds.remove(&(id, hold.clone())) {
            let key = (hold_time(&old), id, hold.clone());
            let index = if old.is_active() {
                &mut self.active_by_expiry
            } else {
                &mut self.closed_by_time
            };
            index.remove(&key);
        }
        if let Some(h) = h {
            let key = (hold_time(&h), id, hold.clone());
            let index = if h.is_active() {
                &mut self.active_by_expiry
            } else {
                &mut self.closed_by_time
            };
            index.insert(key);
            self.holds.insert((id, hold), h);
        }
    }

    /// Replaces a transaction record and keeps the time index in step.
    fn store_tx_record(&mut self, tx: TxId, r: Option<TxRecord>) {
        if let Some(old) = self.tx_records.remove(&tx) {
            self.tx_by_created.remove(&(old.created_at_ns, tx.clone()));
        }
        if let Some(r) = r {
            self.tx_by_created.insert((r.created_at_ns, tx.clone()));
            self.tx_records.insert(tx, r);
        }
    }
}

/// The time a hold is indexed by: expiry while active, closing once closed.
pub(crate) fn hold_time(h: &Hold) -> u64 {
    if h.is_active() {
        h.expires_at_ns
    } else {
        h.closed_at_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{Ledger, START_NS, bal, eur, hid, tx};
    use crate::{Amount, Command, CreditKind, DebitKind, Hold, HoldStatus, LogIndex};

    fn bet(n: u64) -> Command {
        Command::Debit {
            account: eur(1),
            amount: Amount(n),
            kind: DebitKind::Bet,
        }
    }

    // Proves a retry returns the first outcome unchanged and changes nothing.
    #[test]
    fn duplicate_returns_first_outcome() {
        let mut l = Ledger::funded(eur(1), 100);
        let request = l.request(bet(10));
        let first = l.entry(std::slice::from_ref(&request));
        l.state.take_changes();
        l.now_ns += 5;
        let again = l.entry(std::slice::from_ref(&request));
        assert_eq!(first, again);
        assert_eq!(again[0].as_ref().unwrap().log_index, LogIndex(l.index - 1));
        assert_eq!(l.balance(eur(1)), bal(90, 0));
        let changes = l.state.take_changes();
        assert!(
            changes.journal.is_empty()
                && changes.accounts.is_empty()
                && changes.tx_records.is_empty()
        );
    }

    // Proves a recorded refusal is returned on retry even after funds arrive.
    #[test]
    fn duplicate_of_refusal_is_refused_again() {
        let mut l = Ledger::funded(eur(1), 5);
        let request = l.request(bet(10));
        let first = l.entry(std::slice::from_ref(&request));
        assert_eq!(first[0].as_ref().unwrap_err().code(), "insufficient_funds");
        l.run(Command::Credit {
            account: eur(1),
            amount: Amount(50),
            kind: CreditKind::Win,
        })
        .unwrap();
        assert_eq!(l.entry(&[request]), first);
        assert_eq!(l.balance(eur(1)), bal(55, 0));
    }

    // Proves reusing an id for another command is refused and not recorded.
    #[test]
    fn conflict() {
        let mut l = Ledger::funded(eur(1), 100);
        let request = l.request(bet(10));
        l.entry(std::slice::from_ref(&request));
        let other = Request {
            command: bet(11),
            ..request.clone()
        };
        let outcome = l.entry(&[other]);
        assert_eq!(
            outcome,
            [Err(Refusal::TxIdConflict {
                tx: request.tx.clone()
            })]
        );
        assert_eq!(
            l.state.tx_record(&request.tx).unwrap().fingerprint,
            fingerprint(&bet(10))
        );
        assert_eq!(l.balance(eur(1)), bal(90, 0));
    }

    // Proves a second copy inside one batch gets the first's result, and positions run on.
    #[test]
    fn in_batch_duplicate() {
        let mut l = Ledger::funded(eur(1), 100);
        l.state.take_changes();
        let a = l.request(bet(10));
        let b = l.request(bet(20));
        let outcomes = l.entry(&[a.clone(), b, a]);
        assert_eq!(outcomes[0], outcomes[2]);
        assert_eq!(outcomes[1].as_ref().unwrap().balance, bal(70, 0));
        assert_eq!(l.balance(eur(1)), bal(70, 0));
        let journal = l.state.take_changes().journal;
        let positions: Vec<_> = journal.iter().map(|j| j.position).collect();
        assert_eq!(positions, [0, 1]);
        assert!(journal.iter().all(|j| j.log_index == LogIndex(l.index)));
    }

    // Proves requests older than the window or too far ahead are refused and not recorded.
    #[test]
    fn tx_time_bounds() {
        let mut l = Ledger::funded(eur(1), 100);
        let config = l.state.config().clone();
        l.now_ns = START_NS + config.idempotency_window_ns + 10;
        let now = l.now_ns;
        let old = Request {
            created_at_ns: now - config.idempotency_window_ns - 1,
            ..l.request(bet(1))
        };
        let edge = Request {
            created_at_ns: now - config.idempotency_window_ns,
            ..l.request(bet(1))
        };
        let future = Request {
            created_at_ns: now + config.future_skew_ns_max + 1,
            ..l.request(bet(1))
        };
        let near = Request {
            created_at_ns: now + config.future_skew_ns_max,
            ..l.request(bet(1))
        };
        let outcomes = l.entry(&[old.clone(), edge, future.clone(), near]);
        let oldest_allowed_ns = now - config.idempotency_window_ns;
        let expired = Refusal::TxIdExpired {
            tx: old.tx.clone(),
            created_at_ns: old.created_at_ns,
            oldest_allowed_ns,
        };
        assert_eq!(outcomes[0], Err(expired));
        assert!(outcomes[1].is_ok() && outcomes[3].is_ok());
        let ahead = Refusal::TxIdFromFuture {
            tx: future.tx.clone(),
            created_at_ns: future.created_at_ns,
            leader_time_ns: now,
        };
        assert_eq!(outcomes[2], Err(ahead));
        assert!(l.state.tx_record(&old.tx).is_none() && l.state.tx_record(&future.tx).is_none());
    }

    // Proves an old leader's earlier clock does not move time backwards.
    #[test]
    fn time_never_goes_backwards() {
        let mut l = Ledger::funded(eur(1), 100);
        let expires_at_ns = l.now_ns + 100;
        let h = Command::Hold {
            account: eur(1),
            hold: hid("h"),
            amount: Amount(10),
            expires_at_ns,
        };
        l.run(h).unwrap();
        l.now_ns += 200;
        l.run(Command::Freeze { account: eur(1) }).unwrap();
        let late = l.now_ns;
        assert_eq!(
            l.state.hold(&eur(1), &hid("h")).unwrap().status,
            HoldStatus::Expired
        );
        l.now_ns = START_NS;
        l.run(Command::Unfreeze { account: eur(1) }).unwrap();
        assert_eq!(l.state.meta().leader_time_ns, late);
        let h2 = Command::Hold {
            account: eur(1),
            hold: hid("g"),
            amount: Amount(1),
            expires_at_ns: late,
        };
        assert_eq!(l.run(h2).unwrap_err().code(), "hold_expired");
    }

    // Proves changes hold the last value per key, in key order, and are emptied by taking.
    #[test]
    fn changes_are_deduplicated() {
        let mut l = Ledger::funded(eur(2), 0);
        l.run(Command::OpenAccount { account: eur(1) }).unwrap();
        for n in [10, 20] {
            l.run(Command::Credit {
                account: eur(1),
                amount: Amount(n),
                kind: CreditKind::Win,
            })
            .unwrap();
        }
        let changes = l.state.take_changes();
        let ids: Vec<_> = changes
            .accounts
            .iter()
            .map(|(id, a)| (*id, a.available))
            .collect();
        assert_eq!(ids, [(eur(1), 30), (eur(2), 0)]);
        assert_eq!(
            changes.system,
            [(eur(1).currency, SystemAccount::House, -30)]
        );
        assert_eq!(changes.tx_records.len(), 4);
        assert_eq!(changes.journal.len(), 4);
        assert_eq!(changes.meta, Some(l.state.meta()));
        assert!(l.state.take_changes().is_empty());
    }

    // Proves a state restored from its parts equals the original and behaves the same.
    #[test]
    fn restore_round_trip() {
        let mut l = Ledger::funded(eur(1), 100);
        let hold = Command::Hold {
            account: eur(1),
            hold: hid("h"),
            amount: Amount(10),
            expires_at_ns: u64::MAX,
        };
        l.run(hold).unwrap();
        l.run(Command::Hold {
            account: eur(1),
            hold: hid("g"),
            amount: Amount(5),
            expires_at_ns: u64::MAX,
        })
        .unwrap();
        l.run(Command::Release {
            account: eur(1),
            hold: hid("g"),
        })
        .unwrap();
        let mut copy = State::new(l.state.config().clone());
        for (id, a) in l.state.accounts() {
            copy.restore_account(*id, a.clone());
        }
        for (id, h, hold) in l.state.holds() {
            copy.restore_hold(*id, h.clone(), hold.clone());
        }
        for (tx, r) in &l.state.tx_records {
            copy.restore_tx_record(tx.clone(), r.clone());
        }
        for ((c, w), b) in &l.state.system {
            copy.restore_system(*c, *w, *b);
        }
        copy.restore_meta(l.state.meta());
        l.state.take_changes();
        assert_eq!(copy, l.state);
        copy.check_invariants();
    }

    // Proves restoring over an existing hold replaces its index entry.
    #[test]
    fn restore_replaces_index_entries() {
        let mut s = State::new(LedgerConfig::default());
        s.restore_account(
            eur(1),
            Account {
                held: 0,
                ..Account::default()
            },
        );
        let active = Hold {
            amount: 5,
            remaining: 5,
            expires_at_ns: 9,
            status: HoldStatus::Active,
            closed_at_ns: 0,
        };
        s.restore_hold(eur(1), hid("h"), active.clone());
        let closed = Hold {
            remaining: 0,
            status: HoldStatus::Released,
            closed_at_ns: 7,
            ..active
        };
        s.restore_hold(eur(1), hid("h"), closed);
        assert!(s.active_by_expiry.is_empty());
        assert_eq!(s.closed_by_time.len(), 1);
        let r = TxRecord {
            created_at_ns: 1,
            fingerprint: 2,
            outcome: Err(Refusal::ZeroAmount),
        };
        s.restore_tx_record(tx("a"), r.clone());
        s.restore_tx_record(
            tx("a"),
            TxRecord {
                created_at_ns: 3,
                ..r
            },
        );
        assert_eq!(s.tx_by_created.iter().collect::<Vec<_>>(), [&(3, tx("a"))]);
        s.check_invariants();
    }

    // Proves check_invariants catches money created out of nothing.
    #[test]
    #[should_panic(expected = "not conserved")]
    fn invariants_catch_lost_money() {
        let mut s = State::new(LedgerConfig::default());
        s.restore_account(
            eur(1),
            Account {
                available: 5,
                ..Account::default()
            },
        );
        s.check_invariants();
    }

    // Proves check_invariants catches held money no hold accounts for.
    #[test]
    #[should_panic(expected = "differs from its holds")]
    fn invariants_catch_orphan_held() {
        let mut s = State::new(LedgerConfig::default());
        s.restore_account(
            eur(1),
            Account {
                held: 5,
                ..Account::default()
            },
        );
        s.restore_system(eur(1).currency, SystemAccount::House, -5);
        s.check_invariants();
    }
}
