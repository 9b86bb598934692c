//! A player's wallet moving between shard groups, as each group's ledger
//! sees it. Every step is one log entry of one group, applied by
//! [`apply_move`]:
//!
//! 1. source `Leave`: the player's accounts, holds and tx records leave the
//!    books (their money goes to the source's transit account), a copy is
//!    kept with the player's marker, and every command of the player is
//!    refused `moving`;
//! 2. target `Arrive` (idempotent by move id): the rows enter the books
//!    from the target's transit account; or target `Refuse`, the only
//!    abort, possible only before an arrival;
//! 3. (the directory places the player in the target, epoch + 1);
//! 4. source `Finish`: the marker becomes a forwarding tombstone (commands
//!    refused `moved` with the group and epoch), or, after a refusal,
//!    source `Return`: the rows come back from transit.
//!
//! Each step balances its own group's books (transit counts), so every
//! group balances at every index; across groups, the transit positions sum
//! to the money in flight.

use serde::{Deserialize, Serialize};

use crate::cross_transfer::PendingTransfer;
use crate::entry::Entry;
use crate::overlay::Overlay;
use crate::{
    AccountId, Changes, EntryContext, Hold, HoldStatus, JournalKind, LedgerConfig, LedgerRows,
    Outcome, PlayerId, Request, SystemAccount, TxId, WalletRows,
};

/// One move of one player: the placement epoch it leaves at, the attempt
/// at that epoch (a refused move is tried again with the next), and the
/// group it leaves. Later moves of a player compare greater.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MoveId {
    pub from_epoch: u64,
    pub attempt: u32,
    pub from_group: u64,
}

/// Where a player stands in one group with respect to moves; absent until
/// a move touches the player there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlayerMove {
    /// Leaving with move `id` for `to_group`: its rows are out of this
    /// group's books, their copy here until the move ends.
    Leaving {
        id: MoveId,
        to_group: u64,
        wallet: WalletRows,
    },
    /// Gone to `group`, placed there at `epoch`: a forwarding tombstone.
    Moved { id: MoveId, group: u64, epoch: u64 },
    /// Came back after the target refused move `id`.
    Returned { id: MoveId },
    /// Arrived here with move `id`.
    Arrived { id: MoveId },
    /// This group refused move `id` before it arrived; it never will.
    Refused { id: MoveId },
}

impl PlayerMove {
    /// The move the marker is about.
    pub fn id(&self) -> MoveId {
        match self {
            PlayerMove::Leaving { id, .. }
            | PlayerMove::Moved { id, .. }
            | PlayerMove::Returned { id }
            | PlayerMove::Arrived { id }
            | PlayerMove::Refused { id } => *id,
        }
    }
}

/// One step of a move, proposed to the group it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MoveCommand {
    /// Source: take the player's wallet out of the books for `to_group`.
    Leave {
        player: PlayerId,
        id: MoveId,
        to_group: u64,
    },
    /// Target: take in the wallet the source's `Leave` answered.
    Arrive {
        player: PlayerId,
        id: MoveId,
        wallet: WalletRows,
    },
    /// Target: refuse move `id` (only before it arrived).
    Refuse { player: PlayerId, id: MoveId },
    /// Source: the directory placed the player in the target at `epoch`.
    Finish {
        player: PlayerId,
        id: MoveId,
        epoch: u64,
    },
    /// Source: the target refused: the wallet comes back.
    Return { player: PlayerId, id: MoveId },
    /// Payer's group: a client's transfer to a player of another group
    /// (see [`crate::cross_transfer`]): debit the payer into transit.
    TransferBegin { request: Request },
    /// Payee's group: credit the payee from transit, or refuse.
    TransferCredit {
        from: AccountId,
        to: AccountId,
        amount: u64,
        tx: TxId,
        created_at_ns: u64,
    },
    /// Payer's group: the payee's group answered `credit`.
    TransferSettle {
        from: AccountId,
        tx: TxId,
        credit: Outcome,
    },
}

