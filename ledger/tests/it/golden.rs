//! Golden bytes of every ledger type that is stored (state rows, journal
//! lines, tx records, and the requests and move steps inside Raft log
//! entries), encoded with postcard as storage and raft encode them, every
//! enum variant included; and of the command fingerprints kept in tx
//! records. See `golden_file.rs`.

use std::fmt::Debug;

use geowallet_ledger::{
    Account, AccountId, Amount, Balance, Command, CreditKind, Currency, DebitKind, Hold, HoldId,
    HoldStatus, JournalEntry, JournalKind, LogIndex, Meta, MoveCommand, MoveId, MoveOutcome,
    MoveRefusal, PendingTransfer, PlayerId, PlayerMove, Receipt, Refusal, Request, TxId, TxRecord,
    WalletRows, fingerprint,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::golden_file::GoldenFile;

/// A fixed time, late enough that every varint of it has its full length.
const T0: u64 = 1_800_000_000_000_000_000;

fn account(player: u64, currency: &str) -> AccountId {
    AccountId {
        player: PlayerId(player),
        currency: Currency::parse(currency).unwrap(),
    }
}

fn eur(player: u64) -> AccountId {
    account(player, "EUR")
}

fn tx(id: &str) -> TxId {
    TxId::new(id).unwrap()
}

fn hold_id(id: &str) -> HoldId {
    HoldId::new(id).unwrap()
}

fn check<T: Serialize + DeserializeOwned + PartialEq + Debug>(
    golden: &mut GoldenFile,
    case: &str,
    value: &T,
) {
    golden.check_value(
        case,
        value,
        |v| postcard::to_stdvec(v).expect("encodes"),
        |b| postcard::from_bytes(b).map_err(|e| e.to_string()),
    );
}

fn receipt() -> Receipt {
    Receipt {
        log_index: LogIndex(300),
        balance: Balance {
            available: 1_000,
            held: 250,
        },
        counterpart: Some(Balance {
            available: 70_000,
            held: 0,
        }),
    }
}

fn account_row() -> Account {
    Account {
        available: 1_000,
        held: 250,
        debited_total: u128::from(u64::MAX) + 1,
        credited_total: 12_345,
        frozen: true,
        journal_seq: 7,
    }
}

fn hold(status: HoldStatus) -> Hold {
    let active = status == HoldStatus::Active;
    Hold {
        amount: 500,
        remaining: if active { 200 } else { 0 },
        expires_at_ns: T0 + 60_000_000_000,
        status,
        closed_at_ns: if active { 0 } else { T0 + 1 },
    }
}

fn pending_transfer() -> PendingTransfer {
    PendingTransfer {
        to: account(9, "USDT"),
        amount: 25,
        created_at_ns: T0,
        fingerprint: 0x0123_4567_89ab_cdef,
        debited: receipt(),
    }
}

fn tx_record(outcome: Result<Receipt, Refusal>) -> TxRecord {
    TxRecord {
        created_at_ns: T0,
        fingerprint: 0xfedc_ba98_7654_3210,
        outcome,
    }
}

fn wallet() -> WalletRows {
    WalletRows {
        accounts: vec![(eur(1), account_row())],
        holds: vec![(eur(1), hold_id("h-1"), hold(HoldStatus::Active))],
        tx_records: vec![(eur(1), tx("bet-1"), tx_record(Ok(receipt())))],
        transfers: vec![(eur(1), tx("p2p-1"), pending_transfer())],
    }
}

fn move_id() -> MoveId {
    MoveId {
        from_epoch: 3,
        attempt: 1,
        from_group: 2,
    }
}

/// Every refusal, each with its wire code as its case name.
fn refusals() -> Vec<Refusal> {
    let (a, h) = (eur(1), hold_id("h-1"));
    vec![
        Refusal::UnknownAccount { account: a },
        Refusal::AccountExists { account: a },
        Refusal::CurrencyMismatch {
            from: a.currency,
            to: Currency::parse("JPY").unwrap(),
        },
        Refusal::SameAccount { account: a },
        Refusal::ZeroAmount,
        Refusal::Overflow { account: a },
        Refusal::InsufficientFunds {
            account: a,
            available: 10,
            requested: 11,
        },
        Refusal::Frozen { account: a },
        Refusal::UnknownHold {
            account: a,
            hold: h.clone(),
        },
        Refusal::HoldExists {
            account: a,
            hold: h.clone(),
        },
        Refusal::HoldExpired {
            account: a,
            hold: h.clone(),
            expired_at_ns: T0,
        },
        Refusal::HoldClosed {
            account: a,
            hold: h.clone(),
        },
        Refusal::OverCapture {
            account: a,
            hold: h,
            held: 5,
            requested: 6,
        },
        Refusal::TxIdExpired {
            tx: tx("bet-1"),
            created_at_ns: T0,
            oldest_allowed_ns: T0 + 1,
        },
        Refusal::TxIdFromFuture {
            tx: tx("bet-1"),
            created_at_ns: T0 + 1,
            leader_time_ns: T0,
        },
        Refusal::TxIdConflict { tx: tx("bet-1") },
        Refusal::Moving {
            player: PlayerId(1),
        },
        Refusal::Moved {
            player: PlayerId(1),
            group: 4,
            epoch: 2,
        },
        Refusal::TransferPending { tx: tx("p2p-1") },
    ]
}

/// One command of every kind, named as `Command::name` names it.
fn commands() -> Vec<Command> {
    let (a, h) = (eur(1), hold_id("h-1"));
    vec![
        Command::OpenAccount { account: a },
        Command::Credit {
            account: a,
            amount: Amount(1_000),
            kind: CreditKind::Deposit,
        },
        Command::Debit {
            account: a,
            amount: Amount(10),
            kind: DebitKind::Bet,
        },
        Command::Transfer {
            from: a,
            to: eur(2),
            amount: Amount(25),
        },
        Command::Hold {
            account: a,
            hold: h.clone(),
            amount: Amount(500),
            expires_at_ns: T0 + 60_000_000_000,
        },
        Command::Capture {
            account: a,
            hold: h.clone(),
            amount: Some(Amount(300)),
            kind: DebitKind::Fee,
        },
        Command::Release {
            account: a,
            hold: h,
        },
        Command::Freeze { account: a },
        Command::Unfreeze { account: a },
    ]
}

fn journal_kinds() -> Vec<(&'static str, JournalKind)> {
    vec![
        ("open", JournalKind::Open),
        ("credit.deposit", JournalKind::Credit(CreditKind::Deposit)),
        ("credit.win", JournalKind::Credit(CreditKind::Win)),
        ("credit.bonus", JournalKind::Credit(CreditKind::Bonus)),
        ("credit.refund", JournalKind::Credit(CreditKind::Refund)),
        ("debit.bet", JournalKind::Debit(DebitKind::Bet)),
        (
            "debit.withdrawal",
            JournalKind::Debit(DebitKind::Withdrawal),
        ),
        ("debit.fee", JournalKind::Debit(DebitKind::Fee)),
        ("transfer_out", JournalKind::TransferOut),
        ("transfer_in", JournalKind::TransferIn),
        ("hold", JournalKind::Hold),
        ("capture.bet", JournalKind::Capture(DebitKind::Bet)),
        ("release", JournalKind::Release),
        ("expire", JournalKind::Expire),
        ("freeze", JournalKind::Freeze),
        ("unfreeze", JournalKind::Unfreeze),
        ("move_out", JournalKind::MoveOut),
        ("move_in", JournalKind::MoveIn),
        ("move_back", JournalKind::MoveBack),
        ("transfer_back", JournalKind::TransferBack),
    ]
}

fn journal_entry(tx: Option<TxId>, kind: JournalKind) -> JournalEntry {
    JournalEntry {
        account: eur(1),
        seq: 42,
        group: 3,
        log_index: LogIndex(300),
        position: 2,
        tx,
        kind,
        amount: 250,
        balance: Balance {
            available: 1_000,
            held: 250,
        },
    }
}

fn player_moves() -> Vec<(&'static str, PlayerMove)> {
    let id = move_id();
    vec![
        (
            "leaving",
            PlayerMove::Leaving {
                id,
                to_group: 4,
                wallet: wallet(),
            },
        ),
        (
            "moved",
            PlayerMove::Moved {
                id,
                group: 4,
                epoch: 2,
            },
        ),
        ("returned", PlayerMove::Returned { id }),
        ("arrived", PlayerMove::Arrived { id }),
        ("refused", PlayerMove::Refused { id }),
    ]
}

fn move_commands() -> Vec<(&'static str, MoveCommand)> {
    let (player, id) = (PlayerId(1), move_id());
    let transfer = commands().swap_remove(3);
    vec![
        (
            "leave",
            MoveCommand::Leave {
                player,
                id,
                to_group: 4,
            },
        ),
        (
            "arrive",
            MoveCommand::Arrive {
                player,
                id,
                wallet: wallet(),
            },
        ),
        ("refuse", MoveCommand::Refuse { player, id }),
        (
            "finish",
            MoveCommand::Finish {
                player,
                id,
                epoch: 2,
            },
        ),
        ("return", MoveCommand::Return { player, id }),
        (
            "transfer_begin",
            MoveCommand::TransferBegin {
                request: Request {
                    tx: tx("p2p-1"),
                    created_at_ns: T0,
                    command: transfer,
                },
            },
        ),
        (
            "transfer_credit",
            MoveCommand::TransferCredit {
                from: eur(1),
                to: eur(2),
                amount: 25,
                tx: tx("p2p-1"),
                created_at_ns: T0,
            },
        ),
        (
            "transfer_settle",
            MoveCommand::TransferSettle {
                from: eur(1),
                tx: tx("p2p-1"),
                credit: Err(Refusal::Frozen { account: eur(2) }),
            },
        ),
    ]
}

fn move_refusals() -> Vec<(&'static str, MoveRefusal)> {
    vec![
        ("requested", MoveRefusal::Requested),
        ("has_rows", MoveRefusal::HasRows),
        ("leaving_here", MoveRefusal::LeavingHere),
        ("stale", MoveRefusal::Stale { seen: move_id() }),
        (
            "other_move",
            MoveRefusal::OtherMove {
                under_way: move_id(),
            },
        ),
        ("not_here", MoveRefusal::NotHere { group: 4 }),
        ("already_arrived", MoveRefusal::AlreadyArrived),
        ("already_refused", MoveRefusal::AlreadyRefused),
        ("not_leaving", MoveRefusal::NotLeaving),
        (
            "malformed",
            MoveRefusal::Malformed {
                what: "a row twice".into(),
            },
        ),
        ("no_transfer", MoveRefusal::NoTransfer),
        (
            "not_final",
            MoveRefusal::NotFinal {
                code: "moving".into(),
            },
        ),
    ]
}

fn move_outcomes() -> Vec<(&'static str, MoveOutcome)> {
    vec![
        ("left", MoveOutcome::Left { wallet: wallet() }),
        ("arrived", MoveOutcome::Arrived),
        (
            "refused",
            MoveOutcome::Refused {
                why: MoveRefusal::HasRows,
            },
        ),
        ("finished", MoveOutcome::Finished),
        ("returned", MoveOutcome::Returned),
        (
            "rejected",
            MoveOutcome::Rejected {
                why: MoveRefusal::NotLeaving,
            },
        ),
        (
            "transfer_pending",
            MoveOutcome::TransferPending {
                pending: pending_transfer(),
            },
        ),
        (
            "transfer_done",
            MoveOutcome::TransferDone {
                outcome: Ok(receipt()),
            },
        ),
    ]
}

/// The rows storage keeps: accounts, holds, records, journal lines, pending
/// transfers, the ledger meta and the players' move markers.
fn check_rows(golden: &mut GoldenFile) {
    check(golden, "account", &account_row());
    let statuses = [
        ("active", HoldStatus::Active),
        ("captured", HoldStatus::Captured),
        ("released", HoldStatus::Released),
        ("expired", HoldStatus::Expired),
    ];
    for (name, status) in statuses {
        check(golden, &format!("hold.{name}"), &hold(status));
    }
    check(golden, "tx_record.ok", &tx_record(Ok(receipt())));
    let mut single = receipt();
    single.counterpart = None;
    check(golden, "tx_record.ok_single", &tx_record(Ok(single)));
    let refused = tx_record(Err(Refusal::ZeroAmount));
    check(golden, "tx_record.refused", &refused);
    for refusal in refusals() {
        check(golden, &format!("refusal.{}", refusal.code()), &refusal);
    }
    for (name, kind) in journal_kinds() {
        let case = format!("journal_entry.{name}");
        // A hold expiry is the one line no request caused.
        let cause = (kind != JournalKind::Expire).then(|| tx("bet-1"));
        check(golden, &case, &journal_entry(cause, kind));
    }
    check(golden, "pending_transfer", &pending_transfer());
    let meta = Meta {
        leader_time_ns: T0,
        swept_ns: [T0 - 3, T0 - 2, 0],
        next_due_ns: [T0 + 1, u64::MAX, 0],
    };
    check(golden, "meta", &meta);
    for (name, marker) in player_moves() {
        check(golden, &format!("player_move.{name}"), &marker);
    }
}

/// What log entries carry: requests and move steps; and what move steps
/// answer (sent between nodes, and kept as a transfer's outcome).
fn check_log(golden: &mut GoldenFile) {
    for command in commands() {
        let name = command.name();
        let fp = fingerprint(&command).to_le_bytes();
        golden.check(&format!("fingerprint.{name}"), &[&fp]);
        let request = Request {
            tx: tx(&format!("{name}-1")),
            created_at_ns: T0,
            command,
        };
        check(golden, &format!("request.{name}"), &request);
    }
    for (name, step) in move_commands() {
        check(golden, &format!("move_command.{name}"), &step);
    }
    for (name, outcome) in move_outcomes() {
        check(golden, &format!("move_outcome.{name}"), &outcome);
    }
    for (name, why) in move_refusals() {
        check(golden, &format!("move_refusal.{name}"), &why);
    }
}

// Every stored ledger type still encodes to the committed bytes, and the
// committed bytes still decode to the same value.
#[test]
fn ledger_types_keep_their_encoding() {
    let mut golden = crate::golden_file::golden("ledger.txt");
    check_rows(&mut golden);
    check_log(&mut golden);
    golden.finish();
}
