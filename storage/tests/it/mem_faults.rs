//! Crash faults of the in-memory engine, seen through the real log and state
//! stores: what the simulator will inject must be caught or tolerated here.

use std::sync::mpsc;

use geowallet_ledger::LedgerConfig;
use geowallet_storage::{
    Cf, CrashFaults, Db, GroupId, MemEngine, StorageError, SyncCallback, SyncMode,
};

fn durable() -> (SyncCallback, mpsc::Receiver<Result<(), StorageError>>) {
    let (tx, rx) = mpsc::channel();
    (Box::new(move |r| drop(tx.send(r))), rx)
}

fn indexes(db: &Db<MemEngine>) -> Vec<u64> {
    db.log_store(GroupId(1))
        .read_range(0, u64::MAX)
        .unwrap()
        .into_iter()
        .map(|(i, _)| i)
        .collect()
}

// Appends are readable at once but reported durable only after a sync; a crash before it loses them
// and never fires their callbacks, while synced entries and the synced vote survive.
#[test]
fn unsynced_appends_are_lost_on_crash_synced_ones_survive() {
    let engine = MemEngine::new(SyncMode::Manual);
    let db = Db::with_engine(engine.clone());
    let log = db.log_store(GroupId(1));
    let (cb, first) = durable();
    log.append(&[(1, b"a".to_vec()), (2, b"b".to_vec())], cb)
        .unwrap();
    log.save_vote(b"vote-1").unwrap();
    assert_eq!(
        first.try_recv().ok().map(|r| r.is_ok()),
        Some(true),
        "the synced vote write also synced the entries"
    );
    let (cb, second) = durable();
    log.append(&[(3, b"c".to_vec())], cb).unwrap();
    assert_eq!(indexes(&db), vec![1, 2, 3], "visible before it is durable");
    assert!(
        second.try_recv().is_err(),
        "not reported durable before a sync"
    );
    engine.crash(CrashFaults::default());
    assert_eq!(indexes(&db), vec![1, 2]);
    assert_eq!(log.read_vote().unwrap().unwrap(), b"vote-1");
    assert!(
        second.recv().is_err(),
        "the callback of a lost write never reports success"
    );
}

// When some unsynced writes happen to reach the disk, each batch survives whole or not at all.
#[test]
fn a_prefix_of_unsynced_batches_may_survive_whole() {
    let engine = MemEngine::new(SyncMode::Manual);
    let db = Db::with_engine(engine.clone());
    let log = db.log_store(GroupId(1));
    for i in 1..=3u64 {
        let (cb, _rx) = durable();
        log.append(&[(2 * i - 1, vec![1; 16]), (2 * i, vec![2; 16])], cb)
            .unwrap();
    }
    engine.crash(CrashFaults {
        unsynced_batches_kept: 2,
        tear_last_write: false,
    });
    assert_eq!(indexes(&db), vec![1, 2, 3, 4]);
}

// A torn last write is caught by the entry's checksum instead of being used.
#[test]
fn torn_last_write_is_caught_by_checksum() {
    let engine = MemEngine::new(SyncMode::Manual);
    let db = Db::with_engine(engine.clone());
    let log = db.log_store(GroupId(1));
    let (cb, _rx) = durable();
    log.append(
        &[
            (1, b"credit 10".to_vec()),
            (2, b"debit 5 from 42/EUR".to_vec()),
        ],
        cb,
    )
    .unwrap();
    engine.crash(CrashFaults {
        unsynced_batches_kept: 1,
        tear_last_write: true,
    });
    assert_eq!(log.read_range(1, 2).unwrap().len(), 1);
    let err = log.read_range(2, 3).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(log.last().unwrap_err().is_corruption());
}

// A flipped bit in any stored log entry or state row is reported, never returned or loaded.
#[test]
fn bit_flips_are_caught_in_log_and_state() {
    let engine = MemEngine::new(SyncMode::Immediate);
    let db = Db::with_engine(engine.clone());
    let log = db.log_store(GroupId(1));
    let (cb, rx) = durable();
    log.append(&[(1, b"x".repeat(40))], cb).unwrap();
    rx.recv().unwrap().unwrap();
    let key = engine.keys(Cf::Log).pop().unwrap();
    for bit in [0, 7, 33, 200, 319] {
        assert!(engine.flip_bit(Cf::Log, &key, bit));
        assert!(
            log.read_range(1, 2).unwrap_err().is_corruption(),
            "bit {bit}"
        );
        engine.flip_bit(Cf::Log, &key, bit);
        assert_eq!(log.read_range(1, 2).unwrap().len(), 1);
    }
    let mut state = geowallet_ledger::State::new(LedgerConfig::default());
    crate::drive(&mut state, &db.state_store(GroupId(1)), 3);
    // The first state row is player 1's account: apply reads it and must fail.
    let row = engine.keys(Cf::State).into_iter().next().unwrap();
    assert!(engine.flip_bit(Cf::State, &row, 12));
    let store = db.state_store(GroupId(1));
    assert!(store.dump().unwrap_err().is_corruption());
    let rows = store.rows();
    assert!(geowallet_ledger::LedgerRows::account(&rows, &crate::eur(1)).is_none());
    assert!(rows.finish().unwrap_err().is_corruption());
}

// A stored account whose available + held overflows (crc-valid, but never written by apply) is
// reported as damage when apply reads it, never a panic.
#[test]
fn impossible_account_row_is_an_error_not_a_panic() {
    let engine = MemEngine::new(SyncMode::Immediate);
    let db = Db::with_engine(engine);
    let store = db.state_store(GroupId(1));
    let account = geowallet_ledger::Account {
        available: u64::MAX,
        held: 1,
        debited_total: 0,
        credited_total: 0,
        frozen: false,
        journal_seq: 1,
    };
    let changes = geowallet_ledger::Changes {
        accounts: [(crate::eur(1), Some(account))].into(),
        ..Default::default()
    };
    store.persist(&changes, b"applied").unwrap();
    let rows = store.rows();
    let _ = geowallet_ledger::LedgerRows::account(&rows, &crate::eur(1));
    let err = rows.finish().unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(
        err.to_string().contains("available + held overflows"),
        "{err}"
    );
}
