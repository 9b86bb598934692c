//! Snapshot builds (openraft runs them in a task of their own) overlapping
//! snapshot installs, on real threads over real RocksDB.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use geowallet_ledger::{
    AccountId, Amount, Command, CreditKind, Currency, EntryContext, LedgerConfig, LogIndex,
    MemRows, PlayerId, Request, TxId,
};
use geowallet_raft::{AppliedState, LedgerStateMachine, SnapshotHandle, TypeConfig, encode};
use geowallet_storage::{Db, GroupId};
use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};

const GROUP: GroupId = GroupId(1);
const SOURCES: u64 = 6;
const BUILDS: usize = 60;

/// A store whose rows are `k * 10` funded wallets, applied up to index `k * 100`.
fn source(dir: &Path, k: u64) -> (PathBuf, MemRows) {
    let db = Db::open(&dir.join(format!("src-{k}"))).unwrap();
    let store = db.state_store(GROUP);
    let config = LedgerConfig::default();
    let requests: Vec<Request> = (1..=k * 10)
        .flat_map(|p| {
            let account = AccountId {
                player: PlayerId(p),
                currency: Currency::parse("EUR").unwrap(),
            };
            let fund = Command::Credit {
                account,
                amount: Amount(k),
                kind: CreditKind::Deposit,
            };
            [(0, Command::OpenAccount { account }), (1, fund)].map(|(n, command)| Request {
                tx: TxId::new(format!("s{k}-{p}-{n}")).unwrap(),
                created_at_ns: 1_000,
                command,
            })
        })
        .collect();
    let ctx = EntryContext {
        group: GROUP.0,
        log_index: LogIndex(k * 100),
        leader_time_ns: 1_000,
    };
    let rows = store.rows();
    rows.prefetch(&requests);
    let (_, changes) = geowallet_ledger::apply(&rows, &config, ctx, &requests);
    rows.finish().unwrap();
    let applied = AppliedState {
        last_applied: Some(openraft::testing::log_id::<TypeConfig>(1, 1, k * 100)),
        ..AppliedState::default()
    };
    store.persist(&changes, &encode(&applied).unwrap()).unwrap();
    let checkpoint = dir.join(format!("source-{k}.ckpt"));
    store.build_snapshot(&checkpoint).unwrap();
    let path = dir.join(format!("source-{k}.snap"));
    geowallet_storage::write_snapshot_file(&checkpoint, GROUP, &path).unwrap();
    (path, store.dump().unwrap())
}

/// Installs the snapshot at `path` (a checkpoint or a file) into a scratch
/// store: its applied index and rows. `None` if it was deleted meanwhile.
fn read_snapshot(scratch: &Path, path: &Path, n: usize) -> Option<(u64, MemRows)> {
    let copy = scratch.join(format!("copy-{n}.snap"));
    geowallet_storage::write_snapshot_file(path, GROUP, &copy).ok()?;
    let db = Db::open(&scratch.join(format!("db-{n}"))).unwrap();
    let store = db.state_store(GROUP);
    let applied = store.install_snapshot(&copy).unwrap();
    let applied = AppliedState::from_stored(Some(&applied)).unwrap();
    Some((applied.index(), store.dump().unwrap()))
}

// Every snapshot built while installs run holds exactly the rows of the
// position it is labelled with (never a half-installed state under an old
// label), and `current` never moves backwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_overlapping_installs_are_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let sources: Vec<(PathBuf, MemRows)> = (1..=SOURCES).map(|k| source(dir.path(), k)).collect();
    let db = Db::open(&dir.path().join("target")).unwrap();
    let snapshots = dir.path().join("snapshots");
    let mut sm = LedgerStateMachine::open(
        db.state_store(GROUP),
        snapshots.clone(),
        LedgerConfig::default(),
    )
    .unwrap();
    let mut builder = sm.get_snapshot_builder().await;
    let builds = tokio::spawn(async move {
        let mut built = Vec::new();
        for _ in 0..BUILDS {
            let s = builder.build_snapshot().await.unwrap();
            let index = s.meta.last_log_id.map_or(0, |l| l.index);
            built.push((index, s.snapshot.path));
            tokio::task::yield_now().await;
        }
        built
    });
    for (k, (path, _)) in sources.iter().enumerate() {
        let received = snapshots.join(format!("g1-recv-{k}.snap"));
        std::fs::copy(path, &received).unwrap();
        let index = (k as u64 + 1) * 100;
        let meta = openraft::SnapshotMeta {
            last_log_id: Some(openraft::testing::log_id::<TypeConfig>(1, 1, index)),
            last_membership: Default::default(),
        };
        sm.install_snapshot(&meta, SnapshotHandle { path: received })
            .await
            .unwrap();
    }
    let built = builds.await.unwrap();
    let scratch = Arc::new(tempfile::tempdir().unwrap());
    let mut checked = 0;
    let mut last = 0;
    for (n, (index, path)) in built.into_iter().enumerate() {
        assert!(index >= last, "current moved back from {last} to {index}");
        last = index;
        // A later install may have deleted an older file: nothing to check then.
        let Some((label, rows)) = read_snapshot(scratch.path(), &path, n) else {
            continue;
        };
        assert_eq!(label, index, "file and pointer disagree");
        let expected = match index {
            0 => MemRows::default(),
            i => sources[(i / 100 - 1) as usize].1.clone(),
        };
        assert_eq!(
            rows.accounts, expected.accounts,
            "snapshot labelled {index}"
        );
        assert_eq!(
            rows.players_total, expected.players_total,
            "snapshot labelled {index}"
        );
        checked += 1;
    }
    assert!(checked > 0, "no built snapshot could be checked");
    let current = sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(
        current.meta.last_log_id.map(|l| l.index),
        Some(SOURCES * 100)
    );
}

// Opening a state machine deletes partial and unreferenced snapshot files and
// checkpoints a crash or a refused receive left behind, and keeps the current one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_prunes_stray_snapshot_files() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = source(dir.path(), 1);
    let snapshots = dir.path().join("snapshots");
    let db = Db::open(&dir.path().join("target")).unwrap();
    {
        let mut sm = LedgerStateMachine::open(
            db.state_store(GROUP),
            snapshots.clone(),
            LedgerConfig::default(),
        )
        .unwrap();
        let received = snapshots.join("g1-recv-a.snap");
        std::fs::copy(&path, &received).unwrap();
        let meta = openraft::SnapshotMeta {
            last_log_id: Some(openraft::testing::log_id::<TypeConfig>(1, 1, 100)),
            last_membership: Default::default(),
        };
        sm.install_snapshot(&meta, SnapshotHandle { path: received })
            .await
            .unwrap();
    }
    for stray in [
        "g1-recv-b.snap.part",
        "g1-0001.tmp",
        "g1-recv-c.snap",
        "g1-recv-a.state.sst",
    ] {
        std::fs::write(snapshots.join(stray), b"left behind").unwrap();
    }
    // Checkpoints: a superseded one, and one a crash cut short.
    for stray in ["g1-0002.ckpt", "g1-0003.tmp"] {
        std::fs::create_dir(snapshots.join(stray)).unwrap();
        std::fs::write(snapshots.join(stray).join("000001.sst"), b"x").unwrap();
    }
    let mut sm = LedgerStateMachine::open(
        db.state_store(GROUP),
        snapshots.clone(),
        LedgerConfig::default(),
    )
    .unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&snapshots)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["current", "g1-recv-a.snap"]);
    let current = sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta.last_log_id.map(|l| l.index), Some(100));
}
