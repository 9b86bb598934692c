use crate::entry::Entry;
use crate::overlay::Overlay;
use crate::{
    Account, AccountId, Changes, EntryContext, Hold, HoldId, LedgerConfig, LedgerRows, MemRows,
    Meta, Outcome, Refusal, Request, TxId, TxRecord, fingerprint,
};

/// Applies one log entry's requests to the rows `rows` holds, returning one
/// outcome per request in the same order and everything the entry wrote.
///
/// Deterministic: the same rows and arguments give the same outcomes and the
/// same changes on every replica. Reads only the rows the entry touches
/// (plus the due keys of the time indexes); writes nothing but `Changes`.
/// Panics only on a broken invariant (money created or destroyed), which is
/// a bug, never a reaction to input.
pub fn apply<R: LedgerRows + ?Sized>(
    rows: &R,
    config: &LedgerConfig,
    ctx: EntryContext,
    requests: &[Request],
) -> (Vec<Outcome>, Changes) {
    let mut o = Overlay::new(rows, config);
    let mut entry = o.begin_entry(ctx, requests.len());
    let outcomes = requests
        .iter()
        .map(|r| o.apply_request(&mut entry, r))
        .collect();
    let changes = o.end_entry(entry);
    (outcomes, changes)
}

impl<R: LedgerRows + ?Sized> Overlay<'_, R> {
    /// Starts an entry of `requests` requests: leader time moves on, due
    /// holds expire and old records and closed holds are purged.
    pub(crate) fn begin_entry(&mut self, ctx: EntryContext, requests: usize) -> Entry {
        let config = self.config;
        let meta = self.meta();
        let now_ns = meta.leader_time_ns.max(ctx.leader_time_ns);
        self.put_meta(Meta {
            leader_time_ns: now_ns,
            ..meta
        });
        let mut entry = Entry::new(ctx.group, ctx.log_index, now_ns);
        // Budgets grow with the entry: each request adds at most one record, one
        // hold and closes at most one hold, and each expiry closes one, so
        // expiry and purging keep pace with any write rate.
        let expired = self.expire_holds(
            &mut entry,
            config.expiries_per_entry_max.saturating_add(requests),
        );
        self.purge_tx_records(now_ns, config.purges_per_entry_max.saturating_add(requests));
        let closed = expired.saturating_add(requests);
        self.purge_closed_holds(now_ns, config.purges_per_entry_max.saturating_add(closed));
        entry
    }

    /// Ends an entry: checks conservation and returns everything it wrote.
    pub(crate) fn end_entry(self, entry: Entry) -> Changes {
        entry.assert_balanced();
        self.assert_books_balance(&entry);
        let mut changes = self.changes;
        changes.journal = entry.journal;
        changes
    }
}

