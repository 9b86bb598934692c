//! Transfers between players of different shard groups, as each group's
//! ledger sees them. Three kinds of step, each one log entry of one group,
//! applied by [`crate::apply_move`] and idempotent by the transfer's tx id:
//!
//! 1. payer's group `TransferBegin`: the client's transfer request, checked
//!    like a local transfer on the payer's side (record, window, account,
//!    funds). It debits the payer into the group's transit account and
//!    keeps a [`PendingTransfer`] row under the tx id, which moves with the
//!    wallet like its holds and records. The debit is the transfer's one
//!    change to the payer's balance, so it is atomic on the payer's side;
//! 2. payee's group `TransferCredit`: credits the payee from that group's
//!    transit account, or refuses (unknown account, frozen, overflow), and
//!    records either outcome in the payee's wallet under a derived id
//!    ([`TxId::transfer_credit`]), so a retry, in whatever group the
//!    payee's wallet is by then, answers the first outcome;
//! 3. payer's group `TransferSettle`: turns the pending row into the
//!    transfer's tx record: credited, the receipt of both sides; refused,
//!    the money comes back from transit (`TransferBack`) and the record
//!    keeps the payee's refusal.
//!
//! Every step balances its own group's books (transit counts); across
//! groups, transit sums to the money of the transfers in flight.

use serde::{Deserialize, Serialize};

use crate::entry::Entry;
use crate::execute::{funds, nonzero, pair, writable};
use crate::overlay::Overlay;
use crate::{
    AccountId, Amount, Command, JournalKind, LedgerRows, MoveOutcome, MoveRefusal, Outcome,
    Receipt, Refusal, Request, SystemAccount, TxId, TxRecord, fingerprint,
};

/// A transfer whose payer was debited here and whose payee, in another
/// group, has not been settled yet. Keyed by the payer's account and the
/// transfer's tx id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTransfer {
    pub to: AccountId,
    pub amount: u64,
    /// The request's creation time, as the tx record will keep it.
    pub created_at_ns: u64,
    /// [`fingerprint`] of the client's transfer command.
    pub fingerprint: u64,
    /// The debit: the entry that applied it and the payer's balance after.
    pub debited: Receipt,
}

