//! Storage integration tests on real RocksDB: ledger state persistence and
//! reload, journal paging, snapshot build / transfer / install.

use geowallet_ledger::{
    AccountId, Amount, Command, CreditKind, Currency, DebitKind, EntryContext, HoldId,
    LedgerConfig, LedgerRows, LogIndex, MoveCommand, MoveId, MoveOutcome, PlayerId, PlayerMove,
    Request, State, SystemAccount, TxId,
};
use geowallet_storage::{
    Cf, CrashFaults, Db, Engine, GroupId, JournalFrom, MemEngine, SnapshotChunkReader,
    SnapshotChunkWriter, StateStore, SyncMode, Totals,
};

mod golden;
mod golden_file;
mod mem_faults;
mod wal_damage;

const T0: u64 = 1_800_000_000_000_000_000;

fn eur(p: u64) -> AccountId {
    AccountId {
        player: PlayerId(p),
        currency: Currency::parse("EUR").unwrap(),
    }
}

fn req(tx: &str, command: Command) -> Request {
    Request {
        tx: TxId::new(tx).unwrap(),
        created_at_ns: T0,
        command,
    }
}

/// Applies a small workload through the store's rows (the production path:
/// prefetch, apply, persist) and to the in-memory `state` alike; both must
/// give the same outcomes.
fn drive<E: Engine>(state: &mut State, store: &StateStore<E>, entries: u64) {
    for i in 0..entries {
        let p = 1 + i % 5;
        let mut requests = vec![req(
            &format!("open-{p}"),
            Command::OpenAccount { account: eur(p) },
        )];
        requests.push(req(
            &format!("dep-{i}"),
            Command::Credit {
                account: eur(p),
                amount: Amount(1_000),
                kind: CreditKind::Deposit,
            },
        ));
        requests.push(req(
            &format!("bet-{i}"),
            Command::Debit {
                account: eur(p),
                amount: Amount(10),
                kind: DebitKind::Bet,
            },
        ));
        requests.push(req(
            &format!("hold-{i}"),
            Command::Hold {
                account: eur(p),
                hold: HoldId::new(format!("h{i}")).unwrap(),
                amount: Amount(5),
                expires_at_ns: T0 + 1_000_000_000_000,
            },
        ));
        // Every fourth entry expires the holds due by then.
        let leader_time_ns = T0 + i + if i % 4 == 3 { 2_000_000_000_000 } else { 0 };
        let ctx = EntryContext {
            group: store.group().0,
            log_index: LogIndex(i + 1),
            leader_time_ns,
        };
        let expected = state.apply(ctx, &requests);
        let rows = store.rows();
        rows.prefetch(&requests);
        let (outcomes, changes) = geowallet_ledger::apply(&rows, state.config(), ctx, &requests);
        rows.finish().unwrap();
        assert_eq!(outcomes, expected, "entry {}", i + 1);
        store
            .persist(&changes, format!("applied-{}", i + 1).as_bytes())
            .unwrap();
    }
}

/// The store holds exactly the rows of the in-memory reference.
fn same_state<E: Engine>(expected: &State, store: &StateStore<E>) {
    let rows = store.dump().unwrap();
    rows.check_invariants();
    let e = &expected.rows;
    assert_eq!(rows.accounts, e.accounts);
    assert_eq!(rows.holds, e.holds);
    assert_eq!(rows.tx_records, e.tx_records);
    assert_eq!(rows.system, e.system);
    assert_eq!(rows.players_total, e.players_total);
    assert_eq!(rows.time_index, e.time_index);
    assert_eq!(rows.players, e.players);
    assert_eq!(rows.meta, e.meta);
}

// Apply over RocksDB rows matches the in-memory ledger entry by entry, and
// what it wrote is there, identical, after reopening RocksDB.
#[test]
fn persisted_state_reloads_identically() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = State::new(LedgerConfig::default());
    {
        let db = Db::open(dir.path()).unwrap();
        drive(&mut state, &db.state_store(GroupId(1)), 40);
    }
    assert!(
        state.rows.holds.values().any(|h| !h.is_active()),
        "some holds expired"
    );
    let db = Db::open(dir.path()).unwrap();
    let store = db.state_store(GroupId(1));
    assert_eq!(store.open_applied().unwrap().unwrap(), b"applied-40");
    same_state(&state, &store);
    // Another group on the same instance is untouched.
    let other = db.state_store(GroupId(2));
    assert!(other.dump().unwrap().accounts.is_empty());
    assert!(other.open_applied().unwrap().is_none());
}

