//! The commands proper: each checks everything first, then writes.
//!
//! Check order: unknown account, currency / same account, zero amount,
//! frozen, hold state, funds, overflow.

use crate::entry::Entry;
use crate::overlay::Overlay;
use crate::{
    Account, AccountId, Amount, Command, CreditKind, DebitKind, Hold, HoldId, HoldStatus,
    JournalKind, LedgerRows, Outcome, Refusal, TxId,
};

impl<R: LedgerRows + ?Sized> Overlay<'_, R> {
    pub(crate) fn execute(&mut self, e: &mut Entry, tx: &TxId, command: &Command) -> Outcome {
        match command {
            Command::OpenAccount { account } => self.open(e, tx, *account),
            Command::Credit {
                account,
                amount,
                kind,
            } => self.credit(e, tx, *account, *amount, *kind),
            Command::Debit {
                account,
                amount,
                kind,
            } => self.debit(e, tx, *account, *amount, *kind),
            Command::Transfer { from, to, amount } => self.transfer(e, tx, *from, *to, *amount),
            Command::Hold {
                account,
                hold,
                amount,
                expires_at_ns,
            } => self.hold_funds(e, tx, *account, hold, *amount, *expires_at_ns),
            Command::Capture {
                account,
                hold,
                amount,
                kind,
            } => self.capture(e, tx, *account, hold, *amount, *kind),
            Command::Release { account, hold } => self.release(e, tx, *account, hold),
            Command::Freeze { account } => self.set_frozen(e, tx, *account, true),
            Command::Unfreeze { account } => self.set_frozen(e, tx, *account, false),
        }
    }

    fn open(&mut self, e: &mut Entry, tx: &TxId, account: AccountId) -> Outcome {
        if self.account(&account).is_some() {
            return Err(Refusal::AccountExists { account });
        }
        let a = Account::default();
        self.put_account(e, account, a.clone(), (Some(tx), JournalKind::Open, 0));
        Ok(e.receipt(a.balance(), None))
    }

    fn credit(
        &mut self,
        e: &mut Entry,
        tx: &TxId,
        id: AccountId,
        amount: Amount,
        kind: CreditKind,
    ) -> Outcome {
        let a = self.existing(id)?;
        let amount = nonzero(amount)?;
        let overflow = Refusal::Overflow { account: id };
        let next = a.credit_with(amount).ok_or(overflow.clone())?;
        let source = kind.source();
        let system = self
            .system_balance(id.currency, source)
            .checked_sub(i128::from(amount))
            .ok_or(overflow)?;
        self.put_system(e, id.currency, source, system);
        self.put_account(
            e,
            id,
            next.clone(),
            (Some(tx), JournalKind::Credit(kind), amount),
        );
        Ok(e.receipt(next.balance(), None))
    }

    fn debit(
        &mut self,
        e: &mut Entry,
        tx: &TxId,
        id: AccountId,
        amount: Amount,
        kind: DebitKind,
    ) -> Outcome {
        let a = self.existing(id)?;
        let amount = nonzero(amount)?;
        writable(id, &a)?;
        funds(id, &a, amount)?;
        let overflow = Refusal::Overflow { account: id };
        let next = a.debit_with(amount).ok_or(overflow.clone())?;
        let dest = kind.destination();
        let system = self
            .system_balance(id.currency, dest)
            .checked_add(i128::from(amount))
            .ok_or(overflow)?;
        self.put_system(e, id.currency, dest, system);
        self.put_account(
            e,
            id,
            next.clone(),
            (Some(tx), JournalKind::Debit(kind), amount),
        );
        Ok(e.receipt(next.balance(), None))
    }

    fn transfer(
        &mut self,
        e: &mut Entry,
        tx: &TxId,
        from: AccountId,
        to: AccountId,
        amount: Amount,
    ) -> Outcome {
        let src = self.existing(from)?;
        let dst = self.existing(to)?;
        pair(from, to)?;
        let amount = nonzero(amount)?;
        writable(from, &src)?;
        // A frozen payee takes no transfer, whichever group it is in.
        writable(to, &dst)?;
        funds(from, &src, amount)?;
        let src = src
            .debit_with(amount)
            .ok_or(Refusal::Overflow { account: from })?;
        let dst = dst
            .credit_with(amount)
            .ok_or(Refusal::Overflow { account: to })?;
        let out = (Some(tx), JournalKind::TransferOut, amount);
        self.put_account(e, from, src.clone(), out);
        self.put_account(
            e,
            to,
            dst.clone(),
            (Some(tx), JournalKind::TransferIn, amount),
        );
        Ok(e.receipt(src.balance(), Some(dst.balance())))
    }

    fn hold_funds(
        &mut self,
        e: &mut Entry,
        tx: &TxId,
        id: AccountId,
        hold: &HoldId,
        amount: Amount,
        expires_at_ns: u64,
    ) -> Outcome {
        let a = self.existing(id)?;
        let amount = nonzero(amount)?;
        writable(id, &a)?;
        if self.hold(&id, hold).is_some() {
            return Err(Refusal::HoldExists {
                account: id,
                hold: hold.clone(),
            });
        }
        if expires_at_ns <= e.now_ns {
            return Err(Refusal::HoldExpired {
                account: id,
                hold: hold.clone(),
                expired_at_ns: expires_at_ns,
            });
        }
        funds(id, &a, amount)?;
        let next = a
            .hold_with(amount)
            .ok_or(Refusal::Overflow { account: id })?;
        let h = Hold {
            amount,
            remaining: amount,
            expires_at_ns,
            status: HoldStatus::Active,
            closed_at_ns: 0,
        };
        self.put_hold(id, hold.clone(), Some(h));
        self.put_account(e, id, next.clone(), (Some(tx), JournalKind::Hold, amount));
        Ok(e.receipt(next.balance(), None))
    }

    fn capture(
        &mut self,
        e: &mut Entry,
        tx: &TxId,
        id: AccountId,
        hold: &HoldId,
        amount: Option<Amount>,
        kind: DebitKind,
    ) -> Outcome {
        let a = self.existing(id)?;
        if let Some(amount) = amount {
            nonzero(amount)?;
        }
        writable(id, &a)?;
        let h = self.open_hold(id, hold, e.now_ns)?;
        let amount = amount.map_or(h.remaining, |a| a.0);
        if amount > h.remaining {
            let (held, requested) = (h.remaining, amount);
            return Err(Refusal::OverCapture {
                account: id,
                hold: hold.clone(),
                held,
                requested,
            });
        }
        let overflow = Refusal::Overflow { account: id };
        let next = a.capture_with(amount).ok_or(overflow.clone())?;
        let dest = kind.destination();
        let system = self
            .system_balance(id.currency, dest)
            .checked_add(i128::from(amount))
            .ok_or(overflow)?;
        let remaining = h.remaining - amount;
        let closed = remaining == 0;
        let h = Hold {
            remaining,
            status: if closed {
                HoldStatus::Captured
            } else {
                HoldStatus::Active
            },
            closed_at_ns: if closed { e.now_ns } else { 0 },
            ..h
        };
        self.put_hold(id, hold.clone(), Some(h));
        self.put_system(e, id.currency, dest, system);
        self.put_account(
            e,
            id,
            next.clone(),
            (Some(tx), JournalKind::Capture(kind), amount),
        );
        Ok(e.receipt(next.balance(), None))
    }

    fn release(&mut self, e: &mut Entry, tx: &TxId, id: AccountId, hold: &HoldId) -> Outcome {
        let a = self.existing(id)?;
        let h = self.open_hold(id, hold, e.now_ns)?;
        let amount = h.remaining;
        let next = a
            .release_with(amount)
            .ok_or(Refusal::Overflow { account: id })?;
        let h = Hold {
            remaining: 0,
            status: HoldStatus::Released,
            closed_at_ns: e.now_ns,
            ..h
        };
        self.put_hold(id, hold.clone(), Some(h));
        self.put_account(
            e,
            id,
            next.clone(),
            (Some(tx), JournalKind::Release, amount),
        );
        Ok(e.receipt(next.balance(), None))
    }

    /// Freeze and unfreeze are idempotent: setting the flag it already has succeeds.
    fn set_frozen(&mut self, e: &mut Entry, tx: &TxId, id: AccountId, frozen: bool) -> Outcome {
        let a = self.existing(id)?;
        let next = Account { frozen, ..a };
        let kind = if frozen {
            JournalKind::Freeze
        } else {
            JournalKind::Unfreeze
        };
        self.put_account(e, id, next.clone(), (Some(tx), kind, 0));
        Ok(e.receipt(next.balance(), None))
    }

    pub(crate) fn existing(&self, id: AccountId) -> Result<Account, Refusal> {
        self.account(&id)
            .ok_or(Refusal::UnknownAccount { account: id })
    }

    /// An active hold that can still be captured or released. A hold past
    /// its expiry that the per-entry bound left unswept counts as expired.
    fn open_hold(&self, id: AccountId, hold: &HoldId, now_ns: u64) -> Result<Hold, Refusal> {
        let h = self.hold(&id, hold);
        let h = h.ok_or_else(|| Refusal::UnknownHold {
            account: id,
            hold: hold.clone(),
        })?;
        let expired = Refusal::HoldExpired {
            account: id,
            hold: hold.clone(),
            expired_at_ns: h.expires_at_ns,
        };
        match h.status {
            HoldStatus::Active if h.expires_at_ns <= now_ns => Err(expired),
            HoldStatus::Active => Ok(h),
            HoldStatus::Expired => Err(expired),
            HoldStatus::Captured | HoldStatus::Released => Err(Refusal::HoldClosed {
                account: id,
                hold: hold.clone(),
            }),
        }
    }
}