/// What a move step did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MoveOutcome {
    /// `Leave`: the wallet now out of the books, for `Arrive` to carry.
    Left {
        wallet: WalletRows,
    },
    Arrived,
    /// `Refuse`, or an `Arrive` that could not apply and refused instead.
    Refused {
        why: MoveRefusal,
    },
    Finished,
    Returned,
    /// The step does not fit the player's state here; nothing changed.
    Rejected {
        why: MoveRefusal,
    },
    /// `TransferBegin`: the payer is debited, the payee not yet settled.
    TransferPending {
        pending: PendingTransfer,
    },
    /// A transfer step's answer: `TransferBegin` refused or already
    /// settled, `TransferCredit`'s credit or refusal, `TransferSettle`'s
    /// final outcome. A `moving` or `moved` refusal says the wallet is not
    /// here (nothing recorded).
    TransferDone {
        outcome: Outcome,
    },
}

/// Why a move step was refused or rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MoveRefusal {
    /// Asked for by the source's driver (`Refuse`).
    Requested,
    /// The player has rows in the target already.
    HasRows,
    /// The player is leaving the target itself.
    LeavingHere,
    /// A later move of the player was seen here.
    Stale { seen: MoveId },
    /// Another move of the player is under way here.
    OtherMove { under_way: MoveId },
    /// The player moved away from here.
    NotHere { group: u64 },
    /// The move arrived here already: too late to refuse.
    AlreadyArrived,
    /// The move was refused here: it can never arrive.
    AlreadyRefused,
    /// `Finish` or `Return` of a move that is not leaving from here.
    NotLeaving,
    /// The arriving rows break the ledger's invariants (another player's
    /// rows, a row twice, held money no hold accounts for, a balance
    /// beyond `u64`): refused rather than booked.
    Malformed { what: String },
    /// `TransferSettle` of a transfer neither pending nor recorded here.
    NoTransfer,
    /// `TransferSettle` with a refusal that decides nothing (`code`).
    NotFinal { code: String },
}

/// Applies one move step as one log entry of `ctx.group`, with the same
/// maintenance (expiry, purging) and conservation checks as [`crate::apply`].
/// Deterministic; panics only on a broken invariant.
pub fn apply_move<R: LedgerRows + ?Sized>(
    rows: &R,
    config: &LedgerConfig,
    ctx: EntryContext,
    command: &MoveCommand,
) -> (MoveOutcome, Changes) {
    let mut o = Overlay::new(rows, config);
    let mut entry = o.begin_entry(ctx, 1);
    let outcome = match command {
        MoveCommand::Leave {
            player,
            id,
            to_group,
        } => o.leave(&mut entry, *player, *id, *to_group),
        MoveCommand::Arrive { player, id, wallet } => o.arrive(&mut entry, *player, *id, wallet),
        MoveCommand::Refuse { player, id } => o.refuse(*player, *id),
        MoveCommand::Finish { player, id, epoch } => o.finish(*player, *id, *epoch),
        MoveCommand::Return { player, id } => o.return_home(&mut entry, *player, *id),
        MoveCommand::TransferBegin { request } => o.transfer_begin(&mut entry, request),
        MoveCommand::TransferCredit {
            from,
            to,
            amount,
            tx,
            created_at_ns,
        } => o.transfer_credit(&mut entry, *from, *to, *amount, tx, *created_at_ns),
        MoveCommand::TransferSettle { from, tx, credit } => {
            o.transfer_settle(&mut entry, *from, tx, credit)
        }
    };
    (outcome, o.end_entry(entry))
}