// Proves a player's rows read from RocksDB as one range (accounts, holds,
// tx records) equal the in-memory ledger's, with no other player's rows
// mixed in, for the highest player id too; and that a transit position
// (money of wallets moving between groups) persists like the others.
#[test]
fn wallet_rows_and_transit_round_trip_through_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = State::new(LedgerConfig::default());
    let db = Db::open(dir.path()).unwrap();
    let store = db.state_store(GroupId(1));
    drive(&mut state, &store, 12);
    // drive persisted these through the store already.
    state.take_changes();
    let last = AccountId {
        player: PlayerId(u64::MAX),
        currency: eur(1).currency,
    };
    let requests = [
        req("open-last", Command::OpenAccount { account: last }),
        req(
            "dep-last",
            Command::Credit {
                account: last,
                amount: Amount(7),
                kind: CreditKind::Deposit,
            },
        ),
    ];
    let ctx = EntryContext {
        group: 1,
        log_index: LogIndex(13),
        leader_time_ns: T0 + 13,
    };
    state.apply(ctx, &requests);
    let mut changes = state.take_changes();
    // As a move-in would leave it: the transit account owes what arrived.
    changes
        .system
        .insert((eur(1).currency, SystemAccount::Transit), -5);
    store.persist(&changes, b"applied-13").unwrap();
    let rows = store.rows();
    for p in [1, 2, 5, 6, u64::MAX] {
        let player = PlayerId(p);
        assert_eq!(
            rows.wallet_rows(player),
            state.rows.wallet_rows(player),
            "player {p}"
        );
    }
    assert!(!rows.wallet_rows(PlayerId(1)).holds.is_empty());
    assert!(rows.wallet_rows(PlayerId(6)).is_empty());
    assert_eq!(rows.wallet_rows(PlayerId(u64::MAX)).accounts.len(), 1);
    assert_eq!(
        rows.system_balance(eur(1).currency, SystemAccount::Transit),
        -5
    );
    rows.finish().unwrap();
    let dumped = store.dump().unwrap();
    assert_eq!(
        dumped
            .system
            .get(&(eur(1).currency, SystemAccount::Transit)),
        Some(&-5)
    );
}

/// Applies one move step to the in-memory ledger and, through RocksDB
/// rows, to the store: the outcomes must match.
fn step<E: Engine>(
    state: &mut State,
    store: &StateStore<E>,
    index: u64,
    command: &MoveCommand,
) -> MoveOutcome {
    let ctx = EntryContext {
        group: store.group().0,
        log_index: LogIndex(index),
        leader_time_ns: T0 + index,
    };
    let expected = state.apply_move(ctx, command);
    state.take_changes();
    let rows = store.rows();
    let (outcome, changes) = geowallet_ledger::apply_move(&rows, state.config(), ctx, command);
    rows.finish().unwrap();
    assert_eq!(outcome, expected, "entry {index}");
    store
        .persist(&changes, format!("applied-{index}").as_bytes())
        .unwrap();
    outcome
}

