//! Snapshots. Taking one is a checkpoint of the store (`Engine::checkpoint`:
//! RocksDB flushes its memtables and hard-links its table files), so the
//! cost does not grow with the group's state or journal. Sending one streams
//! the group's rows out of the checkpoint in the snapshot stream format:
//! `MAGIC` then frames of `len u32 LE, crc32 u32 LE, body`, where each body
//! is a postcard `Frame`: one `Header`, any number of `Rows` (at most
//! `ROWS_BYTES_MAX` each), one `End`. The receiver keeps the stream as a
//! file, verifies it, and installs it by writing the rows straight into
//! table files that the engine ingests whole (`Engine::ingest`). Memory
//! stays bounded whatever the size of the group.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::{Batch, Cf, Direction, Engine, EngineView};
use crate::keys::{MetaTag, group_end, group_prefix, meta_key};
use crate::mem_engine::{MEM_CHECKPOINT_FILE, MemView};
use crate::seal::unseal;
use crate::snapshot_books::SnapshotBooks;
use crate::{Db, GroupId, StorageError};

const MAGIC: &[u8; 8] = b"GWSNAP01";
/// Bytes of rows per frame at most (before encoding).
const ROWS_BYTES_MAX: usize = 256 << 10;
/// A frame larger than this is damage, not data.
const FRAME_BYTES_MAX: u32 = 16 << 20;

#[derive(Serialize, Deserialize)]
enum Frame {
    Header { group: u64, applied: Vec<u8> },
    Rows(Vec<Row>),
    End { rows: u64 },
}

#[derive(Serialize, Deserialize)]
struct Row {
    journal: bool,
    key: Vec<u8>,
    value: Vec<u8>,
}

/// What a snapshot file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFileInfo {
    /// The group the snapshot says it is of.
    pub group: GroupId,
    /// The applied Raft position (opaque bytes of the Raft layer).
    pub applied: Vec<u8>,
    pub rows: u64,
    pub size_bytes: u64,
}

pub(crate) fn io(
    context: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Io {
        context,
        path,
        source,
    }
}

fn write_frame(out: &mut impl Write, frame: &Frame, path: &Path) -> Result<u64, StorageError> {
    let body = postcard::to_stdvec(frame).map_err(|source| StorageError::Encode {
        what: "snapshot frame",
        source,
    })?;
    let len = u32::try_from(body.len()).expect("frame size bounded by ROWS_BYTES_MAX");
    out.write_all(&len.to_le_bytes())
        .map_err(io("write snapshot", path))?;
    out.write_all(&crc32fast::hash(&body).to_le_bytes())
        .map_err(io("write snapshot", path))?;
    out.write_all(&body).map_err(io("write snapshot", path))?;
    Ok(8 + body.len() as u64)
}

/// What a checkpoint snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// The applied Raft position (opaque bytes of the Raft layer).
    pub applied: Vec<u8>,
    /// Bytes of the checkpoint's files (shared with the live store by hard
    /// links until compaction rewrites them).
    pub size_bytes: u64,
}

/// Opens a checkpoint directory made by `Engine::checkpoint`, read-only.
pub fn open_checkpoint(dir: &Path) -> Result<Box<dyn EngineView + Send>, StorageError> {
    if dir.join(MEM_CHECKPOINT_FILE).exists() {
        return Ok(Box::new(MemView::open_checkpoint(dir)?));
    }
    #[cfg(feature = "rocksdb")]
    {
        Ok(Box::new(crate::rocks_engine::RocksCheckpoint::open(dir)?))
    }
    #[cfg(not(feature = "rocksdb"))]
    Err(StorageError::SnapshotCorrupt {
        path: dir.to_path_buf(),
        offset: 0,
        reason: "not a checkpoint this build can read".into(),
    })
}

/// Deletes a snapshot: a checkpoint directory or a snapshot file.
pub fn remove_snapshot(path: &Path) {
    let _ = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
}