impl<R: LedgerRows + ?Sized> Overlay<'_, R> {
    fn leave(&mut self, e: &mut Entry, player: PlayerId, id: MoveId, to_group: u64) -> MoveOutcome {
        let rejected = |why| MoveOutcome::Rejected { why };
        match self.player_move(player) {
            Some(PlayerMove::Leaving {
                id: under_way,
                wallet,
                ..
            }) => {
                if under_way == id {
                    return MoveOutcome::Left { wallet };
                }
                return rejected(MoveRefusal::OtherMove { under_way });
            }
            Some(PlayerMove::Moved { group, .. }) => {
                return rejected(MoveRefusal::NotHere { group });
            }
            Some(seen) if seen.id() >= id => {
                return rejected(MoveRefusal::Stale { seen: seen.id() });
            }
            _ => {}
        }
        let mut wallet = self.wallet_rows(player);
        for (account, hold, _) in &wallet.holds {
            self.put_hold(*account, hold.clone(), None);
        }
        for (account, tx, _) in &wallet.tx_records {
            self.put_tx_record(*account, tx.clone(), None);
        }
        for (account, tx, _) in &wallet.transfers {
            self.put_pending_transfer(*account, tx.clone(), None);
        }
        for (account, leaving) in &mut wallet.accounts {
            *leaving = self
                .remove_account(e, *account, JournalKind::MoveOut)
                .expect("the wallet's account exists");
            self.add_transit(e, *account, total(leaving));
        }
        self.put_player_move(
            player,
            Some(PlayerMove::Leaving {
                id,
                to_group,
                wallet: wallet.clone(),
            }),
        );
        MoveOutcome::Left { wallet }
    }

    fn arrive(
        &mut self,
        e: &mut Entry,
        player: PlayerId,
        id: MoveId,
        wallet: &WalletRows,
    ) -> MoveOutcome {
        let refused = |o: &mut Self, why| {
            o.put_player_move(player, Some(PlayerMove::Refused { id }));
            MoveOutcome::Refused { why }
        };
        match self.player_move(player) {
            Some(PlayerMove::Arrived { id: seen }) if seen == id => return MoveOutcome::Arrived,
            Some(PlayerMove::Refused { id: seen }) if seen == id => {
                return MoveOutcome::Refused {
                    why: MoveRefusal::AlreadyRefused,
                };
            }
            Some(seen) if seen.id() > id => {
                return MoveOutcome::Rejected {
                    why: MoveRefusal::Stale { seen: seen.id() },
                };
            }
            // An earlier move from here whose Finish has not applied yet:
            // a later move can only start from the epoch that move's
            // Repoint made (one placement per epoch, and an attempt only
            // after the previous one returned), so it is over; its copy of
            // the wallet is stale and this arrival replaces the marker.
            Some(PlayerMove::Leaving { id: under_way, .. }) if under_way < id => {}
            Some(PlayerMove::Leaving { .. }) => return refused(self, MoveRefusal::LeavingHere),
            _ => {}
        }
        if let Err(what) = check_wallet(player, wallet) {
            return refused(self, MoveRefusal::Malformed { what });
        }
        if !self.wallet_rows(player).is_empty() {
            return refused(self, MoveRefusal::HasRows);
        }
        self.take_in(e, wallet, JournalKind::MoveIn);
        self.put_player_move(player, Some(PlayerMove::Arrived { id }));
        MoveOutcome::Arrived
    }

    fn refuse(&mut self, player: PlayerId, id: MoveId) -> MoveOutcome {
        match self.player_move(player) {
            Some(PlayerMove::Arrived { id: seen }) if seen == id => MoveOutcome::Rejected {
                why: MoveRefusal::AlreadyArrived,
            },
            Some(seen) if seen.id() > id => MoveOutcome::Rejected {
                why: MoveRefusal::Stale { seen: seen.id() },
            },
            Some(PlayerMove::Leaving { id: under_way, .. }) => MoveOutcome::Rejected {
                why: MoveRefusal::OtherMove { under_way },
            },
            _ => {
                self.put_player_move(player, Some(PlayerMove::Refused { id }));
                MoveOutcome::Refused {
                    why: MoveRefusal::Requested,
                }
            }
        }
    }

    fn finish(&mut self, player: PlayerId, id: MoveId, epoch: u64) -> MoveOutcome {
        match self.player_move(player) {
            Some(PlayerMove::Moved { id: done, .. }) if done == id => MoveOutcome::Finished,
            Some(PlayerMove::Leaving {
                id: under_way,
                to_group,
                ..
            }) if under_way == id => {
                let group = to_group;
                self.put_player_move(player, Some(PlayerMove::Moved { id, group, epoch }));
                MoveOutcome::Finished
            }
            _ => MoveOutcome::Rejected {
                why: MoveRefusal::NotLeaving,
            },
        }
    }

    fn return_home(&mut self, e: &mut Entry, player: PlayerId, id: MoveId) -> MoveOutcome {
        match self.player_move(player) {
            Some(PlayerMove::Returned { id: done }) if done == id => MoveOutcome::Returned,
            Some(PlayerMove::Leaving {
                id: under_way,
                wallet,
                ..
            }) if under_way == id => {
                self.take_in(e, &wallet, JournalKind::MoveBack);
                self.put_player_move(player, Some(PlayerMove::Returned { id }));
                MoveOutcome::Returned
            }
            _ => MoveOutcome::Rejected {
                why: MoveRefusal::NotLeaving,
            },
        }
    }

    /// Books a wallet's rows in from transit, as of now: holds due by now
    /// expire at once, and closed holds and tx records older than the
    /// window are dropped, as this group's own maintenance would have done
    /// (its sweeps never look behind where they stopped).
    fn take_in(&mut self, e: &mut Entry, wallet: &WalletRows, kind: JournalKind) {
        let window_ns = self.config.idempotency_window_ns;
        let now_ns = e.now_ns;
        let kept = |t: u64| t.saturating_add(window_ns) >= now_ns;
        for (account, arriving) in &wallet.accounts {
            self.add_transit(e, *account, -total(arriving));
            self.insert_account(e, *account, arriving.clone(), kind);
        }
        for (account, hold, h) in &wallet.holds {
            if h.is_active() && h.expires_at_ns <= now_ns {
                self.expire_now(e, *account, hold.clone(), h.clone());
            } else if h.is_active() || kept(h.closed_at_ns) {
                self.put_hold(*account, hold.clone(), Some(h.clone()));
            }
        }
        for (account, tx, r) in &wallet.tx_records {
            if kept(r.created_at_ns) {
                self.put_tx_record(*account, tx.clone(), Some(r.clone()));
            }
        }
        // Pending transfers are never dropped: their money is in transit
        // until this group's coordinator settles them.
        for (account, tx, t) in &wallet.transfers {
            self.put_pending_transfer(*account, tx.clone(), Some(t.clone()));
        }
    }

    /// Expires an arriving hold whose time passed while it was in flight.
    fn expire_now(&mut self, e: &mut Entry, account: AccountId, hold: crate::HoldId, h: Hold) {
        let a = self
            .account(&account)
            .expect("the hold's account arrived first");
        let next = a
            .release_with(h.remaining)
            .expect("a hold's remaining is within held");
        let closed = Hold {
            remaining: 0,
            status: HoldStatus::Expired,
            closed_at_ns: e.now_ns,
            ..h
        };
        let amount = h.remaining;
        self.put_hold(account, hold, Some(closed));
        self.put_account(e, account, next, (None, JournalKind::Expire, amount));
    }

    /// Moves `amount` into the transit account of the account's currency:
    /// a wallet's total, positive as it leaves, negative as it arrives.
    fn add_transit(&mut self, e: &mut Entry, account: AccountId, amount: i128) {
        let transit = self.system_balance(account.currency, SystemAccount::Transit);
        self.put_system(
            e,
            account.currency,
            SystemAccount::Transit,
            transit.wrapping_add(amount),
        );
    }
}