// Proves a wallet's move steps apply over RocksDB rows exactly as in
// memory: the source's rows are deleted (accounts included) and its marker
// stored, the target's rows written with the transit money, the tombstone
// refuses the player's commands `moved`, and both stores dump identically
// to the in-memory ledgers.
#[test]
fn a_wallet_move_applies_over_rocksdb_as_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let (source, target) = (db.state_store(GroupId(1)), db.state_store(GroupId(2)));
    let mut here = State::new(LedgerConfig::default());
    let mut there = State::new(LedgerConfig::default());
    drive(&mut here, &source, 8);
    here.take_changes();
    let player = PlayerId(1);
    let id = MoveId {
        from_epoch: 1,
        attempt: 0,
        from_group: 1,
    };
    let leave = MoveCommand::Leave {
        player,
        id,
        to_group: 2,
    };
    let MoveOutcome::Left { wallet } = step(&mut here, &source, 9, &leave) else {
        panic!("leave refused")
    };
    assert!(!wallet.holds.is_empty() && !wallet.tx_records.is_empty());
    assert!(source.rows().wallet_rows(player).is_empty());
    // The leader driving moves finds this one, and a read of the wallet
    // sees why its account is gone.
    let leaving = source.moves_leaving().unwrap();
    assert_eq!(leaving.len(), 1);
    assert_eq!(leaving[0].0, player);
    assert!(matches!(
        leaving[0].1,
        PlayerMove::Leaving { to_group: 2, .. }
    ));
    let read = source.read_at(&[eur(1), eur(2)], Totals::Skip).unwrap();
    assert!(read.accounts[0].is_none() && read.accounts[1].is_some());
    assert!(matches!(
        read.moves.get(&player),
        Some(PlayerMove::Leaving { .. })
    ));
    assert!(!read.moves.contains_key(&PlayerId(2)));
    let arrive = MoveCommand::Arrive { player, id, wallet };
    assert_eq!(step(&mut there, &target, 1, &arrive), MoveOutcome::Arrived);
    let finish = MoveCommand::Finish {
        player,
        id,
        epoch: 2,
    };
    assert_eq!(step(&mut here, &source, 10, &finish), MoveOutcome::Finished);
    // Reopened: what the steps wrote is on disk.
    drop((source, target, db));
    let db = Db::open(dir.path()).unwrap();
    let (source, target) = (db.state_store(GroupId(1)), db.state_store(GroupId(2)));
    same_state(&here, &source);
    same_state(&there, &target);
    let rows = source.rows();
    let bet = req(
        "dep-0",
        Command::Debit {
            account: eur(1),
            amount: Amount(1),
            kind: DebitKind::Bet,
        },
    );
    rows.prefetch(std::slice::from_ref(&bet));
    let ctx = EntryContext {
        group: 1,
        log_index: LogIndex(11),
        leader_time_ns: T0 + 11,
    };
    let (outcomes, _) = geowallet_ledger::apply(&rows, here.config(), ctx, &[bet]);
    rows.finish().unwrap();
    assert_eq!(outcomes[0].as_ref().unwrap_err().code(), "moved");
    assert!(source.moves_leaving().unwrap().is_empty());
    assert_eq!(
        source.player_move(player).unwrap(),
        Some(PlayerMove::Moved {
            id,
            group: 2,
            epoch: 2
        })
    );
    assert_eq!(
        target.player_move(player).unwrap(),
        Some(PlayerMove::Arrived { id })
    );
    let money = |store: &StateStore<_>| {
        store
            .rows()
            .system_balance(eur(1).currency, SystemAccount::Transit)
    };
    assert!(money(&source) > 0);
    assert_eq!(money(&source) + money(&target), 0);
}

// Proves a transfer between groups applies over RocksDB rows as in
// memory: the pending row is stored, listed for the coordinator, read back
// after a reopen, carried by the payer's wallet rows, and deleted by the
// settle, which leaves the transfer's tx record; the derived credit record
// is stored in the payee's wallet.
#[test]
fn a_transfer_between_groups_applies_over_rocksdb_as_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let (payer, payee) = (db.state_store(GroupId(1)), db.state_store(GroupId(2)));
    let mut here = State::new(LedgerConfig::default());
    let mut there = State::new(LedgerConfig::default());
    drive(&mut here, &payer, 5);
    drive(&mut there, &payee, 5);
    here.take_changes();
    there.take_changes();
    let request = req(
        "p2p-1",
        Command::Transfer {
            from: eur(1),
            to: eur(2),
            amount: Amount(25),
        },
    );
    let begin = MoveCommand::TransferBegin {
        request: request.clone(),
    };
    let MoveOutcome::TransferPending { pending } = step(&mut here, &payer, 6, &begin) else {
        panic!("begin refused")
    };
    drop((payer, payee, db));
    let db = Db::open(dir.path()).unwrap();
    let (payer, payee) = (db.state_store(GroupId(1)), db.state_store(GroupId(2)));
    let listed = payer.transfers_pending().unwrap();
    assert_eq!(listed, vec![(eur(1), request.tx.clone(), pending.clone())]);
    assert_eq!(payer.rows().wallet_rows(PlayerId(1)).transfers.len(), 1);
    let credit = MoveCommand::TransferCredit {
        from: eur(1),
        to: eur(2),
        amount: 25,
        tx: request.tx.clone(),
        created_at_ns: request.created_at_ns,
    };
    let MoveOutcome::TransferDone { outcome } = step(&mut there, &payee, 6, &credit) else {
        panic!("credit rejected")
    };
    assert!(outcome.is_ok());
    let key = TxId::transfer_credit(eur(1), &request.tx);
    assert!(payee.rows().tx_record(&eur(2), &key).is_some());
    let settle = MoveCommand::TransferSettle {
        from: eur(1),
        tx: request.tx.clone(),
        credit: outcome,
    };
    assert!(matches!(
        step(&mut here, &payer, 7, &settle),
        MoveOutcome::TransferDone { outcome: Ok(_) }
    ));
    assert!(payer.transfers_pending().unwrap().is_empty());
    assert!(payer.rows().tx_record(&eur(1), &request.tx).is_some());
    same_state(&here, &payer);
    same_state(&there, &payee);
    let transit = |store: &StateStore<_>| {
        store
            .rows()
            .system_balance(eur(1).currency, SystemAccount::Transit)
    };
    assert_eq!(transit(&payer), 25);
    assert_eq!(transit(&payer) + transit(&payee), 0);
    // Audits report the transit part of the system accounts.
    let audited = |store: &StateStore<_>| {
        let read = store.read_at(&[], Totals::Read).unwrap();
        read.totals[&eur(1).currency].transit
    };
    assert_eq!((audited(&payer), audited(&payee)), (25, -25));
}

