//! Golden bytes of everything storage writes to disk: one row of every kind
//! (key layout, crc32 framing and the postcard value, through the public
//! API that production writes with), the snapshot stream format, and the
//! in-memory engine's checkpoint file. The values themselves are the
//! ledger's and raft's (pinned by their own golden tests); here they are
//! only what makes the rows. See `golden_file.rs`.

use std::path::Path;

use geowallet_ledger::{
    Account, Balance, Changes, Currency, Hold, HoldStatus, JournalEntry, JournalKind, LogIndex,
    MemRows, Meta, MoveId, PendingTransfer, PlayerId, PlayerMove, Receipt, SystemAccount, TimeKey,
    TxId, TxRecord,
};
use geowallet_storage::{
    Batch, Cf, Db, DirKey, Direction, Engine, EngineView, GroupId, JournalFrom, MemEngine,
    SyncMode, open_checkpoint, write_snapshot_file,
};

use crate::golden_file::GoldenFile;
use crate::{T0, eur};

const GROUP: GroupId = GroupId(7);
/// The applied position every state write stores with its rows.
const APPLIED: &[u8] = b"applied-1";

/// One stored row: column family, key, value.
type Row = (Cf, Vec<u8>, Vec<u8>);

fn hold_id() -> geowallet_ledger::HoldId {
    geowallet_ledger::HoldId::new("h-1").unwrap()
}

fn tx(id: &str) -> TxId {
    TxId::new(id).unwrap()
}

fn receipt() -> Receipt {
    Receipt {
        log_index: LogIndex(300),
        balance: Balance {
            available: 1_000,
            held: 250,
        },
        counterpart: None,
    }
}

fn journal_entry() -> JournalEntry {
    JournalEntry {
        account: eur(1),
        seq: 42,
        group: GROUP.0,
        log_index: LogIndex(300),
        position: 2,
        tx: Some(tx("bet-1")),
        kind: JournalKind::Hold,
        amount: 250,
        balance: receipt().balance,
    }
}

/// `Changes` holding what `fill` puts in.
fn with(fill: impl FnOnce(&mut Changes)) -> Changes {
    let mut c = Changes::default();
    fill(&mut c);
    c
}

/// One state change of every kind of row, each alone in its `Changes`.
fn state_cases() -> Vec<(&'static str, Changes)> {
    let account = Account {
        available: 1_000,
        held: 250,
        ..Account::default()
    };
    let hold = Hold {
        amount: 500,
        remaining: 250,
        expires_at_ns: T0 + 1,
        status: HoldStatus::Active,
        closed_at_ns: 0,
    };
    let record = TxRecord {
        created_at_ns: T0,
        fingerprint: 0x0123_4567_89ab_cdef,
        outcome: Ok(receipt()),
    };
    // A transfer credit's record, under the id the ledger derives for it.
    let derived = TxId::transfer_credit(eur(1), &tx("p2p-1"));
    let pending = PendingTransfer {
        to: eur(2),
        amount: 25,
        created_at_ns: T0,
        fingerprint: 0xfedc_ba98_7654_3210,
        debited: receipt(),
    };
    let id = MoveId {
        from_epoch: 3,
        attempt: 1,
        from_group: GROUP.0,
    };
    let moved = PlayerMove::Moved {
        id,
        group: 4,
        epoch: 2,
    };
    let meta = Meta {
        leader_time_ns: T0,
        swept_ns: [T0 - 3, T0 - 2, 0],
        next_due_ns: [T0 + 1, u64::MAX, 0],
    };
    let mut cases = vec![
        (
            "state.account",
            with(|c| {
                c.accounts.insert(eur(1), Some(account));
            }),
        ),
        (
            "state.hold",
            with(|c| {
                c.holds.insert((eur(1), hold_id()), Some(hold));
            }),
        ),
        (
            "state.tx_record",
            with(|c| {
                c.tx_records
                    .insert((eur(1), tx("bet-1")), Some(record.clone()));
            }),
        ),
        (
            "state.tx_record_derived",
            with(|c| {
                c.tx_records.insert((eur(2), derived), Some(record));
            }),
        ),
        (
            "state.pending_transfer",
            with(|c| {
                c.transfers.insert((eur(1), tx("p2p-1")), Some(pending));
            }),
        ),
        (
            "state.player_move",
            with(|c| {
                c.players.insert(PlayerId(3), Some(moved));
            }),
        ),
        ("state.meta", with(|c| c.meta = Some(meta))),
        ("journal.entry", with(|c| c.journal.push(journal_entry()))),
    ];
    cases.extend(time_and_money_cases());
    cases
}