/// The applied position of `group` in a checkpoint view; refuses a view
/// taken in the middle of an install (some of the new rows under the old
/// applied position: never a snapshot).
fn checkpoint_applied(view: &dyn EngineView, group: GroupId) -> Result<Vec<u8>, StorageError> {
    if view
        .get(Cf::Meta, &meta_key(group, MetaTag::SnapshotInstall))?
        .is_some()
    {
        return Err(StorageError::InstallInProgress { group });
    }
    let applied_key = meta_key(group, MetaTag::Applied);
    match view.get(Cf::Meta, &applied_key)? {
        Some(stored) => Ok(unseal(&stored, "applied position", &applied_key)?.to_vec()),
        None => Ok(Vec::new()),
    }
}

/// Takes a snapshot of `group` as a checkpoint directory at `dir`.
pub(crate) fn build<E: Engine>(
    db: &Db<E>,
    group: GroupId,
    dir: &Path,
) -> Result<CheckpointInfo, StorageError> {
    let tmp = dir.with_extension("tmp");
    remove_snapshot(&tmp);
    let result = build_checkpoint(db, group, &tmp, dir);
    if result.is_err() {
        remove_snapshot(&tmp);
    }
    result
}

fn build_checkpoint<E: Engine>(
    db: &Db<E>,
    group: GroupId,
    tmp: &Path,
    dir: &Path,
) -> Result<CheckpointInfo, StorageError> {
    db.engine().checkpoint(tmp)?;
    let applied = checkpoint_applied(open_checkpoint(tmp)?.as_ref(), group)?;
    let mut size_bytes = 0;
    for item in std::fs::read_dir(tmp).map_err(io("list checkpoint", tmp))? {
        let meta = item.and_then(|i| i.metadata());
        size_bytes += meta.map_err(io("list checkpoint", tmp))?.len();
    }
    File::open(tmp)
        .and_then(|d| d.sync_all())
        .map_err(io("sync checkpoint", tmp))?;
    rename_durably(tmp, dir)?;
    Ok(CheckpointInfo {
        applied,
        size_bytes,
    })
}

/// Renames `from` to `to` and syncs the directory, so the new name survives
/// a power loss (a rename is durable only once its directory is synced).
pub fn rename_durably(from: &Path, to: &Path) -> Result<(), StorageError> {
    std::fs::rename(from, to).map_err(io("rename", to))?;
    let dir = to.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("sync directory", dir))
}

/// Reads frames from a snapshot file, verifying every checksum.
struct FrameReader {
    input: BufReader<File>,
    path: PathBuf,
    offset: u64,
}

impl FrameReader {
    fn open(path: &Path) -> Result<FrameReader, StorageError> {
        let file = File::open(path).map_err(io("open snapshot", path))?;
        let mut reader = FrameReader {
            input: BufReader::new(file),
            path: path.to_path_buf(),
            offset: 0,
        };
        let mut magic = [0u8; 8];
        reader.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(reader.corrupt("not a geowallet snapshot (bad magic)"));
        }
        Ok(reader)
    }

    fn corrupt(&self, reason: &str) -> StorageError {
        StorageError::SnapshotCorrupt {
            path: self.path.clone(),
            offset: self.offset,
            reason: reason.to_string(),
        }
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), StorageError> {
        self.input
            .read_exact(buf)
            .map_err(|_| self.corrupt("file ends early"))?;
        self.offset += buf.len() as u64;
        Ok(())
    }

    fn next(&mut self) -> Result<Frame, StorageError> {
        let mut head = [0u8; 8];
        self.read_exact(&mut head)?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if len > FRAME_BYTES_MAX {
            return Err(self.corrupt("frame length out of range"));
        }
        let mut body = vec![0u8; len as usize];
        self.read_exact(&mut body)?;
        if crc32fast::hash(&body) != crc {
            return Err(self.corrupt("frame checksum mismatch"));
        }
        postcard::from_bytes(&body).map_err(|_| self.corrupt("frame does not decode"))
    }
}

