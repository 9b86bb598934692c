//! An in-memory `Engine` with the crash semantics of a real disk, for the
//! simulator and for tests: every write is visible at once, but survives a
//! crash only once synced. Faults are injected on purpose: lost unsynced
//! writes (or a prefix of them kept), a torn last write, bit flips, and
//! syncs that happen late (the caller decides when `sync` runs: slow fsync).
//! No threads and no clock: the simulator drives it deterministically.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::engine::{Batch, BatchOp, Cf, Direction, Engine, EngineView, Sink, Visit};
use crate::snapshot_file::io;
use crate::{StorageError, SyncCallback};

type Map = BTreeMap<(Cf, Vec<u8>), Vec<u8>>;

/// When `after_sync` callbacks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// At once: every write is durable when written (an ideal disk).
    Immediate,
    /// Only when the owner calls `MemEngine::sync`.
    Manual,
    /// Like `Manual`, but a broken disk: every sync is acknowledged, yet only
    /// every `LYING_SYNC_PERIOD`-th one makes anything durable (a write cache
    /// that ignores flushes). Only for proving the simulator catches lost
    /// acknowledged writes.
    Lying,
}

/// How often a `SyncMode::Lying` engine really syncs.
pub const LYING_SYNC_PERIOD: u64 = 256;

/// What a crash does to the writes that were not synced yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CrashFaults {
    /// How many of the unsynced batches (oldest first) reached the disk
    /// anyway; the rest are lost. Each batch survives whole or not at all.
    pub unsynced_batches_kept: usize,
    /// The last value written by the last surviving unsynced batch is cut in
    /// half (a torn write): checksums above must catch it.
    pub tear_last_write: bool,
}

#[derive(Default)]
struct Inner {
    live: Map,
    durable: Map,
    unsynced: Vec<Batch>,
    waiting: Vec<SyncCallback>,
    syncs: u64,
}

/// See the module documentation.
pub struct MemEngine {
    inner: Mutex<Inner>,
    mode: SyncMode,
}

fn apply(map: &mut Map, op: &BatchOp) {
    match op {
        BatchOp::Put(cf, k, v) => {
            map.insert((*cf, k.clone()), v.clone());
        }
        BatchOp::Delete(cf, k) => {
            map.remove(&(*cf, k.clone()));
        }
        BatchOp::DeleteRange(cf, from, to) => {
            let doomed: Vec<_> = map
                .range((
                    Bound::Included((*cf, from.clone())),
                    Bound::Excluded((*cf, to.clone())),
                ))
                .map(|(k, _)| k.clone())
                .collect();
            for k in doomed {
                map.remove(&k);
            }
        }
    }
}

fn collect(
    map: &Map,
    cf: Cf,
    lower: &[u8],
    upper: &[u8],
    direction: Direction,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let range = map.range((
        Bound::Included((cf, lower.to_vec())),
        Bound::Excluded((cf, upper.to_vec())),
    ));
    let rows = range.map(|((_, k), v)| (k.clone(), v.clone()));
    match direction {
        Direction::Forward => rows.collect(),
        Direction::Reverse => rows.rev().collect(),
    }
}

fn visit_rows(rows: Vec<(Vec<u8>, Vec<u8>)>, visit: &mut Visit<'_>) -> Result<(), StorageError> {
    for (k, v) in rows {
        if !visit(&k, &v)? {
            break;
        }
    }
    Ok(())
}

impl MemEngine {
    pub fn new(mode: SyncMode) -> Arc<MemEngine> {
        Arc::new(MemEngine {
            inner: Mutex::new(Inner::default()),
            mode,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes every write so far durable and runs the waiting callbacks.
    /// Returns how many callbacks ran.
    pub fn sync(&self) -> usize {
        let waiting = {
            let mut inner = self.lock();
            let inner = &mut *inner;
            inner.syncs += 1;
            if self.mode != SyncMode::Lying || inner.syncs.is_multiple_of(LYING_SYNC_PERIOD) {
                for batch in inner.unsynced.drain(..) {
                    for op in &batch.ops {
                        apply(&mut inner.durable, op);
                    }
                }
            }
            std::mem::take(&mut inner.waiting)
        };
        let n = waiting.len();
        for cb in waiting {
            cb(Ok(()));
        }
        n
    }

    /// The process dies: what readers see afterwards is what was durable,
    /// plus whatever `faults` says reached the disk. Waiting callbacks are
    /// dropped without running (nobody is left to hear them).
    pub fn crash(&self, faults: CrashFaults) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let kept = faults.unsynced_batches_kept.min(inner.unsynced.len());
        let mut disk = inner.durable.clone();
        for batch in &inner.unsynced[..kept] {
            for op in &batch.ops {
                apply(&mut disk, op);
            }
        }
        if faults.tear_last_write
            && let Some(BatchOp::Put(cf, k, _)) = inner.unsynced[..kept]
                .last()
                .and_then(|b| b.ops.iter().rev().find(|op| matches!(op, BatchOp::Put(..))))
            && let Some(v) = disk.get_mut(&(*cf, k.clone()))
        {
            v.truncate(v.len() / 2);
        }
        inner.durable = disk.clone();
        inner.live = disk;
        inner.unsynced.clear();
        inner.waiting.clear();
    }

    /// Flips one bit of the stored value at `key` (live and durable copies):
    /// damage a checksum must catch. Returns false if there is no such value.
    pub fn flip_bit(&self, cf: Cf, key: &[u8], bit: usize) -> bool {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let mut flipped = false;
        for map in [&mut inner.live, &mut inner.durable] {
            if let Some(v) = map.get_mut(&(cf, key.to_vec()))
                && !v.is_empty()
            {
                let bit = bit % (v.len() * 8);
                v[bit / 8] ^= 1 << (bit % 8);
                flipped = true;
            }
        }
        flipped
    }

    /// Keys present in `cf`, in order (to pick fault targets).
    pub fn keys(&self, cf: Cf) -> Vec<Vec<u8>> {
        self.lock()
            .live
            .keys()
            .filter(|(c, _)| *c == cf)
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// How many syncs have run.
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }
}

impl EngineView for MemEngine {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.lock().live.get(&(cf, key.to_vec())).cloned())
    }