impl<R: LedgerRows + ?Sized> Overlay<'_, R> {
    pub(crate) fn transfer_begin(&mut self, e: &mut Entry, request: &Request) -> MoveOutcome {
        let Command::Transfer { from, to, amount } = request.command else {
            return MoveOutcome::Rejected {
                why: MoveRefusal::Malformed {
                    what: format!(
                        "a transfer begins with a transfer, not {}",
                        request.command.name()
                    ),
                },
            };
        };
        let done = |outcome| MoveOutcome::TransferDone { outcome };
        // Only the payer's wallet is here; the payee's group checks its own.
        if let Err(refusal) = self.check_player(from.player) {
            return done(Err(refusal));
        }
        let fp = fingerprint(&request.command);
        let same = |f: u64, created: u64| f == fp && created == request.created_at_ns;
        let conflict = || {
            Err(Refusal::TxIdConflict {
                tx: request.tx.clone(),
            })
        };
        if let Some(record) = self.tx_record(&from, &request.tx) {
            return done(if same(record.fingerprint, record.created_at_ns) {
                record.outcome
            } else {
                conflict()
            });
        }
        if let Some(pending) = self.pending_transfer(&from, &request.tx) {
            if same(pending.fingerprint, pending.created_at_ns) {
                return MoveOutcome::TransferPending { pending };
            }
            return done(conflict());
        }
        if let Err(refusal) = self.check_tx_time(e.now_ns, request) {
            return done(Err(refusal));
        }
        match self.debit_for_transfer(e, &request.tx, from, to, amount) {
            Ok(debited) => {
                let pending = PendingTransfer {
                    to,
                    amount: amount.0,
                    created_at_ns: request.created_at_ns,
                    fingerprint: fp,
                    debited,
                };
                self.put_pending_transfer(from, request.tx.clone(), Some(pending.clone()));
                MoveOutcome::TransferPending { pending }
            }
            Err(refusal) => {
                let outcome = Err(refusal);
                let record = TxRecord {
                    created_at_ns: request.created_at_ns,
                    fingerprint: fp,
                    outcome: outcome.clone(),
                };
                self.put_tx_record(from, request.tx.clone(), Some(record));
                done(outcome)
            }
        }
    }

    /// The payer's side of a transfer: the checks of a local transfer that
    /// the payer's group can make, then the debit into transit.
    fn debit_for_transfer(
        &mut self,
        e: &mut Entry,
        tx: &TxId,
        from: AccountId,
        to: AccountId,
        amount: Amount,
    ) -> Result<Receipt, Refusal> {
        let src = self.existing(from)?;
        pair(from, to)?;
        let amount = nonzero(amount)?;
        writable(from, &src)?;
        funds(from, &src, amount)?;
        let overflow = Refusal::Overflow { account: from };
        let next = src.debit_with(amount).ok_or(overflow.clone())?;
        let transit = self
            .system_balance(from.currency, SystemAccount::Transit)
            .checked_add(i128::from(amount))
            .ok_or(overflow)?;
        self.put_system(e, from.currency, SystemAccount::Transit, transit);
        self.put_account(
            e,
            from,
            next.clone(),
            (Some(tx), JournalKind::TransferOut, amount),
        );
        Ok(e.receipt(next.balance(), None))
    }

    pub(crate) fn transfer_credit(
        &mut self,
        e: &mut Entry,
        from: AccountId,
        to: AccountId,
        amount: u64,
        tx: &TxId,
        created_at_ns: u64,
    ) -> MoveOutcome {
        let done = |outcome| MoveOutcome::TransferDone { outcome };
        if let Err(refusal) = self.check_player(to.player) {
            return done(Err(refusal));
        }
        let command = Command::Transfer {
            from,
            to,
            amount: Amount(amount),
        };
        let fp = fingerprint(&command);
        let key = TxId::transfer_credit(from, tx);
        if let Some(record) = self.tx_record(&to, &key) {
            if record.fingerprint == fp && record.created_at_ns == created_at_ns {
                return done(record.outcome);
            }
            return done(Err(Refusal::TxIdConflict { tx: tx.clone() }));
        }
        let request = Request {
            tx: tx.clone(),
            created_at_ns,
            command,
        };
        if let Err(refusal) = self.check_tx_time(e.now_ns, &request) {
            return done(Err(refusal));
        }
        let outcome = self.credit_from_transit(e, tx, from, to, amount);
        let record = TxRecord {
            created_at_ns,
            fingerprint: fp,
            outcome: outcome.clone(),
        };
        self.put_tx_record(to, key, Some(record));
        done(outcome)
    }

    /// The payee's side: the checks a local transfer makes of its target,
    /// and a frozen payee refuses money from another group (the payer's
    /// group cannot see the flag), then the credit from transit.
    fn credit_from_transit(
        &mut self,
        e: &mut Entry,
        tx: &TxId,
        from: AccountId,
        to: AccountId,
        amount: u64,
    ) -> Outcome {
        let dst = self.existing(to)?;
        pair(from, to)?;
        let amount = nonzero(Amount(amount))?;
        writable(to, &dst)?;
        let overflow = Refusal::Overflow { account: to };
        let next = dst.credit_with(amount).ok_or(overflow.clone())?;
        let transit = self
            .system_balance(to.currency, SystemAccount::Transit)
            .checked_sub(i128::from(amount))
            .ok_or(overflow)?;
        self.put_system(e, to.currency, SystemAccount::Transit, transit);
        self.put_account(
            e,
            to,
            next.clone(),
            (Some(tx), JournalKind::TransferIn, amount),
        );
        Ok(e.receipt(next.balance(), None))
    }

    pub(crate) fn transfer_settle(
        &mut self,
        e: &mut Entry,
        from: AccountId,
        tx: &TxId,
        credit: &Outcome,
    ) -> MoveOutcome {
        let done = |outcome| MoveOutcome::TransferDone { outcome };
        if let Err(refusal) = self.check_player(from.player) {
            return done(Err(refusal));
        }
        let Some(pending) = self.pending_transfer(&from, tx) else {
            return match self.tx_record(&from, tx) {
                Some(record) => done(record.outcome),
                None => MoveOutcome::Rejected {
                    why: MoveRefusal::NoTransfer,
                },
            };
        };
        if let Err(refusal) = credit
            && !is_final(refusal)
        {
            return MoveOutcome::Rejected {
                why: MoveRefusal::NotFinal {
                    code: refusal.code().to_string(),
                },
            };
        }
        let outcome = match credit {
            Ok(credited) => Ok(Receipt {
                counterpart: Some(credited.balance),
                ..pending.debited.clone()
            }),
            Err(refusal) => {
                let Some(back) = self
                    .existing(from)
                    .ok()
                    .and_then(|a| a.credit_with(pending.amount))
                else {
                    // Cannot happen short of damage: the money left this
                    // account, and u64::MAX of it cannot have come in since.
                    return MoveOutcome::Rejected {
                        why: MoveRefusal::Malformed {
                            what: format!("{from} cannot take back {} it sent", pending.amount),
                        },
                    };
                };
                let transit = self.system_balance(from.currency, SystemAccount::Transit);
                let transit = transit.wrapping_sub(i128::from(pending.amount));
                self.put_system(e, from.currency, SystemAccount::Transit, transit);
                self.put_account(
                    e,
                    from,
                    back,
                    (Some(tx), JournalKind::TransferBack, pending.amount),
                );
                Err(refusal.clone())
            }
        };
        self.put_pending_transfer(from, tx.clone(), None);
        let record = TxRecord {
            created_at_ns: pending.created_at_ns,
            fingerprint: pending.fingerprint,
            outcome: outcome.clone(),
        };
        self.put_tx_record(from, tx.clone(), Some(record));
        done(outcome)
    }
}