impl<R: LedgerRows + ?Sized> Overlay<'_, R> {
    fn apply_request(&mut self, entry: &mut Entry, request: &Request) -> Outcome {
        // Before the record: a moving or moved player's records are in
        // flight or elsewhere, and the answer must send the caller there.
        // Not recorded, like every refusal that says "not here".
        self.check_players(&request.command)?;
        let wallet = request.command.account();
        let fingerprint = fingerprint(&request.command);
        // The record first: a transaction that applied is answered as
        // applied, however old its retry.
        if let Some(record) = self.tx_record(&wallet, &request.tx) {
            if record.fingerprint == fingerprint && record.created_at_ns == request.created_at_ns {
                return record.outcome;
            }
            return Err(Refusal::TxIdConflict {
                tx: request.tx.clone(),
            });
        }
        // Begun as a transfer between groups, unsettled (its pending row
        // came with a moving wallet, or its payee moved here): only its
        // coordinator finishes it. Unrecorded.
        if self.pending_transfer(&wallet, &request.tx).is_some() {
            return Err(Refusal::TransferPending {
                tx: request.tx.clone(),
            });
        }
        self.check_tx_time(entry.now_ns, request)?;
        let outcome = self.execute(entry, &request.tx, &request.command);
        let record = TxRecord {
            created_at_ns: request.created_at_ns,
            fingerprint,
            outcome: outcome.clone(),
        };
        self.put_tx_record(wallet, request.tx.clone(), Some(record));
        outcome
    }

    /// Refuses a command of a player whose wallet is moving away or moved.
    fn check_players(&self, command: &crate::Command) -> Result<(), Refusal> {
        command
            .players()
            .into_iter()
            .try_for_each(|player| self.check_player(player))
    }

    /// Refuses a step about `player` if the wallet is moving away or moved.
    pub(crate) fn check_player(&self, player: crate::PlayerId) -> Result<(), Refusal> {
        match self.player_move(player) {
            Some(crate::PlayerMove::Leaving { .. }) => Err(Refusal::Moving { player }),
            Some(crate::PlayerMove::Moved { group, epoch, .. }) => Err(Refusal::Moved {
                player,
                group,
                epoch,
            }),
            _ => Ok(()),
        }
    }

    /// Refuses requests created outside the idempotency window or too far
    /// ahead of leader time. Such refusals are not recorded.
    pub(crate) fn check_tx_time(&self, now_ns: u64, request: &Request) -> Result<(), Refusal> {
        let created_at_ns = request.created_at_ns;
        let window_ns = self.config.idempotency_window_ns;
        if created_at_ns.saturating_add(window_ns) < now_ns {
            return Err(Refusal::TxIdExpired {
                tx: request.tx.clone(),
                created_at_ns,
                oldest_allowed_ns: now_ns - window_ns,
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

    /// The books of every currency the entry touched balance: players'
    /// total plus the system accounts (house, gateway, transit) is zero.
    /// O(currencies touched), so it runs on every entry in release builds
    /// too.
    fn assert_books_balance(&self, entry: &Entry) {
        for currency in entry.currencies() {
            let players = self.players_total(currency);
            let system = crate::SystemAccount::ALL.map(|s| self.system_balance(currency, s));
            let total = system
                .iter()
                .fold(players, |sum, balance| sum.wrapping_add(*balance));
            assert_eq!(
                total, 0,
                "entry {}: books of {currency} do not balance (players {players}, house \
                 {}, gateway {}, transit {})",
                entry.log_index, system[0], system[1], system[2]
            );
        }
    }
}

/// A ledger held entirely in memory: [`MemRows`] plus the configuration,
/// applying entries one at a time and keeping what they changed until
/// [`State::take_changes`]. For tests, the property test and the fuzzer;
/// production applies through [`apply`] over RocksDB rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    config: LedgerConfig,
    pub rows: MemRows,
    pending: Changes,
}

impl State {
    pub fn new(config: LedgerConfig) -> State {
        State {
            config,
            rows: MemRows::default(),
            pending: Changes::default(),
        }
    }

    /// Applies one log entry (see [`apply`]) and writes its changes.
    pub fn apply(&mut self, ctx: EntryContext, requests: &[Request]) -> Vec<Outcome> {
        let (outcomes, changes) = apply(&self.rows, &self.config, ctx, requests);
        self.rows.commit(&changes);
        self.pending.merge(changes);
        #[cfg(any(test, debug_assertions))]
        self.rows.check_invariants();
        outcomes
    }

    /// Applies one move step as an entry (see [`crate::apply_move`]).
    pub fn apply_move(
        &mut self,
        ctx: EntryContext,
        command: &crate::MoveCommand,
    ) -> crate::MoveOutcome {
        let (outcome, changes) = crate::apply_move(&self.rows, &self.config, ctx, command);
        self.rows.commit(&changes);
        self.pending.merge(changes);
        #[cfg(any(test, debug_assertions))]
        self.rows.check_invariants();
        outcome
    }

    /// Everything changed since the last call.
    pub fn take_changes(&mut self) -> Changes {
        std::mem::take(&mut self.pending)
    }

    pub fn account(&self, id: &AccountId) -> Option<&Account> {
        self.rows.accounts.get(id)
    }

    pub fn hold(&self, id: &AccountId, hold: &HoldId) -> Option<&Hold> {
        self.rows.holds.get(&(*id, hold.clone()))
    }

    pub fn tx_record(&self, wallet: &AccountId, tx: &TxId) -> Option<&TxRecord> {
        self.rows.tx_records.get(&(*wallet, tx.clone()))
    }

    /// The unsettled transfer `tx` from `from` to another group.
    pub fn pending_transfer(&self, from: &AccountId, tx: &TxId) -> Option<crate::PendingTransfer> {
        self.rows.pending_transfer(from, tx)
    }

    /// `player`'s move marker, if a move touched it here.
    pub fn player_move(&self, player: crate::PlayerId) -> Option<crate::PlayerMove> {
        self.rows.player_move(player)
    }

    pub fn system_balance(&self, currency: crate::Currency, which: crate::SystemAccount) -> i128 {
        self.rows.system_balance(currency, which)
    }

    pub fn meta(&self) -> Meta {
        self.rows.meta
    }

    pub fn config(&self) -> &LedgerConfig {
        &self.config
    }

    pub fn check_invariants(&self) {
        self.rows.check_invariants();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{Ledger, START_NS, bal, eur, hid};
    use crate::{
        Amount, Command, CreditKind, DebitKind, HoldStatus, LogIndex, SystemAccount, TimeIndex,
        TimeKey,
    };

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
            l.state.tx_record(&eur(1), &request.tx).unwrap().fingerprint,
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
        let recorded = |t: &TxId| l.state.tx_record(&eur(1), t).is_some();
        assert!(!recorded(&old.tx) && !recorded(&future.tx));
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
            .map(|(id, a)| {
                let a = a.as_ref().expect("no account removed");
                (*id, a.available, a.journal_seq)
            })
            .collect();
        assert_eq!(ids, [(eur(1), 30, 3), (eur(2), 0, 1)]);
        let system: Vec<_> = changes.system.into_iter().collect();
        assert_eq!(system, [((eur(1).currency, SystemAccount::House), -30)]);
        let seqs: Vec<_> = changes.journal.iter().map(|j| (j.account, j.seq)).collect();
        assert_eq!(seqs, [(eur(2), 1), (eur(1), 1), (eur(1), 2), (eur(1), 3)]);
        assert_eq!(changes.tx_records.len(), 4);
        assert_eq!(changes.journal.len(), 4);
        assert_eq!(changes.meta, Some(l.state.meta()));
        assert!(l.state.take_changes().is_empty());
    }

    // Proves a transaction that applied is answered with its outcome on a
    // retry past the window while its record is still kept (purging lags).
    #[test]
    fn applied_tx_is_never_answered_expired() {
        let config = LedgerConfig {
            idempotency_window_ns: 1_000,
            purges_per_entry_max: 0,
            ..LedgerConfig::default()
        };
        let mut l = Ledger::with_config(config);
        l.run(Command::OpenAccount { account: eur(1) }).unwrap();
        l.run(Command::Credit {
            account: eur(1),
            amount: Amount(100),
            kind: CreditKind::Deposit,
        })
        .unwrap();
        let request = l.request(bet(10));
        let first = l.entry(std::slice::from_ref(&request));
        l.now_ns += 5_000;
        l.entry(&[]);
        assert!(
            l.state.tx_record(&eur(1), &request.tx).is_some(),
            "not purged yet"
        );
        assert_eq!(l.entry(std::slice::from_ref(&request)), first);
        assert_eq!(l.balance(eur(1)), bal(90, 0));
    }

    // Proves the same id with another creation time is a conflict, never a second apply.
    #[test]
    fn changed_created_at_is_a_conflict() {
        let mut l = Ledger::funded(eur(1), 100);
        let request = l.request(bet(10));
        l.entry(std::slice::from_ref(&request));
        let later = Request {
            created_at_ns: request.created_at_ns + 1,
            ..request.clone()
        };
        let conflict = Err(Refusal::TxIdConflict {
            tx: request.tx.clone(),
        });
        assert_eq!(l.entry(&[later]), [conflict]);
        assert_eq!(l.balance(eur(1)), bal(90, 0));
    }

    // Proves ids are per wallet: the same id on two wallets applies to each once.
    #[test]
    fn tx_ids_are_per_wallet() {
        let mut l = Ledger::funded(eur(1), 100);
        l.run(Command::OpenAccount { account: eur(2) }).unwrap();
        let one = l.request(bet(10));
        let two = Request {
            command: Command::Credit {
                account: eur(2),
                amount: Amount(5),
                kind: CreditKind::Win,
            },
            ..one.clone()
        };
        let outcomes = l.entry(&[one.clone(), two.clone(), one, two]);
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        assert_eq!(
            (l.balance(eur(1)), l.balance(eur(2))),
            (bal(90, 0), bal(5, 0))
        );
    }

    // Proves an expiry index key with no hold behind it (damaged or forged
    // rows: a snapshot's checks cover the books, not the indexes) is passed
    // over instead of panicking the node; the next entry applies and the
    // sweep moves past it. Found by the `snapshot` fuzz target.
    #[test]
    fn a_dangling_expiry_key_is_passed_over() {
        let mut l = Ledger::funded(eur(1), 100);
        let ghost = TimeKey::HoldExpiry {
            expires_at_ns: START_NS + 1,
            account: eur(1),
            hold: hid("ghost"),
        };
        l.state
            .rows
            .time_index
            .entry(TimeIndex::HoldExpiry)
            .or_default()
            .insert(ghost);
        l.state.rows.meta.next_due_ns[TimeIndex::HoldExpiry.slot()] = START_NS + 1;
        l.now_ns = START_NS + 1_000;
        let outcome = l.run(bet(10));
        assert!(outcome.is_ok(), "{outcome:?}");
        assert_eq!(l.balance(eur(1)), bal(90, 0));
        assert!(l.state.meta().swept_ns(TimeIndex::HoldExpiry) > START_NS);
    }

    // Proves due keys merge the base rows with the entry's own writes, in
    // order, skipping what the entry removed.
    #[test]
    fn due_merges_overlay_and_base() {
        let mut rows = MemRows::default();
        let key = |t: u64, h: &str| TimeKey::HoldExpiry {
            expires_at_ns: t,
            account: eur(1),
            hold: hid(h),
        };
        let index = rows.time_index.entry(TimeIndex::HoldExpiry).or_default();
        for (t, h) in [(1, "a"), (3, "c"), (5, "e")] {
            index.insert(key(t, h));
        }
        let config = LedgerConfig::default();
        let mut o = Overlay::new(&rows, &config);
        o.changes.time_index.insert(key(1, "a"), false);
        o.changes.time_index.insert(key(2, "b"), true);
        o.changes.time_index.insert(key(9, "z"), true);
        let due = o.due(TimeIndex::HoldExpiry, 0, 5, 3);
        assert_eq!(due, [key(2, "b"), key(3, "c"), key(5, "e")]);
        assert_eq!(o.due(TimeIndex::HoldExpiry, 0, 2, 10), [key(2, "b")]);
        assert_eq!(
            o.due(TimeIndex::HoldExpiry, 3, 5, 10),
            [key(3, "c"), key(5, "e")]
        );
        assert!(o.due(TimeIndex::TxCreated, 0, u64::MAX, 10).is_empty());
    }

    // Proves a player's rows read as one range: only that player's accounts,
    // holds and records, the entry's own writes and deletions on top.
    #[test]
    fn wallet_rows_merge_overlay_and_base() {
        let mut l = Ledger::funded(eur(1), 100);
        l.run(Command::OpenAccount { account: eur(2) }).unwrap();
        l.run(Command::OpenAccount {
            account: crate::fixture::usd(1),
        })
        .unwrap();
        let hold = |h: &str| Command::Hold {
            account: eur(1),
            hold: hid(h),
            amount: Amount(10),
            expires_at_ns: START_NS + 1_000,
        };
        l.run(hold("a")).unwrap();
        l.run(hold("b")).unwrap();
        let rows = l.state.rows.clone();
        let base = rows.wallet_rows(eur(1).player);
        let ids: Vec<_> = base.accounts.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [eur(1), crate::fixture::usd(1)]);
        assert_eq!(base.holds.len(), 2);
        // open, deposit, open USD, two holds: every record is the player's.
        assert_eq!(base.tx_records.len(), 5);
        assert!(rows.wallet_rows(eur(3).player).is_empty());
        let config = LedgerConfig::default();
        let mut o = Overlay::new(&rows, &config);
        o.put_hold(eur(1), hid("a"), None);
        o.put_tx_record(base.tx_records[0].0, base.tx_records[0].1.clone(), None);
        let moved = o.wallet_rows(eur(1).player);
        let holds: Vec<_> = moved.holds.iter().map(|(_, h, _)| h.clone()).collect();
        assert_eq!(holds, [hid("b")]);
        assert_eq!(moved.tx_records.len(), 4);
        assert_eq!(moved.accounts, base.accounts);
    }

    // Proves check_invariants catches money created out of nothing.
    #[test]
    #[should_panic(expected = "not conserved")]
    fn invariants_catch_lost_money() {
        let mut rows = MemRows::default();
        let a = Account {
            available: 5,
            ..Account::default()
        };
        rows.accounts.insert(eur(1), a);
        rows.check_invariants();
    }

    // Proves money a wallet brought in through transit counts in the books:
    // a group whose players hold what its transit account owes balances.
    #[test]
    fn transit_money_balances_the_books() {
        let mut rows = MemRows::default();
        let account = Account {
            available: 100,
            journal_seq: 1,
            ..Account::default()
        };
        rows.accounts.insert(eur(1), account);
        rows.players_total.insert(eur(1).currency, 100);
        rows.system
            .insert((eur(1).currency, SystemAccount::Transit), -100);
        rows.check_invariants();
        let bet = Request {
            tx: TxId::new("bet-after-move-in").unwrap(),
            created_at_ns: START_NS,
            command: bet(30),
        };
        let ctx = EntryContext {
            group: 2,
            log_index: LogIndex(7),
            leader_time_ns: START_NS,
        };
        let (outcomes, changes) = apply(&rows, &LedgerConfig::default(), ctx, &[bet]);
        assert!(outcomes[0].is_ok(), "{:?}", outcomes[0]);
        rows.commit(&changes);
        rows.check_invariants();
        assert_eq!(rows.accounts[&eur(1)].available, 70);
    }

    // Proves check_invariants catches held money no hold accounts for.
    #[test]
    #[should_panic(expected = "differs from its holds")]
    fn invariants_catch_orphan_held() {
        let mut rows = MemRows::default();
        let a = Account {
            held: 5,
            ..Account::default()
        };
        rows.accounts.insert(eur(1), a);
        rows.players_total.insert(eur(1).currency, 5);
        rows.system
            .insert((eur(1).currency, SystemAccount::House), -5);
        rows.check_invariants();
    }
}