    fn scan(
        &self,
        cf: Cf,
        lower: &[u8],
        upper: &[u8],
        direction: Direction,
        visit: &mut Visit<'_>,
    ) -> Result<(), StorageError> {
        // Copy out first: a visitor may call back into the engine.
        let rows = collect(&self.lock().live, cf, lower, upper, direction);
        visit_rows(rows, visit)
    }
}

pub(crate) struct MemView {
    map: Map,
}

/// The one file of a `MemEngine` checkpoint directory.
pub(crate) const MEM_CHECKPOINT_FILE: &str = "mem-checkpoint";

/// Writes `rows` to `path` as crc32 + postcard, synced.
fn write_rows_file<T: serde::Serialize>(path: &Path, rows: &T) -> Result<(), StorageError> {
    let body = postcard::to_stdvec(rows).map_err(|source| StorageError::Encode {
        what: "in-memory table",
        source,
    })?;
    let mut bytes = crc32fast::hash(&body).to_le_bytes().to_vec();
    bytes.extend_from_slice(&body);
    std::fs::write(path, bytes).map_err(io("write", path))?;
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io("sync", path))
}

fn read_rows_file<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StorageError> {
    let bytes = std::fs::read(path).map_err(io("read", path))?;
    let corrupt = |reason: &str| StorageError::SnapshotCorrupt {
        path: path.to_path_buf(),
        offset: 0,
        reason: reason.to_string(),
    };
    let (crc, body) = bytes
        .split_at_checked(4)
        .ok_or_else(|| corrupt("too short"))?;
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err(corrupt("checksum mismatch"));
    }
    postcard::from_bytes(body).map_err(|_| corrupt("does not decode"))
}

impl MemView {
    /// Opens a checkpoint directory made by `MemEngine::checkpoint`.
    pub(crate) fn open_checkpoint(dir: &Path) -> Result<MemView, StorageError> {
        let rows: Vec<(u8, Vec<u8>, Vec<u8>)> = read_rows_file(&dir.join(MEM_CHECKPOINT_FILE))?;
        let map = rows
            .into_iter()
            .filter_map(|(cf, k, v)| Some(((*Cf::ALL.get(usize::from(cf))?, k), v)))
            .collect();
        Ok(MemView { map })
    }
}

impl EngineView for MemView {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.map.get(&(cf, key.to_vec())).cloned())
    }

    fn scan(
        &self,
        cf: Cf,
        lower: &[u8],
        upper: &[u8],
        direction: Direction,
        visit: &mut Visit<'_>,
    ) -> Result<(), StorageError> {
        visit_rows(collect(&self.map, cf, lower, upper, direction), visit)
    }
}

impl Engine for MemEngine {
    fn write(&self, batch: Batch, sync: bool) -> Result<(), StorageError> {
        {
            let mut inner = self.lock();
            for op in &batch.ops {
                apply(&mut inner.live, op);
            }
            inner.unsynced.push(batch);
        }
        if sync || self.mode == SyncMode::Immediate {
            self.sync();
        }
        Ok(())
    }

    fn after_sync(&self, callback: SyncCallback) {
        self.lock().waiting.push(callback);
        if self.mode == SyncMode::Immediate {
            self.sync();
        }
    }

    fn with_snapshot(
        &self,
        f: &mut dyn FnMut(&dyn EngineView) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let view = MemView {
            map: self.lock().live.clone(),
        };
        f(&view)
    }

    fn checkpoint(&self, dir: &Path) -> Result<(), StorageError> {
        let rows: Vec<(u8, Vec<u8>, Vec<u8>)> = self
            .lock()
            .live
            .iter()
            .map(|((cf, k), v)| {
                let cf = Cf::ALL.iter().position(|c| c == cf).unwrap_or(0) as u8;
                (cf, k.clone(), v.clone())
            })
            .collect();
        std::fs::create_dir(dir).map_err(io("create checkpoint", dir))?;
        write_rows_file(&dir.join(MEM_CHECKPOINT_FILE), &rows)
    }

    fn write_table(
        &self,
        _cf: Cf,
        path: &Path,
        fill: &mut dyn FnMut(&mut Sink<'_>) -> Result<(), StorageError>,
    ) -> Result<u64, StorageError> {
        let mut rows: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        fill(&mut |k, v| {
            rows.push((k.to_vec(), v.to_vec()));
            Ok(())
        })?;
        if !rows.is_empty() {
            write_rows_file(path, &rows)?;
        }
        Ok(rows.len() as u64)
    }

    fn ingest(&self, cf: Cf, path: &Path) -> Result<(), StorageError> {
        let rows: Vec<(Vec<u8>, Vec<u8>)> = read_rows_file(path)?;
        let mut batch = Batch::default();
        for (k, v) in rows {
            batch.put(cf, k, v);
        }
        self.write(batch, true)?;
        std::fs::remove_file(path).map_err(io("remove ingested table", path))
    }
}