/// The rows whose key carries their meaning: time index keys (one per
/// index), system balances (one per system account) and players' totals.
fn time_and_money_cases() -> Vec<(&'static str, Changes)> {
    let keys = [
        (
            "state.time_hold_expiry",
            TimeKey::HoldExpiry {
                expires_at_ns: T0 + 1,
                account: eur(1),
                hold: hold_id(),
            },
        ),
        (
            "state.time_hold_closed",
            TimeKey::HoldClosed {
                closed_at_ns: T0 + 2,
                account: eur(1),
                hold: hold_id(),
            },
        ),
        (
            "state.time_tx_created",
            TimeKey::TxCreated {
                created_at_ns: T0,
                account: eur(1),
                tx: tx("bet-1"),
            },
        ),
    ];
    let mut cases: Vec<(&'static str, Changes)> = keys
        .into_iter()
        .map(|(name, key)| {
            (
                name,
                with(|c| {
                    c.time_index.insert(key, true);
                }),
            )
        })
        .collect();
    let systems = [
        ("state.system_house", SystemAccount::House, -1_234),
        ("state.system_gateway", SystemAccount::Gateway, i128::MIN),
        ("state.system_transit", SystemAccount::Transit, 25),
    ];
    for (name, which, balance) in systems {
        let currency = eur(1).currency;
        cases.push((
            name,
            with(|c| {
                c.system.insert((currency, which), balance);
            }),
        ));
    }
    let usdt = Currency::parse("USDT").unwrap();
    let total = with(|c| {
        c.players_total.insert(usdt, i128::MAX);
    });
    cases.push(("state.players_total", total));
    cases
}

/// Every row of `view`, in order.
fn every_row(view: &dyn EngineView) -> Vec<Row> {
    let mut rows = Vec::new();
    for cf in Cf::ALL {
        let mut visit = |k: &[u8], v: &[u8]| {
            rows.push((cf, k.to_vec(), v.to_vec()));
            Ok(true)
        };
        view.scan(cf, &[], &[0xff; 32], Direction::Forward, &mut visit)
            .unwrap();
    }
    rows
}

/// The one row `write` adds to an empty store, beyond the applied position
/// every state write stores.
fn one_row(write: impl FnOnce(&Db<MemEngine>)) -> Row {
    let engine = MemEngine::new(SyncMode::Immediate);
    write(&Db::with_engine(engine.clone()));
    let mut rows = every_row(engine.as_ref());
    let baseline = {
        let empty = MemEngine::new(SyncMode::Immediate);
        let store = Db::with_engine(empty.clone()).state_store(GROUP);
        store.persist(&Changes::default(), APPLIED).unwrap();
        every_row(empty.as_ref())
    };
    rows.retain(|r| !baseline.contains(r));
    assert_eq!(rows.len(), 1, "a case writes one row: {rows:?}");
    rows.remove(0)
}

/// The log and Raft metadata rows, and the directory's (opaque here).
fn raft_cases() -> Vec<(&'static str, Row)> {
    let dir_row = |key: DirKey, value: &'static [u8]| {
        one_row(move |db| {
            let store = db.state_store(GROUP);
            store
                .directory_persist(&[(key, value.to_vec())], APPLIED)
                .unwrap();
        })
    };
    let log = |write: &dyn Fn(&geowallet_storage::LogStore<MemEngine>)| {
        one_row(|db| write(&db.log_store(GROUP)))
    };
    vec![
        ("state.directory_groups", dir_row(DirKey::Groups, b"groups")),
        (
            "state.directory_placement",
            dir_row(DirKey::Placement(3), b"placed"),
        ),
        (
            "log.entry",
            log(&|l| {
                l.append(&[(300, b"entry-300".to_vec())], Box::new(|_| ()))
                    .unwrap()
            }),
        ),
        ("meta.vote", log(&|l| l.save_vote(b"vote").unwrap())),
        (
            "meta.committed",
            log(&|l| l.save_committed(b"committed").unwrap()),
        ),
        (
            "meta.last_purged",
            log(&|l| l.purge_upto(5, b"purged").unwrap()),
        ),
        (
            "meta.applied",
            one_row(|db| {
                let store = db.state_store(GROUP);
                store
                    .persist(&Changes::default(), b"applied-golden")
                    .unwrap();
            }),
        ),
    ]
}