/// Reads the whole file, checking every frame; returns what it holds.
pub(crate) fn verify(path: &Path) -> Result<SnapshotFileInfo, StorageError> {
    let mut reader = FrameReader::open(path)?;
    let Frame::Header { group, applied } = reader.next()? else {
        return Err(reader.corrupt("first frame is not a header"));
    };
    let mut books = SnapshotBooks::new(GroupId(group));
    let mut rows = 0u64;
    loop {
        match reader.next()? {
            Frame::Rows(r) => {
                rows += r.len() as u64;
                for row in &r {
                    books
                        .row(row.journal, &row.key, &row.value)
                        .map_err(|e| reader.corrupt(&e))?;
                }
            }
            Frame::End { rows: expected } if expected == rows => {
                books.balanced().map_err(|e| reader.corrupt(&e))?;
                return Ok(SnapshotFileInfo {
                    group: GroupId(group),
                    applied,
                    rows,
                    size_bytes: reader.offset,
                });
            }
            Frame::End { .. } => return Err(reader.corrupt("row count does not match")),
            Frame::Header { .. } => return Err(reader.corrupt("second header")),
        }
    }
}

/// Verifies the snapshot file at `path` for group `group`, reading it
/// whole: frame checksums, every row in the group's key range and
/// readable, keys ascending, and balanced books (each currency's players' total is the
/// sum of its accounts and the negative of the system accounts). A
/// snapshot from a peer passes this before anything of ours is deleted.
pub fn verify_for(path: &Path, group: GroupId) -> Result<SnapshotFileInfo, StorageError> {
    let info = verify(path)?;
    if info.group != group {
        return Err(StorageError::SnapshotCorrupt {
            path: path.to_path_buf(),
            offset: 0,
            reason: format!("a snapshot of group {} sent for group {group}", info.group),
        });
    }
    Ok(info)
}

pub(crate) fn install<E: Engine>(
    db: &Db<E>,
    group: GroupId,
    path: &Path,
) -> Result<Vec<u8>, StorageError> {
    install_upto(db, group, path, None)
}

/// Installs like [`install`], but with `Some(cf)` stops as a crash would
/// just before ingesting `cf`'s rows (the marker stays, the group's old rows
/// deleted, maybe some new ones in).
pub(crate) fn install_upto<E: Engine>(
    db: &Db<E>,
    group: GroupId,
    path: &Path,
    stop_before: Option<Cf>,
) -> Result<Vec<u8>, StorageError> {
    let info = verify_for(path, group)?;
    let marker = path.to_string_lossy().into_owned();
    let mut batch = Batch::default();
    Db::<E>::meta_put(
        &mut batch,
        group,
        MetaTag::SnapshotInstall,
        marker.as_bytes(),
    );
    db.write(batch, true)?;

    let mut batch = Batch::default();
    for cf in [Cf::State, Cf::Journal] {
        batch.delete_range(cf, group_prefix(group), group_end(group));
    }
    db.write(batch, true)?;

    // One table file per column family, written straight from the file and
    // ingested whole: newer than the range deletes above.
    for (cf, journal) in STREAMED {
        if stop_before == Some(cf) {
            return Ok(info.applied);
        }
        let table = path.with_extension(format!("{}.sst", cf.name()));
        let rows = db.engine().write_table(cf, &table, &mut |sink| {
            let mut reader = FrameReader::open(path)?;
            let _header = reader.next()?;
            while let Frame::Rows(rows) = reader.next()? {
                for row in rows.into_iter().filter(|r| r.journal == journal) {
                    if row.key.get(..8) != Some(&group_prefix(group)[..]) {
                        return Err(reader.corrupt("row of another group"));
                    }
                    sink(&row.key, &row.value)?;
                }
            }
            Ok(())
        });
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                let _ = std::fs::remove_file(&table);
                return Err(e);
            }
        };
        if rows > 0 {
            db.engine().ingest(cf, &table)?;
        }
    }
    let mut batch = Batch::default();
    Db::<E>::meta_put(&mut batch, group, MetaTag::Applied, &info.applied);
    batch.delete(Cf::Meta, meta_key(group, MetaTag::SnapshotInstall));
    db.write(batch, true)?;
    Ok(info.applied)
}

