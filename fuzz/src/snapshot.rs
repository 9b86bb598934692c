//! Target `snapshot`: a snapshot file as a follower receives it from a
//! leader. Input: one byte choosing how the rest makes the file (as is, or
//! postcard frames that are written with every checksum right, so the
//! fuzzer reaches the rows behind the checksums), then those bytes. The
//! file arrives in pieces through `SnapshotChunkWriter` and is verified as
//! `RaftRpcService::install_snapshot` verifies it. A refusal must be a
//! corruption error; a file that passes must install into a group
//! (`MemEngine`), give back its applied position, and leave rows a restart
//! reads (state, journal), balanced books, and the same rows to apply's
//! reads by key as to the check's scan. (The check promises no more than
//! that: a snapshot whose rows disagree with each other, e.g. a time index
//! naming no hold, passes it, and the ledger's own assertions catch it on
//! the next entry.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use geowallet_ledger::{Currency, LedgerRows, MemRows};
use geowallet_raft::AppliedState;
use geowallet_storage::{
    Db, JournalFrom, MemEngine, SnapshotChunkWriter, SnapshotFileInfo, StateStore, SyncMode,
    verify_snapshot,
};

use crate::snapshot_frame::{self, Frame};

/// Bytes per piece as the file arrives (the sender's are larger; the size
/// does not matter to the checks, only that there are several).
const PIECE_BYTES: usize = 4096;
/// Journal lines read back per account, at most.
const JOURNAL_LINES_MAX: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The rest is the file.
    Raw,
    /// The rest is a postcard `Vec<Frame>`, written with right checksums.
    Frames,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Raw, Kind::Frames];

    fn of(byte: u8) -> Kind {
        Kind::ALL[usize::from(byte) % Kind::ALL.len()]
    }

    fn byte(self) -> u8 {
        let i = Kind::ALL.iter().position(|k| *k == self).expect("listed");
        u8::try_from(i).expect("few kinds")
    }
}

pub fn run(data: &[u8]) {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let file = match Kind::of(kind) {
        Kind::Raw => body.to_vec(),
        Kind::Frames => match postcard::from_bytes::<Vec<Frame>>(body) {
            Ok(frames) => snapshot_frame::write(&frames),
            Err(_) => return,
        },
    };
    let path = scratch_dir().join("received.snap");
    receive(&file, &path);
    clear(scratch_dir());
}

/// Receives `file` at `path` piece by piece; checks what passes.
fn receive(file: &[u8], path: &Path) {
    let mut writer = SnapshotChunkWriter::create(path).expect("create the snapshot file");
    for (i, piece) in file.chunks(PIECE_BYTES).enumerate() {
        let offset = (i * PIECE_BYTES) as u64;
        writer
            .write_piece(offset, piece, crc32fast::hash(piece))
            .expect("a piece in order with its checksum is taken");
    }
    match writer.finish() {
        Ok(info) => installs(path, file, &info),
        Err(e) => {
            assert!(e.is_corruption(), "refused, but not as corrupt: {e}");
            assert!(!path.exists(), "a refused snapshot was kept");
        }
    }
}

/// A verified snapshot installs, reads back and balances.
fn installs(path: &Path, file: &[u8], info: &SnapshotFileInfo) {
    assert!(info.size_bytes <= file.len() as u64);
    let again = verify_snapshot(path, info.group).expect("a verified snapshot verifies again");
    assert_eq!(again, *info);
    // The Raft layer compares the applied position with the snapshot's meta.
    let _ = AppliedState::from_stored(Some(&info.applied));
    let db = Db::with_engine(MemEngine::new(SyncMode::Immediate));
    let store = db.state_store(info.group);
    let applied = store
        .install_snapshot(path)
        .expect("a verified snapshot installs");
    assert_eq!(applied, info.applied);
    assert_eq!(
        store.open_applied().expect("reads"),
        Some(info.applied.clone())
    );
    let rows = store
        .dump()
        .expect("an installed snapshot's rows read back");
    if let Err(why) = books_balance(&rows) {
        panic!("a verified snapshot installed unbalanced books: {why}");
    }
    for id in rows.accounts.keys() {
        store
            .journal_page(id, JournalFrom::Seq(0), JOURNAL_LINES_MAX)
            .expect("an installed journal reads back");
    }
    point_reads_agree(&store, &rows);
}