fn cf_of(case: &str) -> Cf {
    let prefix = case.split('.').next().unwrap();
    *Cf::ALL
        .iter()
        .find(|cf| cf.name() == prefix)
        .expect("a cf prefix")
}

/// Reads the committed rows back through the stores, as production does.
fn read_back(golden: &mut GoldenFile, rows: Vec<Row>, state: &Changes) {
    let engine = MemEngine::new(SyncMode::Immediate);
    let mut batch = Batch::default();
    for (cf, key, value) in rows {
        batch.put(cf, key, value);
    }
    engine.write(batch, true).unwrap();
    let db = Db::with_engine(engine);
    let store = db.state_store(GROUP);
    let mut expected = MemRows::default();
    expected.commit(state);
    read_state(golden, &store, &expected);
    let log = db.log_store(GROUP);
    let mut same = |what: &str, read: Option<Vec<u8>>, want: &[u8]| {
        if read.as_deref() != Some(want) {
            golden.fail(what, format!("reads back as {read:?}"));
        }
    };
    let entries = log.read_range(0, u64::MAX).unwrap();
    same(
        "log.entry",
        entries.first().map(|e| e.1.clone()),
        b"entry-300",
    );
    same("meta.vote", log.read_vote().unwrap(), b"vote");
    same(
        "meta.committed",
        log.read_committed().unwrap(),
        b"committed",
    );
    same(
        "meta.last_purged",
        log.read_last_purged().unwrap(),
        b"purged",
    );
    same(
        "meta.applied",
        store.open_applied().unwrap(),
        b"applied-golden",
    );
    let groups = store.directory_get(DirKey::Groups).unwrap();
    same("state.directory_groups", groups, b"groups");
    let placed = store.directory_get(DirKey::Placement(3)).unwrap();
    same("state.directory_placement", placed, b"placed");
}

/// Checks that `store` reads back the ledger rows and journal of `expected`.
fn read_state(
    golden: &mut GoldenFile,
    store: &geowallet_storage::StateStore<MemEngine>,
    expected: &MemRows,
) {
    match store.dump() {
        Ok(rows) if rows == *expected => {}
        Ok(rows) => golden.fail("state", format!("reads back as {rows:?}")),
        Err(e) => golden.fail("state", format!("does not read back: {e}")),
    }
    let page = store.journal_page(&eur(1), JournalFrom::Seq(0), 10);
    match page {
        Ok(p) if p.entries == [journal_entry()] => {}
        other => golden.fail("journal.entry", format!("reads back as {other:?}")),
    }
}