/// Reads a snapshot in pieces for sending over the network: a snapshot
/// file as it is, or a checkpoint directory as the group's rows in the
/// snapshot stream format, generated as the pieces are asked for.
pub struct SnapshotChunkReader {
    source: Source,
    path: PathBuf,
    offset: u64,
}

enum Source {
    File(File),
    Checkpoint(CheckpointFrames),
}

/// The snapshot stream of one group, read out of a checkpoint lazily.
struct CheckpointFrames {
    view: Box<dyn EngineView + Send>,
    group: GroupId,
    /// Encoded bytes not handed out yet.
    pending: Vec<u8>,
    next: Next,
    rows: u64,
}

enum Next {
    Header,
    /// Rows of the column family at this index of `STREAMED`, after this key.
    Rows(usize, Option<Vec<u8>>),
    End,
    Done,
}

/// Column families a snapshot carries, in stream order (journal = true).
const STREAMED: [(Cf, bool); 2] = [(Cf::State, false), (Cf::Journal, true)];

fn frame_bytes(frame: &Frame) -> Result<Vec<u8>, StorageError> {
    let mut out = Vec::new();
    write_frame(&mut out, frame, Path::new("snapshot stream"))?;
    Ok(out)
}

impl CheckpointFrames {
    /// Appends at least one more frame to `pending`, unless the stream ended.
    fn refill(&mut self) -> Result<(), StorageError> {
        match std::mem::replace(&mut self.next, Next::Done) {
            Next::Header => {
                self.pending.extend_from_slice(MAGIC);
                let applied = checkpoint_applied(self.view.as_ref(), self.group)?;
                let header = Frame::Header {
                    group: self.group.0,
                    applied,
                };
                self.pending.extend(frame_bytes(&header)?);
                self.next = Next::Rows(0, None);
            }
            Next::Rows(i, after) => {
                let (cf, journal) = STREAMED[i];
                let lower = match after {
                    Some(mut k) => {
                        k.push(0);
                        k
                    }
                    None => group_prefix(self.group).to_vec(),
                };
                let (mut rows, mut bytes) = (Vec::new(), 0usize);
                let end = group_end(self.group);
                self.view
                    .scan(cf, &lower, &end, Direction::Forward, &mut |key, value| {
                        bytes += key.len() + value.len();
                        rows.push(Row {
                            journal,
                            key: key.to_vec(),
                            value: value.to_vec(),
                        });
                        Ok(bytes < ROWS_BYTES_MAX)
                    })?;
                let full = bytes >= ROWS_BYTES_MAX;
                self.next = match (full, rows.last()) {
                    (true, Some(last)) => Next::Rows(i, Some(last.key.clone())),
                    _ if i + 1 < STREAMED.len() => Next::Rows(i + 1, None),
                    _ => Next::End,
                };
                if !rows.is_empty() {
                    self.rows += rows.len() as u64;
                    self.pending.extend(frame_bytes(&Frame::Rows(rows))?);
                }
            }
            Next::End => {
                self.pending
                    .extend(frame_bytes(&Frame::End { rows: self.rows })?);
            }
            Next::Done => {}
        }
        Ok(())
    }
}

impl SnapshotChunkReader {
    /// Opens the snapshot of `group` at `path` (a file or a checkpoint).
    pub fn open(path: &Path, group: GroupId) -> Result<SnapshotChunkReader, StorageError> {
        let source = if path.is_dir() {
            Source::Checkpoint(CheckpointFrames {
                view: open_checkpoint(path)?,
                group,
                pending: Vec::new(),
                next: Next::Header,
                rows: 0,
            })
        } else {
            Source::File(File::open(path).map_err(io("open snapshot", path))?)
        };
        Ok(SnapshotChunkReader {
            source,
            path: path.to_path_buf(),
            offset: 0,
        })
    }

