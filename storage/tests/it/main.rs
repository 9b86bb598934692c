//! Storage integration tests on real RocksDB: ledger state persistence and
//! reload, journal paging, snapshot build / transfer / install.

use geowallet_ledger::{
    AccountId, Amount, Command, CreditKind, Currency, DebitKind, EntryContext, HoldId,
    LedgerConfig, LogIndex, PlayerId, Request, State, TxId,
};
use geowallet_storage::{
    CrashFaults, Db, Engine, GroupId, MemEngine, SnapshotChunkReader, SnapshotChunkWriter,
    StateStore, SyncMode,
};

mod mem_faults;

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

/// Applies a small workload to `state`, persisting after each entry.
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
        let ctx = EntryContext {
            log_index: LogIndex(i + 1),
            leader_time_ns: T0 + i,
        };
        state.apply(ctx, &requests);
        let changes = state.take_changes();
        store
            .persist(&changes, format!("applied-{}", i + 1).as_bytes())
            .unwrap();
    }
}

fn same_state(a: &State, b: &State) {
    assert_eq!(
        a.accounts().collect::<Vec<_>>(),
        b.accounts().collect::<Vec<_>>()
    );
    assert_eq!(a.holds().collect::<Vec<_>>(), b.holds().collect::<Vec<_>>());
    assert_eq!(a.currency_totals(), b.currency_totals());
    assert_eq!(a.meta(), b.meta());
    let usd = Currency::parse("EUR").unwrap();
    for which in [
        geowallet_ledger::SystemAccount::House,
        geowallet_ledger::SystemAccount::Gateway,
    ] {
        assert_eq!(a.system_balance(usd, which), b.system_balance(usd, which));
    }
}

// What apply changed, persisted, reloads into an identical ledger state after reopening RocksDB.
#[test]
fn persisted_state_reloads_identically() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = State::new(LedgerConfig::default());
    {
        let db = Db::open(dir.path()).unwrap();
        drive(&mut state, &db.state_store(GroupId(1)), 40);
    }
    let db = Db::open(dir.path()).unwrap();
    let (loaded, applied) = db
        .state_store(GroupId(1))
        .load(LedgerConfig::default())
        .unwrap();
    loaded.check_invariants();
    same_state(&state, &loaded);
    assert_eq!(applied.unwrap(), b"applied-40");
    // Another group on the same instance is untouched.
    let (other, applied) = db
        .state_store(GroupId(2))
        .load(LedgerConfig::default())
        .unwrap();
    assert_eq!(other.accounts().count(), 0);
    assert!(applied.is_none());
}

// Journal pages cover every line exactly once, in order.
#[test]
fn journal_pages_cover_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let store = db.state_store(GroupId(1));
    let mut state = State::new(LedgerConfig::default());
    drive(&mut state, &store, 30);
    let whole = store.journal_page(&eur(1), (LogIndex(0), 0), 1000).unwrap();
    assert!(whole.next.is_none());
    let mut paged = Vec::new();
    let mut from = (LogIndex(0), 0);
    loop {
        let page = store.journal_page(&eur(1), from, 7).unwrap();
        assert!(page.entries.len() <= 7);
        paged.extend(page.entries);
        match page.next {
            Some(n) => from = n,
            None => break,
        }
    }
    assert_eq!(paged, whole.entries);
    assert!(
        paged
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
    let built = files.path().join("built.snap");
    let info = src.state_store(GroupId(3)).build_snapshot(&built).unwrap();
    assert_eq!(info.applied, b"applied-500");
    assert!(info.rows > 500);

    let received = files.path().join("received.snap");
    let mut reader = SnapshotChunkReader::open(&built).unwrap();
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
    assert_eq!(writer.finish().unwrap(), info);

    let dst = Db::open(dst_dir.path()).unwrap();
    let dst_store = dst.state_store(GroupId(3));
    // Pre-existing rows of the group are replaced, not merged.
    let mut junk = State::new(LedgerConfig::default());
    drive(&mut junk, &dst_store, 3);
    assert_eq!(
        dst_store.install_snapshot(&received).unwrap(),
        b"applied-500"
    );
    let (loaded, applied) = dst_store.load(LedgerConfig::default()).unwrap();
    assert_eq!(applied.unwrap(), b"applied-500");
    same_state(&state, &loaded);
    let a = src
        .state_store(GroupId(3))
        .journal_page(&eur(2), (LogIndex(0), 0), 1000)
        .unwrap();
    let b = dst_store
        .journal_page(&eur(2), (LogIndex(0), 0), 1000)
        .unwrap();
    assert_eq!(a, b);

    let mut bytes = std::fs::read(&built).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    let broken = files.path().join("broken.snap");
    std::fs::write(&broken, &bytes).unwrap();
    let err = dst_store.install_snapshot(&broken).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    let (still, _) = dst_store.load(LedgerConfig::default()).unwrap();
    same_state(&state, &still);
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
    let (loaded, applied) = db
        .state_store(GroupId(4))
        .load(LedgerConfig::default())
        .unwrap();
    same_state(&state, &loaded);
    assert_eq!(applied.unwrap(), b"applied-60");

    let files = tempfile::tempdir().unwrap();
    let snap = files.path().join("mem.snap");
    let info = db.state_store(GroupId(4)).build_snapshot(&snap).unwrap();
    let rocks_dir = tempfile::tempdir().unwrap();
    let rocks = Db::open(rocks_dir.path()).unwrap();
    assert_eq!(
        rocks
            .state_store(GroupId(4))
            .install_snapshot(&snap)
            .unwrap(),
        info.applied
    );
    let (installed, _) = rocks
        .state_store(GroupId(4))
        .load(LedgerConfig::default())
        .unwrap();
    same_state(&state, &installed);
}