/// Whether a payee's refusal settles a transfer: a refusal that says "not
/// here" (moving, moved), "not now" (a tx time outside the window, a
/// transfer still pending) or "not this" (an id conflict) decides nothing
/// about the transfer, and
/// the coordinator must ask again (or stop) instead.
pub fn is_final(refusal: &Refusal) -> bool {
    !matches!(
        refusal,
        Refusal::Moving { .. }
            | Refusal::Moved { .. }
            | Refusal::TxIdExpired { .. }
            | Refusal::TxIdFromFuture { .. }
            | Refusal::TxIdConflict { .. }
            | Refusal::TransferPending { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{Ledger, bal, eur, usd};
    use crate::{Currency, MoveCommand, MoveId, PlayerId};

    /// Payer 1 (EUR 100) in group 1, payee 2 (EUR 10) in group 2.
    fn groups() -> (Ledger, Ledger) {
        let payer = Ledger::funded(eur(1), 100);
        let mut payee = Ledger::funded(eur(2), 10);
        payee.group = 2;
        payee.tx_seq = 1_000;
        (payer, payee)
    }

    fn transfer(l: &mut Ledger, amount: u64) -> Request {
        l.request(Command::Transfer {
            from: eur(1),
            to: eur(2),
            amount: Amount(amount),
        })
    }

    fn credit_of(r: &Request) -> MoveCommand {
        let Command::Transfer { from, to, amount } = r.command else {
            panic!("not a transfer")
        };
        MoveCommand::TransferCredit {
            from,
            to,
            amount: amount.0,
            tx: r.tx.clone(),
            created_at_ns: r.created_at_ns,
        }
    }

    fn settle_of(r: &Request, credit: Outcome) -> MoveCommand {
        MoveCommand::TransferSettle {
            from: eur(1),
            tx: r.tx.clone(),
            credit,
        }
    }

    fn transit(l: &Ledger) -> i128 {
        let eur = Currency::parse("EUR").unwrap();
        l.state.system_balance(eur, SystemAccount::Transit)
    }

    fn done(o: MoveOutcome) -> Outcome {
        match o {
            MoveOutcome::TransferDone { outcome } => outcome,
            other => panic!("expected a settled answer, got {other:?}"),
        }
    }

    // Proves the three steps: the payer is debited into transit at once
    // (one change of its balance), the payee credited from transit, the
    // settle records both sides; every step answers the same when
    // repeated; each group balances at every entry and the transit
    // accounts of the two groups sum to zero at the end.
    #[test]
    fn a_transfer_between_groups_debits_credits_and_settles_once() {
        let (mut g1, mut g2) = groups();
        let r = transfer(&mut g1, 30);
        let begin = MoveCommand::TransferBegin { request: r.clone() };
        let MoveOutcome::TransferPending { pending } = g1.step(&begin) else {
            panic!("begin did not debit")
        };
        assert_eq!(g1.balance(eur(1)), bal(70, 0));
        assert_eq!(transit(&g1), 30);
        assert_eq!(pending.debited.balance, bal(70, 0));
        // A retry of the client's request finds it pending; nothing twice.
        assert_eq!(
            g1.step(&begin),
            MoveOutcome::TransferPending {
                pending: pending.clone()
            }
        );
        assert_eq!(g1.balance(eur(1)), bal(70, 0));

        let credited = done(g2.step(&credit_of(&r)));
        assert_eq!(credited.as_ref().unwrap().balance, bal(40, 0));
        assert_eq!(transit(&g2), -30);
        assert_eq!(done(g2.step(&credit_of(&r))), credited);
        assert_eq!(g2.balance(eur(2)), bal(40, 0));

        let settled = done(g1.step(&settle_of(&r, credited.clone())));
        let receipt = settled.clone().unwrap();
        assert_eq!(receipt.log_index, pending.debited.log_index);
        assert_eq!(receipt.balance, bal(70, 0));
        assert_eq!(receipt.counterpart, Some(bal(40, 0)));
        assert_eq!(done(g1.step(&settle_of(&r, credited))), settled);
        assert_eq!(done(g1.step(&begin)), settled);
        // An ordinary retry of the same request answers it too.
        assert_eq!(g1.entry(std::slice::from_ref(&r)), vec![settled]);
        assert_eq!(transit(&g1) + transit(&g2), 0);
        assert_eq!(g1.state.pending_transfer(&eur(1), &r.tx), None);
    }

    // Proves a pending transfer is never applied again as a local one (its
    // pending row came with the payer's wallet into the payee's group): the
    // plain request is refused `transfer_pending`, unrecorded, nothing
    // changes. (A sim seed once applied such a retry a second time.)
    #[test]
    fn a_pending_transfer_is_not_applied_again_as_a_local_one() {
        let (mut g1, _) = groups();
        g1.run(Command::OpenAccount { account: eur(2) }).unwrap();
        let r = transfer(&mut g1, 30);
        let begin = MoveCommand::TransferBegin { request: r.clone() };
        assert!(matches!(
            g1.step(&begin),
            MoveOutcome::TransferPending { .. }
        ));
        assert_eq!(
            g1.entry(std::slice::from_ref(&r)),
            vec![Err(Refusal::TransferPending { tx: r.tx.clone() })]
        );
        assert_eq!(g1.balance(eur(1)), bal(70, 0));
        assert_eq!(g1.balance(eur(2)), bal(0, 0));
        assert_eq!(g1.state.tx_record(&eur(1), &r.tx), None);
    }

    // Proves a payee's refusal (frozen) is recorded where it was made, so a
    // retry answers it even after the payee is unfrozen, and the settle
    // gives the payer its money back with a `TransferBack` line.
    #[test]
    fn a_refused_credit_returns_the_money_and_stays_refused() {
        let (mut g1, mut g2) = groups();
        g2.run(Command::Freeze { account: eur(2) }).unwrap();
        let r = transfer(&mut g1, 30);
        let begin = MoveCommand::TransferBegin { request: r.clone() };
        assert!(matches!(
            g1.step(&begin),
            MoveOutcome::TransferPending { .. }
        ));
        let refused = done(g2.step(&credit_of(&r)));
        assert_eq!(refused, Err(Refusal::Frozen { account: eur(2) }));
        g2.run(Command::Unfreeze { account: eur(2) }).unwrap();
        assert_eq!(done(g2.step(&credit_of(&r))), refused);
        assert_eq!(g2.balance(eur(2)), bal(10, 0));

        assert_eq!(done(g1.step(&settle_of(&r, refused.clone()))), refused);
        assert_eq!(g1.balance(eur(1)), bal(100, 0));
        assert_eq!(transit(&g1), 0);
        let back = g1.state.take_changes().journal;
        let last = back.last().unwrap();
        assert_eq!(last.kind, JournalKind::TransferBack);
        assert_eq!(last.tx.as_ref(), Some(&r.tx));
        assert_eq!(done(g1.step(&begin)), refused);
    }

    // Proves the payer side refuses what a local transfer refuses, records
    // it, and tells a reused id from a retry (pending or settled).
    #[test]
    fn the_payer_side_refuses_and_tells_conflicts() {
        let (mut g1, _) = groups();
        let poor = transfer(&mut g1, 500);
        let begin = MoveCommand::TransferBegin {
            request: poor.clone(),
        };
        let refused = done(g1.step(&begin));
        assert!(matches!(refused, Err(Refusal::InsufficientFunds { .. })));
        assert_eq!(done(g1.step(&begin)), refused);
        assert_eq!(g1.balance(eur(1)), bal(100, 0));

        let r = transfer(&mut g1, 5);
        let begin = MoveCommand::TransferBegin { request: r.clone() };
        assert!(matches!(
            g1.step(&begin),
            MoveOutcome::TransferPending { .. }
        ));
        let reused = Request {
            command: Command::Transfer {
                from: eur(1),
                to: eur(2),
                amount: Amount(6),
            },
            ..r.clone()
        };
        let reuse = MoveCommand::TransferBegin { request: reused };
        assert_eq!(
            done(g1.step(&reuse)),
            Err(Refusal::TxIdConflict { tx: r.tx.clone() })
        );
        let mismatch = g1.request(Command::Transfer {
            from: eur(1),
            to: usd(2),
            amount: Amount(1),
        });
        let mismatch = MoveCommand::TransferBegin { request: mismatch };
        assert!(matches!(
            done(g1.step(&mismatch)),
            Err(Refusal::CurrencyMismatch { .. })
        ));
    }

    // Proves a settle takes only a final answer, and only of a transfer
    // that exists here.
    #[test]
    fn a_settle_needs_a_final_answer_of_a_pending_transfer() {
        let (mut g1, _) = groups();
        let r = transfer(&mut g1, 5);
        let unknown = settle_of(&r, Err(Refusal::ZeroAmount));
        assert_eq!(
            g1.step(&unknown),
            MoveOutcome::Rejected {
                why: MoveRefusal::NoTransfer
            }
        );
        let begin = MoveCommand::TransferBegin { request: r.clone() };
        assert!(matches!(
            g1.step(&begin),
            MoveOutcome::TransferPending { .. }
        ));
        let not_final = [
            Refusal::Moving {
                player: PlayerId(2),
            },
            Refusal::TransferPending { tx: r.tx.clone() },
        ];
        for refusal in not_final {
            let code = refusal.code().to_string();
            assert_eq!(
                g1.step(&settle_of(&r, Err(refusal))),
                MoveOutcome::Rejected {
                    why: MoveRefusal::NotFinal { code }
                }
            );
        }
        assert_eq!(g1.balance(eur(1)), bal(95, 0));
        assert!(g1.state.pending_transfer(&eur(1), &r.tx).is_some());
    }

    // Proves a pending transfer moves with its payer's wallet: the old
    // group answers `moved`, the new one settles it; and a payee that
    // moved away is not credited where it was (nothing recorded there).
    #[test]
    fn pending_transfers_move_with_the_wallet() {
        let (mut g1, mut g2) = groups();
        let mut g3 = Ledger::new();
        g3.group = 3;
        let r = transfer(&mut g1, 30);
        let begin = MoveCommand::TransferBegin { request: r.clone() };
        assert!(matches!(
            g1.step(&begin),
            MoveOutcome::TransferPending { .. }
        ));
        let id = MoveId {
            from_epoch: 1,
            attempt: 0,
            from_group: 1,
        };
        let leave = MoveCommand::Leave {
            player: PlayerId(1),
            id,
            to_group: 3,
        };
        let MoveOutcome::Left { wallet } = g1.step(&leave) else {
            panic!("leave refused")
        };
        assert_eq!(wallet.transfers.len(), 1);
        let arrive = MoveCommand::Arrive {
            player: PlayerId(1),
            id,
            wallet,
        };
        assert_eq!(g3.step(&arrive), MoveOutcome::Arrived);
        let finish = MoveCommand::Finish {
            player: PlayerId(1),
            id,
            epoch: 2,
        };
        assert_eq!(g1.step(&finish), MoveOutcome::Finished);

        let credited = done(g2.step(&credit_of(&r)));
        assert!(credited.is_ok());
        assert!(matches!(
            done(g1.step(&settle_of(&r, credited.clone()))),
            Err(Refusal::Moved { group: 3, .. })
        ));
        let settled = done(g3.step(&settle_of(&r, credited))).unwrap();
        assert_eq!(settled.counterpart, Some(bal(40, 0)));
        // Money: g1 sent 30 and the wallet (70) to transit, g3 took the
        // wallet in and settled, g2 credited 30.
        assert_eq!(transit(&g1) + transit(&g2) + transit(&g3), 0);

        // The payee moves away from g2: a credit there is answered `moved`.
        let leave = MoveCommand::Leave {
            player: PlayerId(2),
            id: MoveId {
                from_epoch: 1,
                attempt: 0,
                from_group: 2,
            },
            to_group: 3,
        };
        assert!(matches!(g2.step(&leave), MoveOutcome::Left { .. }));
        let r2 = transfer(&mut g3, 1);
        assert!(matches!(
            done(g2.step(&credit_of(&r2))),
            Err(Refusal::Moving { .. })
        ));
        let key = TxId::transfer_credit(eur(1), &r2.tx);
        assert_eq!(g2.state.tx_record(&eur(2), &key), None);
    }
}
