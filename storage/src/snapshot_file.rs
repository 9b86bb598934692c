//! Snapshot files: `MAGIC` then frames of `len u32 LE, crc32 u32 LE, body`,
//! where each body is a postcard `Frame`: one `Header`, any number of
//! `Rows` (at most `ROWS_BYTES_MAX` each), one `End`. Built from a RocksDB
//! snapshot and installed in bounded batches: memory stays bounded whatever
//! the size of the group.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::{Batch, Cf, Direction, Engine, EngineView};
use crate::keys::{MetaTag, group_end, group_prefix, meta_key};
use crate::seal::unseal;
use crate::{Db, GroupId, StorageError};

const MAGIC: &[u8; 8] = b"GWSNAP01";
/// Bytes of rows per frame at most (before encoding).
const ROWS_BYTES_MAX: usize = 256 << 10;
/// Bytes per write batch at most while installing.
const INSTALL_BATCH_BYTES_MAX: usize = 4 << 20;
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
    /// The applied Raft position (opaque bytes of the Raft layer).
    pub applied: Vec<u8>,
    pub rows: u64,
    pub size_bytes: u64,
}

fn io(context: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StorageError {
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

/// Writes the rows of `group` from one engine view into frames.
fn write_rows(
    view: &dyn EngineView,
    group: GroupId,
    out: &mut BufWriter<File>,
    tmp: &Path,
) -> Result<(u64, u64), StorageError> {
    let (mut rows, mut size) = (0u64, 0u64);
    for (cf, journal) in [(Cf::State, false), (Cf::Journal, true)] {
        let mut pending = Vec::new();
        let mut pending_bytes = 0usize;
        let (lower, upper) = (group_prefix(group), group_end(group));
        view.scan(cf, &lower, &upper, Direction::Forward, &mut |key, value| {
            pending_bytes += key.len() + value.len();
            pending.push(Row {
                journal,
                key: key.to_vec(),
                value: value.to_vec(),
            });
            rows += 1;
            if pending_bytes >= ROWS_BYTES_MAX {
                size += write_frame(out, &Frame::Rows(std::mem::take(&mut pending)), tmp)?;
                pending_bytes = 0;
            }
            Ok(true)
        })?;
        if !pending.is_empty() {
            size += write_frame(out, &Frame::Rows(pending), tmp)?;
        }
    }
    Ok((rows, size))
}

pub(crate) fn build<E: Engine>(
    db: &Db<E>,
    group: GroupId,
    path: &Path,
) -> Result<SnapshotFileInfo, StorageError> {
    let tmp = path.with_extension("tmp");
    let result = build_file(db, group, &tmp, path);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn build_file<E: Engine>(
    db: &Db<E>,
    group: GroupId,
    tmp: &Path,
    path: &Path,
) -> Result<SnapshotFileInfo, StorageError> {
    let tmp = tmp.to_path_buf();
    let file = File::create(&tmp).map_err(io("create snapshot", &tmp))?;
    let mut out = BufWriter::new(file);
    out.write_all(MAGIC).map_err(io("write snapshot", &tmp))?;
    let mut info = SnapshotFileInfo {
        applied: Vec::new(),
        rows: 0,
        size_bytes: 8,
    };
    db.engine().with_snapshot(&mut |view| {
        // A view in the middle of an install holds some of the new rows under
        // the old applied position: never label that a snapshot.
        let marker_key = meta_key(group, MetaTag::SnapshotInstall);
        if view.get(Cf::Meta, &marker_key)?.is_some() {
            return Err(StorageError::InstallInProgress { group });
        }
        let applied_key = meta_key(group, MetaTag::Applied);
        if let Some(stored) = view.get(Cf::Meta, &applied_key)? {
            info.applied = unseal(&stored, "applied position", &applied_key)?.to_vec();
        }
        let header = Frame::Header {
            group: group.0,
            applied: info.applied.clone(),
        };
        info.size_bytes += write_frame(&mut out, &header, &tmp)?;
        let (rows, size) = write_rows(view, group, &mut out, &tmp)?;
        info.rows = rows;
        info.size_bytes += size;
        Ok(())
    })?;
    info.size_bytes += write_frame(&mut out, &Frame::End { rows: info.rows }, &tmp)?;
    let file = out.into_inner().map_err(|e| StorageError::Io {
        context: "flush snapshot",
        path: tmp.clone(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io("sync snapshot", &tmp))?;
    rename_durably(&tmp, path)?;
    Ok(info)
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
    let Frame::Header { applied, .. } = reader.next()? else {
        return Err(reader.corrupt("first frame is not a header"));
    };
    let mut rows = 0u64;
    loop {
        match reader.next()? {
            Frame::Rows(r) => rows += r.len() as u64,
            Frame::End { rows: expected } if expected == rows => {
                return Ok(SnapshotFileInfo {
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

pub(crate) fn install<E: Engine>(
    db: &Db<E>,
    group: GroupId,
    path: &Path,
) -> Result<Vec<u8>, StorageError> {
    install_upto(db, group, path, None)
}

/// Installs like [`install`], but with `Some(n)` stops after writing `n`
/// rows, as a crash would: the marker stays, the group half replaced.
pub(crate) fn install_upto<E: Engine>(
    db: &Db<E>,
    group: GroupId,
    path: &Path,
    rows_max: Option<u64>,
) -> Result<Vec<u8>, StorageError> {
    let info = verify(path)?;
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
    db.write(batch, false)?;

    let mut reader = FrameReader::open(path)?;
    let _header = reader.next()?;
    let mut batch = Batch::default();
    let mut written = 0u64;
    while let Frame::Rows(rows) = reader.next()? {
        for row in rows {
            if row.key.get(..8) != Some(&group_prefix(group)[..]) {
                return Err(reader.corrupt("row of another group"));
            }
            if rows_max.is_some_and(|max| written >= max) {
                db.write(batch, false)?;
                return Ok(info.applied);
            }
            batch.put(
                if row.journal { Cf::Journal } else { Cf::State },
                row.key,
                row.value,
            );
            written += 1;
        }
        if batch.size_bytes() >= INSTALL_BATCH_BYTES_MAX {
            db.write(std::mem::take(&mut batch), false)?;
        }
    }
    Db::<E>::meta_put(&mut batch, group, MetaTag::Applied, &info.applied);
    batch.delete(Cf::Meta, meta_key(group, MetaTag::SnapshotInstall));
    db.write(batch, true)?;
    Ok(info.applied)
}

/// Reads a snapshot file in pieces for sending over the network.
pub struct SnapshotChunkReader {
    file: File,
    path: PathBuf,
    offset: u64,
}

impl SnapshotChunkReader {
    pub fn open(path: &Path) -> Result<SnapshotChunkReader, StorageError> {
        let file = File::open(path).map_err(io("open snapshot", path))?;
        Ok(SnapshotChunkReader {
            file,
            path: path.to_path_buf(),
            offset: 0,
        })
    }

    /// The next piece of at most `max_bytes` with its offset and crc32, or
    /// `None` at the end of the file.
    pub fn next_piece(
        &mut self,
        max_bytes: usize,
    ) -> Result<Option<(u64, Vec<u8>, u32)>, StorageError> {
        let mut buf = vec![0u8; max_bytes];
        let n = self
            .file
            .read(&mut buf)
            .map_err(io("read snapshot", &self.path))?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        let offset = self.offset;
        self.offset += n as u64;
        let crc = crc32fast::hash(&buf);
        Ok(Some((offset, buf, crc)))
    }
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