    /// The next piece of at most `max_bytes` with its offset and crc32, or
    /// `None` at the end of the snapshot.
    pub fn next_piece(
        &mut self,
        max_bytes: usize,
    ) -> Result<Option<(u64, Vec<u8>, u32)>, StorageError> {
        let buf = match &mut self.source {
            Source::File(file) => {
                let mut buf = vec![0u8; max_bytes];
                let n = file
                    .read(&mut buf)
                    .map_err(io("read snapshot", &self.path))?;
                buf.truncate(n);
                buf
            }
            Source::Checkpoint(frames) => {
                while frames.pending.len() < max_bytes && !matches!(frames.next, Next::Done) {
                    frames.refill()?;
                }
                let n = frames.pending.len().min(max_bytes);
                frames.pending.drain(..n).collect()
            }
        };
        if buf.is_empty() {
            return Ok(None);
        }
        let offset = self.offset;
        self.offset += buf.len() as u64;
        let crc = crc32fast::hash(&buf);
        Ok(Some((offset, buf, crc)))
    }
}

/// Writes the snapshot of `group` at `source` (a checkpoint or a file) to a
/// snapshot file at `dest`, verified.
pub fn write_snapshot_file(
    source: &Path,
    group: GroupId,
    dest: &Path,
) -> Result<SnapshotFileInfo, StorageError> {
    let mut reader = SnapshotChunkReader::open(source, group)?;
    let mut writer = SnapshotChunkWriter::create(dest)?;
    while let Some((offset, data, crc)) = reader.next_piece(1 << 20)? {
        writer.write_piece(offset, &data, crc)?;
    }
    writer.finish()
}

/// Receives a snapshot file piece by piece, checking each piece's crc32 and
/// offset; `finish` syncs it and moves it into place. Dropped unfinished
/// (a failed receive), it deletes its partial file.
pub struct SnapshotChunkWriter {
    out: Option<BufWriter<File>>,
    tmp: PathBuf,
    path: PathBuf,
    offset: u64,
}

impl Drop for SnapshotChunkWriter {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl SnapshotChunkWriter {
    pub fn create(path: &Path) -> Result<SnapshotChunkWriter, StorageError> {
        let tmp = path.with_extension("part");
        let file = File::create(&tmp).map_err(io("create snapshot", &tmp))?;
        Ok(SnapshotChunkWriter {
            out: Some(BufWriter::new(file)),
            tmp,
            path: path.to_path_buf(),
            offset: 0,
        })
    }

    pub fn write_piece(&mut self, offset: u64, data: &[u8], crc: u32) -> Result<(), StorageError> {
        let corrupt = |reason: &str| StorageError::SnapshotCorrupt {
            path: self.tmp.clone(),
            offset,
            reason: reason.to_string(),
        };
        if offset != self.offset {
            return Err(corrupt("piece out of order"));
        }
        if crc32fast::hash(data) != crc {
            return Err(corrupt("piece checksum mismatch in transit"));
        }
        let out = self
            .out
            .as_mut()
            .expect("an unfinished writer has its file");
        out.write_all(data)
            .map_err(io("write snapshot", &self.tmp))?;
        self.offset += data.len() as u64;
        Ok(())
    }

