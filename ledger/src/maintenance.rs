//! Work every log entry does before its requests, driven by leader time:
//! expiring holds and forgetting what the idempotency window no longer needs.
//! Each kind of work is bounded per entry by a budget that grows with the
//! entry's requests (see `apply`); what is left waits for the next entry.

use crate::entry::Entry;
use crate::overlay::Overlay;
use crate::{Hold, HoldStatus, JournalKind, LedgerRows, TimeIndex, TimeKey};

impl<R: LedgerRows + ?Sized> Overlay<'_, R> {
    /// The due keys of `index` from where the last walk stopped, moving that
    /// mark to the last key returned.
    /// Skipped without a read when no key can be due yet.
    fn swept_due(&mut self, index: TimeIndex, until_ns: u64, limit: usize) -> Vec<TimeKey> {
        let mut meta = self.meta();
        let slot = index.slot();
        if until_ns < meta.next_due_ns[slot] || limit == 0 {
            return Vec::new();
        }
        let due = self.due(index, meta.swept_ns(index), until_ns, limit);
        if let Some(last) = due.last() {
            meta.swept_ns[slot] = last.time_ns();
        }
        meta.next_due_ns[slot] = if due.len() == limit {
            // Cut by the budget: keys at the last one's time may remain.
            meta.swept_ns[slot]
        } else {
            // Everything due is taken: the next key is after `until_ns`.
            self.first_after(index, until_ns).unwrap_or(u64::MAX)
        };
        self.put_meta(meta);
        due
    }

    /// Expires active holds whose time has come, oldest first: what remains
    /// held goes back to available. Works on frozen accounts too. Returns
    /// how many expired.
    pub(crate) fn expire_holds(&mut self, e: &mut Entry, limit: usize) -> usize {
        let due = self.swept_due(TimeIndex::HoldExpiry, e.now_ns, limit);
        let count = due.len();
        for key in due {
            let TimeKey::HoldExpiry { account, hold, .. } = key.clone() else {
                unreachable!("the expiry index holds expiry keys only");
            };
            // An index key without its active hold and account exists only
            // in damaged or forged rows (a snapshot's checks cover the
            // books, not the indexes): it is dropped, on every replica
            // alike, never a panic.
            let found = self
                .hold(&account, &hold)
                .filter(|h| h.status == HoldStatus::Active)
                .and_then(|h| Some((h.clone(), self.account(&account)?)))
                // Cannot fail for consistent rows: held >= remaining.
                .and_then(|(h, a)| Some((a.release_with(h.remaining)?, h)));
            let Some((next, h)) = found else {
                self.changes.time_index.insert(key, false);
                continue;
            };
            let amount = h.remaining;
            let closed = Hold {
                remaining: 0,
                status: HoldStatus::Expired,
                closed_at_ns: e.now_ns,
                ..h
            };
            self.put_hold(account, hold, Some(closed));
            self.put_account(e, account, next, (None, JournalKind::Expire, amount));
        }
        count
    }

    /// Forgets transaction records created before the window; a request that
    /// old is refused as expired, so it can never be applied again.
    pub(crate) fn purge_tx_records(&mut self, now_ns: u64, limit: usize) {
        let Some(until_ns) = purge_before(now_ns, self.config.idempotency_window_ns) else {
            return;
        };
        for key in self.swept_due(TimeIndex::TxCreated, until_ns, limit) {
            let TimeKey::TxCreated { account, tx, .. } = key else {
                unreachable!("the tx index holds tx keys only");
            };
            self.put_tx_record(account, tx, None);
        }
    }

    /// Forgets holds closed before the window, freeing their ids.
    pub(crate) fn purge_closed_holds(&mut self, now_ns: u64, limit: usize) {
        let Some(until_ns) = purge_before(now_ns, self.config.idempotency_window_ns) else {
            return;
        };
        for key in self.swept_due(TimeIndex::HoldClosed, until_ns, limit) {
            let TimeKey::HoldClosed { account, hold, .. } = key else {
                unreachable!("the closed-hold index holds closed-hold keys only");
            };
            self.put_hold(account, hold, None);
        }
    }
}

/// The newest time a record or closed hold may have and be past the window
/// at `now_ns` (`time + window < now`); `None` when nothing can be.
fn purge_before(now_ns: u64, window_ns: u64) -> Option<u64> {
    now_ns.checked_sub(window_ns)?.checked_sub(1)
}

#[cfg(test)]
mod tests {
    use crate::fixture::{Ledger, bal, eur, hid};
    use crate::{Amount, Command, DebitKind, HoldStatus, JournalKind, LedgerConfig, Request};

    fn hold(h: &str, n: u64, expires_at_ns: u64) -> Command {
        Command::Hold {
            account: eur(1),
            hold: hid(h),
            amount: Amount(n),
            expires_at_ns,
        }
    }

    // Proves due holds expire at the start of the entry, first in the journal, even when frozen.
    #[test]
    fn expiry_returns_money() {
        let mut l = Ledger::funded(eur(1), 100);
        let t = l.now_ns;
        l.run(hold("a", 10, t + 10)).unwrap();
        l.run(hold("b", 20, t + 20)).unwrap();
        l.run(Command::Freeze { account: eur(1) }).unwrap();
        l.state.take_changes();
        l.now_ns = t + 10;
        let outcome = l.run(Command::Unfreeze { account: eur(1) }).unwrap();
        assert_eq!(outcome.balance, bal(80, 20));
        let a = l.state.hold(&eur(1), &hid("a")).unwrap();
        assert_eq!(
            (a.status, a.remaining, a.closed_at_ns),
            (HoldStatus::Expired, 0, t + 10)
        );
        let journal = l.state.take_changes().journal;
        assert_eq!(
            (journal[0].kind, journal[0].amount, journal[0].tx.is_none()),
            (JournalKind::Expire, 10, true)
        );
        assert_eq!(
            (journal[0].position, journal[1].kind),
            (0, JournalKind::Unfreeze)
        );
    }