/// Checks arriving rows against the invariants booking them relies on:
/// only `player`'s rows, each once, every balance within `u64`, held
/// money matching the active holds, closed holds empty. The rows come from
/// another group's log, so a bug or damage there must be refused here,
/// not panic every replica.
fn check_wallet(player: PlayerId, wallet: &WalletRows) -> Result<(), String> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut held: BTreeMap<AccountId, u128> = BTreeMap::new();
    for (id, a) in &wallet.accounts {
        if id.player != player {
            return Err(format!("account {id} of another player"));
        }
        if held.insert(*id, 0).is_some() {
            return Err(format!("account {id} twice"));
        }
        if a.total().is_none() {
            return Err(format!("account {id} holds more than u64::MAX"));
        }
        // Arrival journals one more line after it.
        if a.journal_seq == u64::MAX {
            return Err(format!("account {id}'s journal sequence is exhausted"));
        }
    }
    let mut holds = BTreeSet::new();
    for (id, hold, h) in &wallet.holds {
        let Some(sum) = held.get_mut(id) else {
            return Err(format!("hold {hold} on {id}, which does not arrive"));
        };
        if !holds.insert((*id, hold.clone())) {
            return Err(format!("hold {hold} on {id} twice"));
        }
        let consistent = h.remaining <= h.amount && h.is_active() == (h.remaining > 0);
        if !consistent {
            return Err(format!("hold {hold} on {id} is inconsistent"));
        }
        if h.is_active() {
            *sum += u128::from(h.remaining);
        }
    }
    for (id, a) in &wallet.accounts {
        if u128::from(a.held) != held[id] {
            return Err(format!("held of {id} differs from its holds"));
        }
    }
    let mut transfers = BTreeSet::new();
    for (id, tx, _) in &wallet.transfers {
        if !held.contains_key(id) {
            return Err(format!("transfer {tx} from {id}, which does not arrive"));
        }
        if !transfers.insert((*id, tx.clone())) {
            return Err(format!("transfer {tx} from {id} twice"));
        }
    }
    let mut records = BTreeSet::new();
    for (id, tx, _) in &wallet.tx_records {
        if id.player != player {
            return Err(format!("tx record {tx} of another player"));
        }
        if !records.insert((*id, tx.clone())) {
            return Err(format!("tx record {tx} of {id} twice"));
        }
    }
    Ok(())
}