// Journal pages cover every line exactly once, in order.
#[test]
fn journal_pages_cover_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let store = db.state_store(GroupId(1));
    let mut state = State::new(LedgerConfig::default());
    drive(&mut state, &store, 30);
    let whole = store
        .journal_page(&eur(1), JournalFrom::Seq(0), 1000)
        .unwrap();
    assert!(whole.next.is_none());
    let seqs: Vec<u64> = whole.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=whole.entries.len() as u64).collect::<Vec<_>>());
    for (from, by) in [
        (JournalFrom::Seq(0), "seq"),
        (JournalFrom::Position(LogIndex(0), 0), "pos"),
    ] {
        let mut paged = Vec::new();
        let mut from = from;
        loop {
            let page = store.journal_page(&eur(1), from, 7).unwrap();
            assert!(page.entries.len() <= 7);
            paged.extend(page.entries);
            match (page.next, by) {
                (Some(n), "seq") => from = JournalFrom::Seq(n.seq),
                (Some(n), _) => from = JournalFrom::Position(n.log_index, n.position),
                (None, _) => break,
            }
        }
        assert_eq!(paged, whole.entries, "paged by {by}");
    }
    assert!(
        whole
            .entries
            .windows(2)
            .all(|w| (w[0].log_index, w[0].position) < (w[1].log_index, w[1].position))
    );
}

// A snapshot built on one node, sent in checksummed pieces and installed on another, reproduces
// the state and journal exactly; a damaged piece or file is refused.
#[test]
fn snapshot_build_transfer_install_round_trip() {
    let src_dir = tempfile::tempdir().unwrap();
    let dst_dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let src = Db::open(src_dir.path()).unwrap();
    let mut state = State::new(LedgerConfig::default());
    drive(&mut state, &src.state_store(GroupId(3)), 500);
    let built = files.path().join("built.ckpt");
    let info = src.state_store(GroupId(3)).build_snapshot(&built).unwrap();
    assert_eq!(info.applied, b"applied-500");
    // Writes after the checkpoint (here: of group 9) are not in it.
    drive(
        &mut State::new(LedgerConfig::default()),
        &src.state_store(GroupId(9)),
        3,
    );

    let received = files.path().join("received.snap");
    let mut reader = SnapshotChunkReader::open(&built, GroupId(3)).unwrap();
    let mut writer = SnapshotChunkWriter::create(&received).unwrap();
    let mut pieces = 0;
    while let Some((offset, data, crc)) = reader.next_piece(4096).unwrap() {
        let mut damaged = data.clone();
        damaged[0] ^= 1;
        assert!(
            SnapshotChunkWriter::create(&files.path().join("x.snap"))
                .unwrap()
                .write_piece(offset, &damaged, crc)
                .is_err()
                || offset != 0
        );
        writer.write_piece(offset, &data, crc).unwrap();
        pieces += 1;
    }
    assert!(pieces > 1, "the snapshot must travel in several pieces");
    let received_info = writer.finish().unwrap();
    assert_eq!(received_info.applied, info.applied);
    assert!(received_info.rows > 500);
    let other = files.path().join("other.snap");
    let other_info = geowallet_storage::write_snapshot_file(&built, GroupId(9), &other).unwrap();
    assert_eq!(other_info.rows, 0);

    let dst = Db::open(dst_dir.path()).unwrap();
    let dst_store = dst.state_store(GroupId(3));
    // Pre-existing rows of the group are replaced, not merged.
    let mut junk = State::new(LedgerConfig::default());
    drive(&mut junk, &dst_store, 3);
    assert_eq!(
        dst_store.install_snapshot(&received).unwrap(),
        b"applied-500"
    );
    assert_eq!(dst_store.open_applied().unwrap().unwrap(), b"applied-500");
    same_state(&state, &dst_store);
    let a = src
        .state_store(GroupId(3))
        .journal_page(&eur(2), JournalFrom::Seq(0), 1000)
        .unwrap();
    let b = dst_store
        .journal_page(&eur(2), JournalFrom::Seq(0), 1000)
        .unwrap();
    assert_eq!(a, b);

    let mut bytes = std::fs::read(&received).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    let broken = files.path().join("broken.snap");
    std::fs::write(&broken, &bytes).unwrap();
    let err = dst_store.install_snapshot(&broken).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    same_state(&state, &dst_store);
}