    /// Syncs, verifies the whole file and renames it to its final path. On
    /// any failure the partial file is deleted.
    pub fn finish(mut self) -> Result<SnapshotFileInfo, StorageError> {
        let out = self.out.take().expect("an unfinished writer has its file");
        let result = finish_file(out, &self.tmp, &self.path);
        if result.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        result
    }
}

fn finish_file(
    out: BufWriter<File>,
    tmp: &Path,
    path: &Path,
) -> Result<SnapshotFileInfo, StorageError> {
    let file = out.into_inner().map_err(|e| StorageError::Io {
        context: "flush snapshot",
        path: tmp.to_path_buf(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io("sync snapshot", tmp))?;
    let info = verify(tmp)?;
    rename_durably(tmp, path)?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use geowallet_ledger::{Account, AccountId, Currency, PlayerId, SystemAccount};

    use super::*;
    use crate::keys::{account_key, ledger_meta_key, players_total_key, system_key};
    use crate::seal::{encode, seal};
    use crate::{MemEngine, SyncMode};

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    fn account_row(group: GroupId, player: u64, available: u64) -> Row {
        let id = AccountId {
            player: PlayerId(player),
            currency: eur(),
        };
        let account = Account {
            available,
            ..Account::default()
        };
        Row {
            journal: false,
            key: account_key(group, &id),
            value: encode("account", &account).unwrap(),
        }
    }

    fn money_row(key: Vec<u8>, amount: i128) -> Row {
        Row {
            journal: false,
            key,
            value: seal(&amount.to_le_bytes()),
        }
    }

    /// A snapshot file of `group`'s header with `rows`, as a peer could
    /// send it (every frame checksum right).
    fn forged(dir: &Path, name: &str, group: GroupId, rows: Vec<Row>) -> PathBuf {
        let path = dir.join(name);
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        let n = rows.len() as u64;
        for frame in [
            Frame::Header {
                group: group.0,
                applied: vec![],
            },
            Frame::Rows(rows),
            Frame::End { rows: n },
        ] {
            write_frame(&mut out, &frame, &path).unwrap();
        }
        std::fs::write(&path, out).unwrap();
        path
    }

    /// Balanced rows of `group`, in key order: player 1 holds `amount`,
    /// the gateway owes it, the players' total says it.
    fn balanced(group: GroupId, amount: u64) -> Vec<Row> {
        vec![
            account_row(group, 1, amount),
            money_row(
                system_key(group, eur(), SystemAccount::Gateway),
                -i128::from(amount),
            ),
            money_row(players_total_key(group, eur()), i128::from(amount)),
        ]
    }

    // Proves a snapshot is refused before anything of the group is deleted
    // when its books do not balance, its accounts disagree with the
    // players' total, it holds another group's rows or names another
    // group; a balanced one of the right group installs.
    #[test]
    fn forged_snapshots_are_refused_before_any_row_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::with_engine(MemEngine::new(SyncMode::Immediate));
        let (g, other) = (GroupId(1), GroupId(2));
        let mut batch = Batch::default();
        for row in balanced(g, 700) {
            batch.put(Cf::State, row.key, row.value);
        }
        db.write(batch, true).unwrap();
        let before = db.state_store(g).dump().unwrap();
        assert_eq!(before.accounts.len(), 1);

        let mut unbalanced = balanced(g, 500);
        unbalanced.remove(1);
        let mut minted = balanced(g, 500);
        minted[0] = account_row(g, 1, 1_000_000);
        let mut foreign = balanced(g, 500);
        foreign.push(account_row(other, 9, 0));
        let cases = [
            ("unbalanced", g, unbalanced, "do not balance"),
            ("minted", g, minted, "the accounts hold 1000000"),
            ("foreign", g, foreign, "a row outside group g1"),
            (
                "other-header",
                other,
                balanced(other, 500),
                "a snapshot of group g2",
            ),
        ];
        for (name, header, rows, why) in cases {
            let path = forged(dir.path(), name, header, rows);
            let err = install(&db, g, &path).unwrap_err().to_string();
            assert!(err.contains(why), "{name}: {err}");
            assert_eq!(db.state_store(g).dump().unwrap(), before, "{name}");
        }
        let path = forged(dir.path(), "good", g, balanced(g, 500));
        install(&db, g, &path).unwrap();
        let after = db.state_store(g).dump().unwrap();
        assert_eq!(after.players_total.get(&eur()), Some(&500));
    }

    // Proves a snapshot is refused when a row's key names a row we write
    // but is not the key we write for it (other currency padding, bytes
    // after the account): the check would count such a row while apply's
    // point reads miss it, and the next entry's books would not balance
    // (found by the `snapshot` fuzz target: a gateway row under a padded
    // currency installed, then apply panicked).
    #[test]
    fn rows_under_keys_we_never_write_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::with_engine(MemEngine::new(SyncMode::Immediate));
        let g = GroupId(1);
        let padded = |mut rows: Vec<Row>, i: usize, at: usize| {
            rows[i].key[at] = b'@';
            rows
        };
        let trailing = |mut rows: Vec<Row>, i: usize| {
            rows[i].key.push(0);
            rows
        };
        // balanced(): [account, gateway, players' total]; currency bytes
        // start at 17, 9 and 9 (the code is 3 bytes, then NUL padding).
        let cases = [
            ("account-padded", padded(balanced(g, 500), 0, 17 + 5)),
            ("account-trailing", trailing(balanced(g, 500), 0)),
            ("gateway-padded", padded(balanced(g, 500), 1, 9 + 5)),
            ("gateway-trailing", trailing(balanced(g, 500), 1)),
            ("total-padded", padded(balanced(g, 500), 2, 9 + 4)),
        ];
        for (name, rows) in cases {
            let path = forged(dir.path(), name, g, rows);
            let err = install(&db, g, &path).unwrap_err();
            assert!(err.is_corruption(), "{name}: {err}");
        }
        let mut meta = balanced(g, 500);
        meta.push(Row {
            journal: false,
            key: [ledger_meta_key(g), vec![1]].concat(),
            value: encode("ledger meta", &geowallet_ledger::Meta::default()).unwrap(),
        });
        let path = forged(dir.path(), "meta-trailing", g, meta);
        assert!(install(&db, g, &path).unwrap_err().is_corruption());
        let path = forged(dir.path(), "good", g, balanced(g, 500));
        install(&db, g, &path).unwrap();
    }

    // Proves a snapshot is refused, with the group's rows untouched, when
    // a key repeats or goes back: install writes each column family's rows
    // to one table file, which RocksDB builds from ascending keys only (it
    // would fail after the group's rows were deleted), and a repeated row
    // was counted twice by the books (found by the `snapshot` fuzz target:
    // a second gateway row balanced the books the store then did not).
    #[test]
    fn rows_out_of_key_order_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::with_engine(MemEngine::new(SyncMode::Immediate));
        let g = GroupId(1);
        let mut batch = Batch::default();
        for row in balanced(g, 700) {
            batch.put(Cf::State, row.key, row.value);
        }
        db.write(batch, true).unwrap();
        let before = db.state_store(g).dump().unwrap();
        // The gateway row twice, each owing half.
        let mut repeated = balanced(g, 500);
        let gateway = repeated[1].key.clone();
        repeated[1] = money_row(gateway.clone(), -250);
        repeated.insert(1, money_row(gateway, -250));
        let mut reversed = balanced(g, 500);
        reversed.reverse();
        for (name, rows) in [("repeated", repeated), ("reversed", reversed)] {
            let path = forged(dir.path(), name, g, rows);
            let err = install(&db, g, &path).unwrap_err().to_string();
            assert!(err.contains("out of key order"), "{name}: {err}");
            assert_eq!(db.state_store(g).dump().unwrap(), before, "{name}");
        }
    }

    // Proves system balances whose sum overflows are refused, not summed
    // with a panic or wrapped into balancing (found by the `snapshot` fuzz
    // target).
    #[test]
    fn system_balances_that_overflow_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::with_engine(MemEngine::new(SyncMode::Immediate));
        let g = GroupId(1);
        let system = |which| money_row(system_key(g, eur(), which), i128::MAX);
        let rows = vec![
            system(SystemAccount::House),
            system(SystemAccount::Gateway),
            money_row(players_total_key(g, eur()), 2),
        ];
        let path = forged(dir.path(), "overflow", g, rows);
        let err = install(&db, g, &path).unwrap_err().to_string();
        assert!(err.contains("overflow"), "{err}");
    }
}