/// A transfer's two accounts: one currency, two accounts.
pub(crate) fn pair(from: AccountId, to: AccountId) -> Result<(), Refusal> {
    if from.currency != to.currency {
        return Err(Refusal::CurrencyMismatch {
            from: from.currency,
            to: to.currency,
        });
    }
    if from == to {
        return Err(Refusal::SameAccount { account: from });
    }
    Ok(())
}

pub(crate) fn nonzero(amount: Amount) -> Result<u64, Refusal> {
    if amount.0 == 0 {
        Err(Refusal::ZeroAmount)
    } else {
        Ok(amount.0)
    }
}

pub(crate) fn writable(id: AccountId, a: &Account) -> Result<(), Refusal> {
    if a.frozen {
        Err(Refusal::Frozen { account: id })
    } else {
        Ok(())
    }
}

pub(crate) fn funds(id: AccountId, a: &Account, requested: u64) -> Result<(), Refusal> {
    if a.available < requested {
        return Err(Refusal::InsufficientFunds {
            account: id,
            available: a.available,
            requested,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::fixture::{Ledger, bal, eur, hid, usd};
    use crate::{
        Amount, Command, CreditKind, DebitKind, HoldStatus, JournalKind, LogIndex, Refusal,
        SystemAccount,
    };

    fn credit(p: u64, n: u64, kind: CreditKind) -> Command {
        Command::Credit {
            account: eur(p),
            amount: Amount(n),
            kind,
        }
    }
    fn debit(p: u64, n: u64, kind: DebitKind) -> Command {
        Command::Debit {
            account: eur(p),
            amount: Amount(n),
            kind,
        }
    }
    fn hold(p: u64, h: &str, n: u64, expires_at_ns: u64) -> Command {
        Command::Hold {
            account: eur(p),
            hold: hid(h),
            amount: Amount(n),
            expires_at_ns,
        }
    }
    fn capture(p: u64, h: &str, n: Option<u64>) -> Command {
        Command::Capture {
            account: eur(p),
            hold: hid(h),
            amount: n.map(Amount),
            kind: DebitKind::Bet,
        }
    }
    fn release(p: u64, h: &str) -> Command {
        Command::Release {
            account: eur(p),
            hold: hid(h),
        }
    }
    fn transfer(from: u64, to: u64, n: u64) -> Command {
        Command::Transfer {
            from: eur(from),
            to: eur(to),
            amount: Amount(n),
        }
    }
    fn far(l: &Ledger) -> u64 {
        l.now_ns + 1_000_000
    }
    fn house(l: &Ledger) -> i128 {
        l.state
            .system_balance(eur(1).currency, SystemAccount::House)
    }
    fn gateway(l: &Ledger) -> i128 {
        l.state
            .system_balance(eur(1).currency, SystemAccount::Gateway)
    }

    // Proves open creates an empty account, journals it, and a second open is refused.
    #[test]
    fn open_account() {
        let mut l = Ledger::new();
        let r = l.run(Command::OpenAccount { account: eur(1) }).unwrap();
        assert_eq!(
            (r.log_index, r.balance, r.counterpart),
            (LogIndex(1), bal(0, 0), None)
        );
        assert_eq!(
            l.run(Command::OpenAccount { account: eur(1) }),
            Err(Refusal::AccountExists { account: eur(1) })
        );
        let journal = l.state.take_changes().journal;
        assert_eq!(journal.len(), 1);
        assert_eq!((journal[0].kind, journal[0].amount), (JournalKind::Open, 0));
    }

    // Proves each credit kind pays from its system account and counts in credited_total.
    #[test]
    fn credit_kinds() {
        let mut l = Ledger::funded(eur(1), 100);
        assert_eq!(gateway(&l), -100);
        l.run(credit(1, 10, CreditKind::Win)).unwrap();
        l.run(credit(1, 20, CreditKind::Bonus)).unwrap();
        let r = l.run(credit(1, 30, CreditKind::Refund)).unwrap();
        assert_eq!(r.balance, bal(160, 0));
        assert_eq!((house(&l), gateway(&l)), (-60, -100));
        assert_eq!(l.state.account(&eur(1)).unwrap().credited_total, 160);
    }

    // Proves each debit kind pays into its system account and counts in debited_total.
    #[test]
    fn debit_kinds() {
        let mut l = Ledger::funded(eur(1), 100);
        l.run(debit(1, 10, DebitKind::Bet)).unwrap();
        l.run(debit(1, 20, DebitKind::Fee)).unwrap();
        let r = l.run(debit(1, 30, DebitKind::Withdrawal)).unwrap();
        assert_eq!(r.balance, bal(40, 0));
        assert_eq!((house(&l), gateway(&l)), (30, -70));
        assert_eq!(l.state.account(&eur(1)).unwrap().debited_total, 60);
    }

    // Proves unknown accounts are refused by every command before anything else.
    #[test]
    fn unknown_account() {
        let mut l = Ledger::funded(eur(1), 100);
        let unknown = Refusal::UnknownAccount { account: eur(9) };
        for cmd in [
            Command::Credit {
                account: eur(9),
                amount: Amount(0),
                kind: CreditKind::Win,
            },
            Command::Debit {
                account: eur(9),
                amount: Amount(0),
                kind: DebitKind::Bet,
            },
            Command::Transfer {
                from: eur(9),
                to: usd(1),
                amount: Amount(0),
            },
            hold(9, "h", 0, 0),
            capture(9, "h", Some(0)),
            release(9, "h"),
            Command::Freeze { account: eur(9) },
            Command::Unfreeze { account: eur(9) },
        ] {
            assert_eq!(l.run(cmd), Err(unknown.clone()));
        }
        assert_eq!(l.run(transfer(1, 9, 0)), Err(unknown));
    }

    // Proves zero amounts are refused for every money-moving command.
    #[test]
    fn zero_amount() {
        let mut l = Ledger::funded(eur(1), 100);
        l.run(Command::OpenAccount { account: eur(2) }).unwrap();
        let f = far(&l);
        l.run(hold(1, "h", 5, f)).unwrap();
        for cmd in [
            credit(1, 0, CreditKind::Win),
            debit(1, 0, DebitKind::Bet),
            transfer(1, 2, 0),
            hold(1, "g", 0, f),
            capture(1, "h", Some(0)),
        ] {
            assert_eq!(l.run(cmd), Err(Refusal::ZeroAmount));
        }
        assert_eq!(l.balance(eur(1)), bal(95, 5));
    }

    // Proves debits beyond available are refused with both amounts, held money excluded.
    #[test]
    fn insufficient_funds() {
        let mut l = Ledger::funded(eur(1), 100);
        let f = far(&l);
        l.run(hold(1, "h", 60, f)).unwrap();
        let refusal = |requested| Refusal::InsufficientFunds {
            account: eur(1),
            available: 40,
            requested,
        };
        assert_eq!(l.run(debit(1, 41, DebitKind::Bet)), Err(refusal(41)));
        assert_eq!(l.run(hold(1, "g", 41, f)), Err(refusal(41)));
        l.run(Command::OpenAccount { account: eur(2) }).unwrap();
        assert_eq!(l.run(transfer(1, 2, 41)), Err(refusal(41)));
        assert_eq!(
            l.run(debit(1, 40, DebitKind::Bet)).unwrap().balance,
            bal(0, 60)
        );
    }

    // Proves overflowing credits are refused and leave the state as it was.
    #[test]
    fn overflow() {
        let mut l = Ledger::funded(eur(1), u64::MAX - 10);
        let f = far(&l);
        l.run(hold(1, "h", 5, f)).unwrap();
        assert_eq!(
            l.run(credit(1, 11, CreditKind::Win)),
            Err(Refusal::Overflow { account: eur(1) })
        );
        l.run(Command::OpenAccount { account: eur(2) }).unwrap();
        l.run(credit(2, 20, CreditKind::Win)).unwrap();
        assert_eq!(
            l.run(transfer(2, 1, 11)),
            Err(Refusal::Overflow { account: eur(1) })
        );
        assert_eq!(l.balance(eur(1)), bal(u64::MAX - 15, 5));
        assert_eq!(
            l.run(credit(1, 10, CreditKind::Win)).unwrap().balance,
            bal(u64::MAX - 5, 5)
        );
    }

    // Proves a transfer moves money between players, journals both, reports both balances.
    #[test]
    fn transfer_ok() {
        let mut l = Ledger::funded(eur(1), 100);
        l.run(Command::OpenAccount { account: eur(2) }).unwrap();
        l.state.take_changes();
        let r = l.run(transfer(1, 2, 30)).unwrap();
        assert_eq!((r.balance, r.counterpart), (bal(70, 0), Some(bal(30, 0))));
        let journal = l.state.take_changes().journal;
        let kinds: Vec<_> = journal
            .iter()
            .map(|j| (j.account, j.kind, j.position))
            .collect();
        assert_eq!(
            kinds,
            [
                (eur(1), JournalKind::TransferOut, 0),
                (eur(2), JournalKind::TransferIn, 1)
            ]
        );
        assert_eq!(l.state.account(&eur(2)).unwrap().credited_total, 30);
    }

    // Proves transfers across currencies or to the same account are refused.
    #[test]
    fn transfer_refusals() {
        let mut l = Ledger::funded(eur(1), 100);
        l.run(Command::OpenAccount { account: usd(2) }).unwrap();
        let mismatch = Command::Transfer {
            from: eur(1),
            to: usd(2),
            amount: Amount(0),
        };
        let (from, to) = (eur(1).currency, usd(2).currency);
        assert_eq!(l.run(mismatch), Err(Refusal::CurrencyMismatch { from, to }));
        assert_eq!(
            l.run(transfer(1, 1, 0)),
            Err(Refusal::SameAccount { account: eur(1) })
        );
    }

    // Proves a frozen account refuses money out and transfers from other
    // players (in any group), but accepts credits, release and unfreeze.
    #[test]
    fn frozen() {
        let mut l = Ledger::funded(eur(1), 100);
        l.run(Command::OpenAccount { account: eur(2) }).unwrap();
        l.run(credit(2, 50, CreditKind::Win)).unwrap();
        let f = far(&l);
        l.run(hold(1, "h", 10, f)).unwrap();
        l.run(Command::Freeze { account: eur(1) }).unwrap();
        l.run(Command::Freeze { account: eur(1) }).unwrap();
        let frozen = Err(Refusal::Frozen { account: eur(1) });
        assert_eq!(l.run(debit(1, 1, DebitKind::Bet)), frozen);
        assert_eq!(l.run(transfer(1, 2, 1)), frozen);
        assert_eq!(l.run(hold(1, "g", 1, f)), frozen);
        assert_eq!(l.run(capture(1, "h", None)), frozen);
        l.run(credit(1, 1, CreditKind::Win)).unwrap();
        assert_eq!(l.run(transfer(2, 1, 1)), frozen);
        l.run(credit(1, 1, CreditKind::Refund)).unwrap();
        assert_eq!(l.run(release(1, "h")).unwrap().balance, bal(102, 0));
        l.run(Command::Unfreeze { account: eur(1) }).unwrap();
        l.run(Command::Unfreeze { account: eur(1) }).unwrap();
        assert_eq!(
            l.run(debit(1, 2, DebitKind::Bet)).unwrap().balance,
            bal(100, 0)
        );
        let kinds: Vec<_> = l
            .state
            .take_changes()
            .journal
            .into_iter()
            .map(|j| j.kind)
            .collect();
        assert_eq!(
            kinds.iter().filter(|k| **k == JournalKind::Freeze).count(),
            2
        );
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k == JournalKind::Unfreeze)
                .count(),
            2
        );
    }

    // Proves a hold moves available to held and a duplicate or already-expired hold is refused.
    #[test]
    fn hold_and_refusals() {
        let mut l = Ledger::funded(eur(1), 100);
        let (f, now) = (far(&l), l.now_ns);
        assert_eq!(l.run(hold(1, "h", 30, f)).unwrap().balance, bal(70, 30));
        let exists = Refusal::HoldExists {
            account: eur(1),
            hold: hid("h"),
        };
        assert_eq!(l.run(hold(1, "h", 1, f)), Err(exists));
        let expired = Refusal::HoldExpired {
            account: eur(1),
            hold: hid("g"),
            expired_at_ns: now,
        };
        assert_eq!(l.run(hold(1, "g", 1, now)), Err(expired));
        let h = l.state.hold(&eur(1), &hid("h")).unwrap();
        assert_eq!(
            (h.amount, h.remaining, h.status, h.expires_at_ns),
            (30, 30, HoldStatus::Active, f)
        );
    }

    // Proves partial then full capture: remainder stays held, then the hold closes.
    #[test]
    fn capture_partial_then_rest() {
        let mut l = Ledger::funded(eur(1), 100);
        let f = far(&l);
        l.run(hold(1, "h", 30, f)).unwrap();
        assert_eq!(
            l.run(capture(1, "h", Some(10))).unwrap().balance,
            bal(70, 20)
        );
        assert_eq!(
            l.state.hold(&eur(1), &hid("h")).unwrap().status,
            HoldStatus::Active
        );
        let over = Refusal::OverCapture {
            account: eur(1),
            hold: hid("h"),
            held: 20,
            requested: 21,
        };
        assert_eq!(l.run(capture(1, "h", Some(21))), Err(over));
        assert_eq!(l.run(capture(1, "h", None)).unwrap().balance, bal(70, 0));
        let h = l.state.hold(&eur(1), &hid("h")).unwrap();
        assert_eq!(
            (h.remaining, h.status, h.closed_at_ns),
            (0, HoldStatus::Captured, l.now_ns)
        );
        assert_eq!(house(&l), 30);
        assert_eq!(l.state.account(&eur(1)).unwrap().debited_total, 30);
        let closed = Err(Refusal::HoldClosed {
            account: eur(1),
            hold: hid("h"),
        });
        assert_eq!(l.run(capture(1, "h", None)), closed);
        assert_eq!(l.run(release(1, "h")), closed);
    }

    // Proves a withdrawal capture pays the gateway.
    #[test]
    fn capture_withdrawal_pays_gateway() {
        let mut l = Ledger::funded(eur(1), 100);
        let f = far(&l);
        l.run(hold(1, "h", 30, f)).unwrap();
        let cmd = Command::Capture {
            account: eur(1),
            hold: hid("h"),
            amount: None,
            kind: DebitKind::Withdrawal,
        };
        l.run(cmd).unwrap();
        assert_eq!((gateway(&l), house(&l)), (-70, 0));
    }

    // Proves release returns what remains and closes the hold; unknown holds are refused.
    #[test]
    fn release_and_unknown_hold() {
        let mut l = Ledger::funded(eur(1), 100);
        let f = far(&l);
        l.run(hold(1, "h", 30, f)).unwrap();
        l.run(capture(1, "h", Some(10))).unwrap();
        assert_eq!(l.run(release(1, "h")).unwrap().balance, bal(90, 0));
        let h = l.state.hold(&eur(1), &hid("h")).unwrap();
        assert_eq!((h.remaining, h.status), (0, HoldStatus::Released));
        let unknown = Err(Refusal::UnknownHold {
            account: eur(1),
            hold: hid("x"),
        });
        assert_eq!(l.run(release(1, "x")), unknown);
        assert_eq!(l.run(capture(1, "x", None)), unknown);
    }

    // Proves capture and release of an expired hold are refused as expired.
    #[test]
    fn expired_hold_refusals() {
        let mut l = Ledger::funded(eur(1), 100);
        let expires_at_ns = l.now_ns + 10;
        l.run(hold(1, "h", 30, expires_at_ns)).unwrap();
        l.now_ns += 10;
        let expired = Err(Refusal::HoldExpired {
            account: eur(1),
            hold: hid("h"),
            expired_at_ns: expires_at_ns,
        });
        assert_eq!(l.run(capture(1, "h", None)), expired);
        assert_eq!(l.run(release(1, "h")), expired);
        assert_eq!(l.balance(eur(1)), bal(100, 0));
    }

    // Proves the check order: unknown account, currency, zero, frozen, funds.
    #[test]
    fn check_order() {
        let mut l = Ledger::funded(eur(1), 5);
        l.run(Command::OpenAccount { account: usd(2) }).unwrap();
        l.run(Command::Freeze { account: eur(1) }).unwrap();
        let cmd = |to, n| Command::Transfer {
            from: eur(1),
            to,
            amount: Amount(n),
        };
        assert_eq!(l.run(cmd(eur(3), 0)).unwrap_err().code(), "unknown_account");
        assert_eq!(
            l.run(cmd(usd(2), 0)).unwrap_err().code(),
            "currency_mismatch"
        );
        l.run(Command::OpenAccount { account: eur(2) }).unwrap();
        assert_eq!(l.run(cmd(eur(2), 0)).unwrap_err().code(), "zero_amount");
        assert_eq!(l.run(cmd(eur(2), 9)).unwrap_err().code(), "frozen");
        l.run(Command::Unfreeze { account: eur(1) }).unwrap();
        assert_eq!(
            l.run(cmd(eur(2), 9)).unwrap_err().code(),
            "insufficient_funds"
        );
    }

    // Proves a refusal changes no balance and writes no journal.
    #[test]
    fn refusal_changes_nothing() {
        let mut l = Ledger::funded(eur(1), 100);
        l.state.take_changes();
        let before = l.state.clone();
        l.run(debit(1, 101, DebitKind::Bet)).unwrap_err();
        let changes = l.state.take_changes();
        assert!(
            changes.journal.is_empty() && changes.accounts.is_empty() && changes.system.is_empty()
        );
        assert_eq!(
            changes.tx_records.len(),
            1,
            "the refusal is recorded for retries"
        );
        assert_eq!(l.state.rows.accounts, before.rows.accounts);
    }
}