/// Available + held of an account.
fn total(a: &crate::Account) -> i128 {
    i128::from(a.available) + i128::from(a.held)
}

impl std::fmt::Display for MoveId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "move from group {} at placement epoch {} (attempt {})",
            self.from_group, self.from_epoch, self.attempt
        )
    }
}

impl std::fmt::Display for MoveRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MoveRefusal::Requested => write!(f, "the move was called off before it arrived"),
            MoveRefusal::HasRows => write!(f, "the player already has accounts in the target"),
            MoveRefusal::LeavingHere => write!(f, "the player is leaving the target itself"),
            MoveRefusal::Stale { seen } => write!(f, "a later move was seen: {seen}"),
            MoveRefusal::OtherMove { under_way } => {
                write!(f, "another move is under way: {under_way}")
            }
            MoveRefusal::NotHere { group } => write!(f, "the player moved to group {group}"),
            MoveRefusal::AlreadyArrived => write!(f, "the move arrived already"),
            MoveRefusal::AlreadyRefused => write!(f, "the move was refused already"),
            MoveRefusal::NotLeaving => write!(f, "the player is not leaving with this move"),
            MoveRefusal::Malformed { what } => write!(f, "the wallet's rows are malformed: {what}"),
            MoveRefusal::NoTransfer => write!(f, "no such transfer is pending or recorded here"),
            MoveRefusal::NotFinal { code } => {
                write!(f, "a `{code}` refusal does not settle a transfer")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{Ledger, START_NS, bal, eur, hid, tx, usd};
    use crate::{Amount, Command, CreditKind, Currency, DebitKind, Outcome, Refusal, Request};

    const WINDOW_NS: u64 = 7 * 24 * 3_600 * 1_000_000_000;

    fn id(from_epoch: u64, from_group: u64) -> MoveId {
        MoveId {
            from_epoch,
            attempt: 0,
            from_group,
        }
    }

    fn player() -> PlayerId {
        eur(1).player
    }

    /// A ledger of another group, whose fresh tx ids never collide with
    /// those of wallets arriving from group 1's fixture.
    fn in_group(group: u64) -> Ledger {
        let mut l = Ledger::new();
        l.group = group;
        l.tx_seq = group * 1_000;
        l
    }

    fn bet(amount: u64) -> Command {
        Command::Debit {
            account: eur(1),
            amount: Amount(amount),
            kind: DebitKind::Bet,
        }
    }

    fn transit(l: &Ledger, currency: Currency) -> i128 {
        l.state.system_balance(currency, SystemAccount::Transit)
    }

    /// Leaves `from` and arrives in `to`; returns the wallet carried.
    fn move_wallet(from: &mut Ledger, to: &mut Ledger, id: MoveId) -> WalletRows {
        let leave = MoveCommand::Leave {
            player: player(),
            id,
            to_group: to.group,
        };
        let MoveOutcome::Left { wallet } = from.step(&leave) else {
            panic!("leave refused")
        };
        let arrive = MoveCommand::Arrive {
            player: player(),
            id,
            wallet: wallet.clone(),
        };
        assert_eq!(to.step(&arrive), MoveOutcome::Arrived);
        wallet
    }

    // Proves a wallet moves with its balances, open holds, tx records and
    // journal sequence; the source refuses `moving`, then `moved` with the
    // target and epoch; a retried tx applied before the move answers its
    // first outcome at the target; each group balances through transit.
    #[test]
    fn a_wallet_moves_with_its_money_holds_and_records() {
        let mut source = Ledger::funded(eur(1), 100);
        source
            .run(Command::OpenAccount { account: usd(1) })
            .unwrap();
        source
            .run(Command::Credit {
                account: usd(1),
                amount: Amount(50),
                kind: CreditKind::Win,
            })
            .unwrap();
        let hold = Command::Hold {
            account: eur(1),
            hold: hid("h"),
            amount: Amount(30),
            expires_at_ns: START_NS + 1_000_000,
        };
        source.run(hold).unwrap();
        let first_bet = source.request(bet(10));
        let first = source.entry(std::slice::from_ref(&first_bet)).remove(0);
        assert_eq!(first.as_ref().unwrap().balance, bal(60, 30));
        let seq_before = source.state.account(&eur(1)).unwrap().journal_seq;
        let mut target = in_group(2);

        let wallet = move_wallet(&mut source, &mut target, id(1, 1));
        assert_eq!(wallet.accounts.len(), 2);
        assert_eq!(wallet.holds.len(), 1);
        assert!(source.state.account(&eur(1)).is_none());
        assert_eq!(transit(&source, eur(1).currency), 90);
        assert_eq!(transit(&target, eur(1).currency), -90);
        assert_eq!(transit(&source, usd(1).currency), 50);
        let moving = source.run(bet(1)).unwrap_err();
        assert_eq!(moving, Refusal::Moving { player: player() });

        let at_target = target.state.account(&eur(1)).unwrap();
        assert_eq!(at_target.balance(), bal(60, 30));
        assert_eq!(at_target.journal_seq, seq_before + 2, "out at +1, in at +2");
        let retried = target.entry(std::slice::from_ref(&first_bet)).remove(0);
        assert_eq!(retried, first, "the first outcome, not a second bet");
        let capture = Command::Capture {
            account: eur(1),
            hold: hid("h"),
            amount: None,
            kind: DebitKind::Bet,
        };
        assert_eq!(target.run(capture).unwrap().balance, bal(60, 0));

        let finish = MoveCommand::Finish {
            player: player(),
            id: id(1, 1),
            epoch: 2,
        };
        assert_eq!(source.step(&finish), MoveOutcome::Finished);
        assert_eq!(source.step(&finish), MoveOutcome::Finished, "idempotent");
        let moved = source.entry(std::slice::from_ref(&first_bet)).remove(0);
        let expected = Refusal::Moved {
            player: player(),
            group: 2,
            epoch: 2,
        };
        assert_eq!(moved.unwrap_err(), expected);
        // A transfer naming the moved player as payee is refused too.
        source
            .run(Command::OpenAccount { account: eur(5) })
            .unwrap();
        let transfer = Command::Transfer {
            from: eur(5),
            to: eur(1),
            amount: Amount(1),
        };
        assert_eq!(source.run(transfer).unwrap_err().code(), "moved");
    }

    // Proves arrival is idempotent by move id, refusal is possible only
    // before it, and a refused move returns the wallet to the source intact.
    #[test]
    fn arrival_is_idempotent_and_refusal_is_the_only_abort() {
        let mut source = Ledger::funded(eur(1), 100);
        let mut target = in_group(2);
        let wallet = move_wallet(&mut source, &mut target, id(1, 1));
        let arrive = MoveCommand::Arrive {
            player: player(),
            id: id(1, 1),
            wallet,
        };
        assert_eq!(target.step(&arrive), MoveOutcome::Arrived);
        assert_eq!(
            target.state.account(&eur(1)).unwrap().balance(),
            bal(100, 0)
        );
        let refuse = MoveCommand::Refuse {
            player: player(),
            id: id(1, 1),
        };
        let too_late = MoveOutcome::Rejected {
            why: MoveRefusal::AlreadyArrived,
        };
        assert_eq!(target.step(&refuse), too_late);

        let finish = MoveCommand::Finish {
            player: player(),
            id: id(1, 1),
            epoch: 2,
        };
        assert_eq!(source.step(&finish), MoveOutcome::Finished);
        // Back from group 2 to group 1, refused by group 1 this time.
        let back = id(2, 2);
        let leave = MoveCommand::Leave {
            player: player(),
            id: back,
            to_group: 1,
        };
        let MoveOutcome::Left { wallet } = target.step(&leave) else {
            panic!("leave refused")
        };
        assert_eq!(
            target.step(&leave),
            MoveOutcome::Left {
                wallet: wallet.clone()
            }
        );
        let refuse = MoveCommand::Refuse {
            player: player(),
            id: back,
        };
        let refused = MoveOutcome::Refused {
            why: MoveRefusal::Requested,
        };
        assert_eq!(source.step(&refuse), refused);
        let arrive = MoveCommand::Arrive {
            player: player(),
            id: back,
            wallet,
        };
        let never = MoveOutcome::Refused {
            why: MoveRefusal::AlreadyRefused,
        };
        assert_eq!(source.step(&arrive), never);
        assert!(source.state.account(&eur(1)).is_none());
        let ret = MoveCommand::Return {
            player: player(),
            id: back,
        };
        assert_eq!(target.step(&ret), MoveOutcome::Returned);
        assert_eq!(target.step(&ret), MoveOutcome::Returned, "idempotent");
        assert_eq!(
            target.state.account(&eur(1)).unwrap().balance(),
            bal(100, 0)
        );
        assert_eq!(
            transit(&target, eur(1).currency),
            -100,
            "as after the arrival"
        );
        assert_eq!(target.run(bet(5)).unwrap().balance, bal(95, 0));
        let stale = MoveOutcome::Rejected {
            why: MoveRefusal::Stale { seen: back },
        };
        assert_eq!(
            target.step(&leave),
            stale,
            "a returned move never leaves again"
        );
    }

    // Proves arriving rows that break the invariants (another player's
    // account, an account twice, held money without a hold, a journal
    // sequence with no room for the arrival's line) are refused
    // and nothing is booked, where booking them would create money or
    // panic every replica.
    #[test]
    fn a_malformed_wallet_is_refused_not_booked() {
        let mut source = Ledger::funded(eur(1), 100);
        let mut target = in_group(2);
        let leave = MoveCommand::Leave {
            player: player(),
            id: id(1, 1),
            to_group: 2,
        };
        let MoveOutcome::Left { wallet } = source.step(&leave) else {
            panic!("leave refused")
        };
        let twice = WalletRows {
            accounts: [wallet.accounts.clone(), wallet.accounts.clone()].concat(),
            ..wallet.clone()
        };
        let mut stranger = wallet.clone();
        stranger.accounts[0].0 = eur(2);
        let mut unheld = wallet.clone();
        unheld.accounts[0].1.held = 5;
        // Found by the move_step fuzz target: arrival adds a journal line
        // after the last sequence, which overflowed (a panic on every
        // replica in a build with overflow checks, seq 0 without).
        let mut exhausted = wallet.clone();
        exhausted.accounts[0].1.journal_seq = u64::MAX;
        for (n, bad) in [twice, stranger, unheld, exhausted].into_iter().enumerate() {
            let arrive = MoveCommand::Arrive {
                player: player(),
                id: id(1 + n as u64, 1),
                wallet: bad,
            };
            let outcome = target.step(&arrive);
            assert!(
                matches!(
                    outcome,
                    MoveOutcome::Refused {
                        why: MoveRefusal::Malformed { .. }
                    }
                ),
                "{outcome:?}"
            );
            assert!(target.state.account(&eur(1)).is_none());
            assert!(target.state.account(&eur(2)).is_none());
        }
    }

    // Proves an arrival settles what came due in flight as the target's own
    // maintenance would have: a hold past its expiry expires at once (its
    // money available again), records and closed holds older than the
    // window are dropped, younger ones kept.
    #[test]
    fn arrival_settles_what_came_due_in_flight() {
        let mut source = Ledger::funded(eur(1), 100);
        let hold = |h: &str, expires_at_ns| Command::Hold {
            account: eur(1),
            hold: hid(h),
            amount: Amount(10),
            expires_at_ns,
        };
        source.run(hold("soon", START_NS + 100)).unwrap();
        source.run(hold("late", START_NS + 2 * WINDOW_NS)).unwrap();
        source.run(hold("gone", START_NS + 2 * WINDOW_NS)).unwrap();
        source
            .run(Command::Release {
                account: eur(1),
                hold: hid("gone"),
            })
            .unwrap();
        let mut target = in_group(2);
        target.now_ns = START_NS + WINDOW_NS + 1_000;
        move_wallet(&mut source, &mut target, id(1, 1));
        let soon = target.state.hold(&eur(1), &hid("soon")).unwrap();
        assert_eq!(soon.status, HoldStatus::Expired);
        assert!(
            target
                .state
                .hold(&eur(1), &hid("late"))
                .unwrap()
                .is_active()
        );
        assert!(
            target.state.hold(&eur(1), &hid("gone")).is_none(),
            "closed a window ago"
        );
        assert_eq!(
            target.state.account(&eur(1)).unwrap().balance(),
            bal(90, 10)
        );
        assert!(
            target.state.tx_record(&eur(1), &tx("t1")).is_none(),
            "created a window ago"
        );
    }

    // Proves a move back arrives over the source's unfinished Leaving
    // marker of the move before (its leader crashed before Finish): the
    // money is all there, transit cancels out, and the late Finish is
    // rejected without changing anything.
    #[test]
    fn a_move_back_arrives_before_the_first_move_finished() {
        let mut source = Ledger::funded(eur(1), 100);
        let mut target = in_group(2);
        target.now_ns = START_NS;
        let first = id(1, 1);
        move_wallet(&mut source, &mut target, first);
        // (The directory repointed to group 2 at epoch 2; group 1's Finish
        // is late: its leader crashed.) The player moves back at epoch 2.
        let back = id(2, 2);
        move_wallet(&mut target, &mut source, back);
        assert_eq!(source.state.account(&eur(1)).unwrap().available, 100);
        assert_eq!(
            source.state.player_move(player()),
            Some(PlayerMove::Arrived { id: back })
        );
        assert_eq!(transit(&source, eur(1).currency), 0);
        assert_eq!(transit(&target, eur(1).currency), 0);
        // The late Finish of the first move changes nothing now.
        let late = MoveCommand::Finish {
            player: player(),
            id: first,
            epoch: 2,
        };
        assert!(matches!(source.step(&late), MoveOutcome::Rejected { .. }));
        assert!(source.run(bet(1)).is_ok());
    }

    // Proves a wallet moved back and forth 20 times with bets between the
    // moves keeps exactly its money; both groups balance after every entry
    // and their transit accounts cancel out once nothing is in flight.
    #[test]
    fn twenty_moves_back_and_forth_keep_every_unit() {
        let mut groups = [Ledger::funded(eur(1), 1_000), in_group(2)];
        groups[1].now_ns = START_NS;
        let mut expected = 1_000;
        for n in 0..20u64 {
            let [a, b] = &mut groups;
            let (src, dst) = if n % 2 == 0 { (a, b) } else { (b, a) };
            let move_id = id(n + 1, src.group);
            move_wallet(src, dst, move_id);
            let finish = MoveCommand::Finish {
                player: player(),
                id: move_id,
                epoch: n + 2,
            };
            assert_eq!(src.step(&finish), MoveOutcome::Finished);
            let stake = n + 1;
            let request = Request {
                tx: tx(&format!("bet-{n}")),
                created_at_ns: START_NS,
                command: bet(stake),
            };
            assert!(dst.entry(&[request]).remove(0).is_ok());
            expected -= stake;
        }
        let holder = &groups[0];
        assert_eq!(holder.state.account(&eur(1)).unwrap().available, expected);
        assert!(groups[1].state.account(&eur(1)).is_none());
        let currency = eur(1).currency;
        assert_eq!(
            transit(&groups[0], currency) + transit(&groups[1], currency),
            0
        );
        let first: Outcome = groups[0]
            .entry(&[Request {
                tx: tx("bet-0"),
                created_at_ns: START_NS,
                command: bet(1),
            }])
            .remove(0);
        assert_eq!(
            first.unwrap().balance.available,
            999,
            "bet-0's first outcome"
        );
    }
}