    // Proves a partially captured hold expires with what remains.
    #[test]
    fn expiry_after_partial_capture() {
        let mut l = Ledger::funded(eur(1), 100);
        let t = l.now_ns;
        l.run(hold("a", 10, t + 10)).unwrap();
        let cap = Command::Capture {
            account: eur(1),
            hold: hid("a"),
            amount: Some(Amount(4)),
            kind: DebitKind::Bet,
        };
        l.run(cap).unwrap();
        l.now_ns = t + 11;
        l.entry(&[]);
        assert_eq!(l.balance(eur(1)), bal(96, 0));
    }

    // Proves expiry is bounded per entry and proceeds in expiry order.
    #[test]
    fn expiry_is_bounded() {
        let config = LedgerConfig {
            expiries_per_entry_max: 2,
            ..LedgerConfig::default()
        };
        let mut l = Ledger::with_config(config);
        l.run(Command::OpenAccount { account: eur(1) }).unwrap();
        let deposit = Command::Credit {
            account: eur(1),
            amount: Amount(100),
            kind: crate::CreditKind::Deposit,
        };
        l.run(deposit).unwrap();
        let t = l.now_ns;
        for (i, name) in ["c", "b", "a"].iter().enumerate() {
            l.run(hold(name, 1, t + 10 + i as u64)).unwrap();
        }
        l.now_ns = t + 100;
        l.entry(&[]);
        let status = |h: &str| l.state.hold(&eur(1), &hid(h)).unwrap().status;
        assert_eq!(
            (status("c"), status("b"), status("a")),
            (HoldStatus::Expired, HoldStatus::Expired, HoldStatus::Active)
        );
        // Past its time but not yet swept: refused as expired, untouched.
        let release = Command::Release {
            account: eur(1),
            hold: hid("a"),
        };
        assert_eq!(l.run(release).unwrap_err().code(), "hold_expired");
        l.entry(&[]);
        assert_eq!(l.balance(eur(1)), bal(100, 0));
    }

    // Proves tx records and closed holds are purged after the window, and a late retry is refused.
    #[test]
    fn purge_after_window() {
        let window_ns = 1_000;
        let config = LedgerConfig {
            idempotency_window_ns: window_ns,
            ..LedgerConfig::default()
        };
        let mut l = Ledger::with_config(config);
        let open = l.request(Command::OpenAccount { account: eur(1) });
        l.entry(std::slice::from_ref(&open));
        let t = l.now_ns;
        l.run(hold("a", 0, t + 5)).unwrap_err();
        l.run(Command::Release {
            account: eur(1),
            hold: hid("a"),
        })
        .unwrap_err();
        l.state.take_changes();
        l.now_ns = t + window_ns;
        l.entry(&[]);
        assert!(
            l.state.tx_record(&eur(1), &open.tx).is_some(),
            "exactly at the window edge it is kept"
        );
        l.now_ns = t + window_ns + 1;
        l.entry(&[]);
        assert!(l.state.tx_record(&eur(1), &open.tx).is_none());
        let purged = l.state.take_changes().tx_records;
        assert!(purged.iter().all(|(_, r)| r.is_none()) && purged.len() == 3);
        let retry = l.entry(std::slice::from_ref(&open));
        assert_eq!(retry[0].as_ref().unwrap_err().code(), "tx_id_expired");
        assert!(l.state.account(&eur(1)).is_some());
    }

    // Proves closed holds are purged once closed longer than the window, freeing the id.
    #[test]
    fn closed_hold_purge() {
        let window_ns = 1_000;
        let config = LedgerConfig {
            idempotency_window_ns: window_ns,
            purges_per_entry_max: 1,
            ..LedgerConfig::default()
        };
        let mut l = Ledger::with_config(config);
        l.run(Command::OpenAccount { account: eur(1) }).unwrap();
        l.run(Command::Credit {
            account: eur(1),
            amount: Amount(10),
            kind: crate::CreditKind::Win,
        })
        .unwrap();
        let t = l.now_ns;
        l.run(hold("a", 1, t + 5)).unwrap();
        l.run(hold("b", 1, t + 5)).unwrap();
        l.now_ns = t + 5;
        l.entry(&[]);
        l.state.take_changes();
        l.now_ns = t + 5 + window_ns + 1;
        l.entry(&[]);
        let holds = l.state.take_changes().holds;
        let holds: Vec<_> = holds.into_iter().collect();
        assert_eq!(
            holds,
            [((eur(1), hid("a")), None)],
            "bounded to one per entry"
        );
        assert!(l.state.hold(&eur(1), &hid("b")).is_some());
        l.entry(&[]);
        assert!(l.state.hold(&eur(1), &hid("b")).is_none());
        let fresh = Request {
            created_at_ns: l.now_ns,
            ..l.request(hold("a", 1, l.now_ns + 5))
        };
        assert!(
            l.entry(&[fresh])[0].is_ok(),
            "a purged hold id may be used again"
        );
    }
}