/// The rows apply reads (by key) are the rows the check counted (by
/// scan): a row under a key we never write would be counted but not read.
fn point_reads_agree(store: &StateStore<MemEngine>, rows: &MemRows) {
    let read = store.rows();
    for (id, a) in &rows.accounts {
        assert_eq!(read.account(id).as_ref(), Some(a), "account {id}");
    }
    for ((id, hold), h) in &rows.holds {
        assert_eq!(read.hold(id, hold).as_ref(), Some(h), "hold {hold} of {id}");
    }
    for ((wallet, tx), r) in &rows.tx_records {
        assert_eq!(
            read.tx_record(wallet, tx).as_ref(),
            Some(r),
            "tx {tx} of {wallet}"
        );
    }
    for ((from, tx), t) in &rows.transfers {
        assert_eq!(
            read.pending_transfer(from, tx).as_ref(),
            Some(t),
            "transfer {tx}"
        );
    }
    for ((currency, which), amount) in &rows.system {
        assert_eq!(
            read.system_balance(*currency, *which),
            *amount,
            "{which:?} {currency}"
        );
    }
    for (currency, total) in &rows.players_total {
        assert_eq!(
            read.players_total(*currency),
            *total,
            "players' total {currency}"
        );
    }
    for (player, m) in &rows.players {
        assert_eq!(
            read.player_move(*player).as_ref(),
            Some(m),
            "player {player}"
        );
    }
    assert_eq!(read.meta(), rows.meta);
    read.finish().expect("the rows apply reads are readable");
}

/// What verification promised: per currency, the accounts hold what the
/// players' total says, and the system accounts owe exactly that.
fn books_balance(rows: &MemRows) -> Result<(), String> {
    let mut accounts: BTreeMap<Currency, i128> = BTreeMap::new();
    for (id, a) in &rows.accounts {
        *accounts.entry(id.currency).or_default() += i128::from(a.available) + i128::from(a.held);
    }
    let mut system: BTreeMap<Currency, i128> = BTreeMap::new();
    for ((currency, _), amount) in &rows.system {
        let sum = system.entry(*currency).or_default();
        *sum = sum.checked_add(*amount).ok_or("system overflow")?;
    }
    let currencies = accounts
        .keys()
        .chain(rows.players_total.keys())
        .chain(system.keys());
    for c in currencies {
        let held = accounts.get(c).copied().unwrap_or(0);
        let players = rows.players_total.get(c).copied().unwrap_or(0);
        let owed = system.get(c).copied().unwrap_or(0);
        if held != players || players.checked_add(owed) != Some(0) {
            return Err(format!(
                "{c}: accounts {held}, players {players}, system {owed}"
            ));
        }
    }
    Ok(())
}

/// A directory of this process for the received files, under
/// `GEOWALLET_FUZZ_SCRATCH` when set (`scripts/fuzz.sh` sets it and
/// removes it after the run), else in memory when the machine has
/// `/dev/shm` (every receive syncs its file twice), else the temp dir.
fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let base = match std::env::var_os("GEOWALLET_FUZZ_SCRATCH") {
            Some(dir) => PathBuf::from(dir),
            None if shm.is_dir() => shm.to_path_buf(),
            None => std::env::temp_dir(),
        };
        let dir = base.join(format!("geowallet-fuzz-snapshot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the scratch dir");
        dir
    })
}

/// Deletes what a receive and an install left (tables written for ingest).
fn clear(dir: &Path) {
    for entry in std::fs::read_dir(dir)
        .expect("list the scratch dir")
        .flatten()
    {
        let _ = std::fs::remove_file(entry.path());
    }
}

/// The snapshot stream of a group after `entries` were applied there.
pub fn snapshot_of(entries: &[geowallet_raft::Proposal]) -> Vec<u8> {
    let store = crate::apply::applied_store(entries);
    let dir = scratch_dir().join("seed");
    std::fs::create_dir_all(&dir).expect("create the seed dir");
    let checkpoint = dir.join("checkpoint");
    store
        .build_snapshot(&checkpoint)
        .expect("a snapshot builds");
    let file = dir.join("snapshot.snap");
    geowallet_storage::write_snapshot_file(&checkpoint, store.group(), &file)
        .expect("a snapshot file writes");
    let bytes = std::fs::read(&file).expect("read the snapshot file");
    std::fs::remove_dir_all(&dir).expect("remove the seed dir");
    bytes
}

/// Real snapshot files of the apply seeds' groups, as they are and as
/// frames (which must write back to the same bytes).
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, entries) in crate::apply::histories() {
        if name == "directory" {
            continue;
        }
        let file = snapshot_of(&entries);
        let frames = snapshot_frame::read(&file).expect("a snapshot file reads as frames");
        assert_eq!(
            snapshot_frame::write(&frames),
            file,
            "the fuzzer's copy of the snapshot format differs from storage's"
        );
        let mut raw = vec![Kind::Raw.byte()];
        raw.extend(&file);
        out.push((format!("{name}_raw"), raw));
        let mut framed = vec![Kind::Frames.byte()];
        framed.extend(postcard::to_stdvec(&frames).expect("frames encode"));
        out.push((format!("{name}_frames"), framed));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves the seeds pass the target's checks (they install and balance).
    #[test]
    fn seeds_pass() {
        for (name, input) in seeds() {
            println!("{name}");
            run(&input);
        }
    }
}