// The in-memory twin keeps exactly what was synced across a crash, like the disk under RocksDB,
// and a snapshot built from it installs into RocksDB identically (one file format for both).
#[test]
fn mem_engine_state_survives_crash_and_snapshots_into_rocksdb() {
    let engine = MemEngine::new(SyncMode::Manual);
    let db = Db::with_engine(engine.clone());
    let mut state = State::new(LedgerConfig::default());
    drive(&mut state, &db.state_store(GroupId(4)), 60);
    engine.sync();
    engine.crash(CrashFaults::default());
    let store = db.state_store(GroupId(4));
    same_state(&state, &store);
    assert_eq!(store.open_applied().unwrap().unwrap(), b"applied-60");

    let files = tempfile::tempdir().unwrap();
    let checkpoint = files.path().join("mem.ckpt");
    let info = db
        .state_store(GroupId(4))
        .build_snapshot(&checkpoint)
        .unwrap();
    let snap = files.path().join("mem.snap");
    geowallet_storage::write_snapshot_file(&checkpoint, GroupId(4), &snap).unwrap();
    let rocks_dir = tempfile::tempdir().unwrap();
    let rocks = Db::open(rocks_dir.path()).unwrap();
    assert_eq!(
        rocks
            .state_store(GroupId(4))
            .install_snapshot(&snap)
            .unwrap(),
        info.applied
    );
    same_state(&state, &rocks.state_store(GroupId(4)));
}

// A receive that fails (dropped midway, or a damaged file at the end) leaves no file behind.
#[test]
fn failed_receives_leave_no_files() {
    let src_dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let src = Db::open(src_dir.path()).unwrap();
    let mut state = State::new(LedgerConfig::default());
    drive(&mut state, &src.state_store(GroupId(5)), 50);
    let built = files.path().join("built.ckpt");
    src.state_store(GroupId(5)).build_snapshot(&built).unwrap();
    let recv = tempfile::tempdir().unwrap();
    let target = recv.path().join("in.snap");
    let mut reader = SnapshotChunkReader::open(&built, GroupId(5)).unwrap();
    let (offset, data, crc) = reader.next_piece(512).unwrap().unwrap();
    let mut writer = SnapshotChunkWriter::create(&target).unwrap();
    writer.write_piece(offset, &data, crc).unwrap();
    drop(writer);
    let left = || std::fs::read_dir(recv.path()).unwrap().count();
    assert_eq!(left(), 0, "a dropped receive leaves no partial file");
    // A complete but truncated stream fails verification at finish.
    let mut writer = SnapshotChunkWriter::create(&target).unwrap();
    writer.write_piece(offset, &data, crc).unwrap();
    assert!(writer.finish().unwrap_err().is_corruption());
    assert_eq!(left(), 0, "a receive refused at finish leaves no file");
}

// An install interrupted halfway (marker left, old rows deleted, some new
// rows written) is finished when the group is opened again: the rows and
// the applied position are the snapshot's, and a build refuses the half state.
#[test]
fn interrupted_install_resumes_on_open() {
    let src_dir = tempfile::tempdir().unwrap();
    let dst_dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let src = Db::open(src_dir.path()).unwrap();
    let mut state = State::new(LedgerConfig::default());
    drive(&mut state, &src.state_store(GroupId(6)), 80);
    let checkpoint = files.path().join("s.ckpt");
    src.state_store(GroupId(6))
        .build_snapshot(&checkpoint)
        .unwrap();
    let snap = files.path().join("s.snap");
    geowallet_storage::write_snapshot_file(&checkpoint, GroupId(6), &snap).unwrap();
    {
        let dst = Db::open(dst_dir.path()).unwrap();
        let store = dst.state_store(GroupId(6));
        let mut junk = State::new(LedgerConfig::default());
        drive(&mut junk, &store, 5);
        store
            .interrupt_install_for_test(&snap, Cf::Journal)
            .unwrap();
        let half = store.build_snapshot(&files.path().join("half.ckpt"));
        assert!(
            half.unwrap_err().to_string().contains("in progress"),
            "a half-installed group is never labelled a snapshot"
        );
    }
    let dst = Db::open(dst_dir.path()).unwrap();
    let store = dst.state_store(GroupId(6));
    assert_eq!(store.open_applied().unwrap().unwrap(), b"applied-80");
    same_state(&state, &store);
    store
        .build_snapshot(&files.path().join("after.ckpt"))
        .unwrap();
}