// Every kind of stored row still has the committed key and value bytes,
// and the committed rows still read back as the same ledger rows, journal
// line, log entry and Raft metadata.
#[test]
fn stored_rows_keep_their_bytes() {
    let mut golden = crate::golden_file::golden("rows.txt");
    let mut committed = Vec::new();
    let mut state = Changes::default();
    for (name, changes) in state_cases() {
        let (cf, key, value) = one_row(|db| {
            db.state_store(GROUP).persist(&changes, APPLIED).unwrap();
        });
        assert_eq!(cf, cf_of(name), "{name}");
        if let Some(parts) = golden.check(name, &[&key, &value]) {
            committed.push((cf, parts[0].clone(), parts[1].clone()));
        }
        state.merge(changes);
    }
    for (name, (cf, key, value)) in raft_cases() {
        assert_eq!(cf, cf_of(name), "{name}");
        if let Some(parts) = golden.check(name, &[&key, &value]) {
            committed.push((cf, parts[0].clone(), parts[1].clone()));
        }
    }
    read_back(&mut golden, committed, &state);
    golden.finish();
}

/// A store of `GROUP` with a few rows of each column family, its books
/// balanced (an install refuses a snapshot whose books do not balance).
fn snapshot_source() -> (std::sync::Arc<MemEngine>, Changes) {
    let engine = MemEngine::new(SyncMode::Immediate);
    let db = Db::with_engine(engine.clone());
    let mut changes = Changes::default();
    for (name, c) in state_cases() {
        let wanted = [
            "state.account",
            "state.hold",
            "state.time_hold_expiry",
            "journal.entry",
        ];
        if wanted.contains(&name) {
            changes.merge(c);
        }
    }
    let eur = eur(1).currency;
    changes.players_total.insert(eur, 1_250);
    changes.system.insert((eur, SystemAccount::Gateway), -1_250);
    let store = db.state_store(GROUP);
    store.persist(&changes, b"applied-golden").unwrap();
    // Rows of another group, which the snapshot of GROUP leaves out.
    db.state_store(GroupId(8))
        .persist(&changes, APPLIED)
        .unwrap();
    (engine, changes)
}

/// Installs the committed snapshot file into an empty store and checks it
/// holds what was snapshotted.
fn install_committed(golden: &mut GoldenFile, dir: &Path, bytes: &[u8], changes: &Changes) {
    let path = dir.join("committed.snap");
    std::fs::write(&path, bytes).unwrap();
    let store = Db::with_engine(MemEngine::new(SyncMode::Immediate)).state_store(GROUP);
    match store.install_snapshot(&path) {
        Ok(applied) if applied == b"applied-golden" => {}
        other => golden.fail("snapshot_file", format!("installs as {other:?}")),
    }
    let mut expected = MemRows::default();
    expected.commit(changes);
    read_state(golden, &store, &expected);
}

// A snapshot file (the stream a leader sends and a follower keeps) and the
// in-memory engine's checkpoint file still have the committed bytes, and
// the committed files still install and open as the same rows.
#[test]
fn snapshot_files_keep_their_bytes() {
    let mut golden = crate::golden_file::golden("snapshot.txt");
    let dir = tempfile::tempdir().unwrap();
    let (engine, changes) = snapshot_source();
    let checkpoint = dir.path().join("s.ckpt");
    let db = Db::with_engine(engine.clone());
    db.state_store(GROUP).build_snapshot(&checkpoint).unwrap();
    // The one file of a MemEngine checkpoint directory, by that name.
    let table = std::fs::read(checkpoint.join("mem-checkpoint")).unwrap();
    if let Some(parts) = golden.check("mem_checkpoint", &[&table]) {
        let reopened = dir.path().join("committed.ckpt");
        std::fs::create_dir(&reopened).unwrap();
        std::fs::write(reopened.join("mem-checkpoint"), &parts[0]).unwrap();
        let view = open_checkpoint(&reopened).unwrap();
        if every_row(view.as_ref()) != every_row(engine.as_ref()) {
            golden.fail("mem_checkpoint", "opens as other rows".into());
        }
    }
    let file = dir.path().join("s.snap");
    write_snapshot_file(&checkpoint, GROUP, &file).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    if let Some(parts) = golden.check("snapshot_file", &[&bytes]) {
        install_committed(&mut golden, dir.path(), &parts[0], &changes);
    }
    golden.finish();
}
