//! The sorted key-value engine under geowallet's storage: column families,
//! atomic batches, range scans, consistent snapshots and an explicit
//! durability point. `RocksEngine` in production; `MemEngine` (in memory,
//! with injectable crash faults) for the simulator. Key layout, checksums
//! and everything above are written once, over this trait.

use std::path::Path;

use crate::StorageError;

/// Called once the writes made before it was queued are durable (or failed).
pub type SyncCallback = Box<dyn FnOnce(Result<(), StorageError>) + Send>;

/// A key space of a node's store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cf {
    Log,
    Meta,
    State,
    Journal,
}

impl Cf {
    pub const ALL: [Cf; 4] = [Cf::Log, Cf::Meta, Cf::State, Cf::Journal];

    pub fn name(self) -> &'static str {
        match self {
            Cf::Log => "log",
            Cf::Meta => "meta",
            Cf::State => "state",
            Cf::Journal => "journal",
        }
    }
}

/// One change of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    Put(Cf, Vec<u8>, Vec<u8>),
    Delete(Cf, Vec<u8>),
    /// Deletes keys in `[from, to)`.
    DeleteRange(Cf, Vec<u8>, Vec<u8>),
}

/// Changes applied atomically: all or none survive a crash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub(crate) ops: Vec<BatchOp>,
    size_bytes: usize,
}

impl Batch {
    pub fn put(&mut self, cf: Cf, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        let (key, value) = (key.into(), value.into());
        self.size_bytes += key.len() + value.len();
        self.ops.push(BatchOp::Put(cf, key, value));
    }

    pub fn delete(&mut self, cf: Cf, key: impl Into<Vec<u8>>) {
        let key = key.into();
        self.size_bytes += key.len();
        self.ops.push(BatchOp::Delete(cf, key));
    }

    pub fn delete_range(&mut self, cf: Cf, from: impl Into<Vec<u8>>, to: impl Into<Vec<u8>>) {
        let (from, to) = (from.into(), to.into());
        self.size_bytes += from.len() + to.len();
        self.ops.push(BatchOp::DeleteRange(cf, from, to));
    }

    pub fn size_bytes(&self) -> usize {
        self.size_bytes
    }

    pub fn ops(&self) -> &[BatchOp] {
        &self.ops
    }
}

/// Scan direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Reverse,
}

/// What `scan` visitors return: keep going or stop.
pub type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> Result<bool, StorageError> + 'a;

/// Where `Engine::write_table` puts rows: ascending keys, one call per row.
pub type Sink<'a> = dyn FnMut(&[u8], &[u8]) -> Result<(), StorageError> + 'a;

/// Reading: the live engine or a point-in-time snapshot of it.
pub trait EngineView {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// Point reads of several keys at once, results in the order of `keys`.
    fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        keys.iter().map(|k| self.get(cf, k)).collect()
    }

    /// Visits the rows with `lower <= key < upper` in `direction` order until
    /// `visit` returns `false`.
    fn scan(
        &self,
        cf: Cf,
        lower: &[u8],
        upper: &[u8],
        direction: Direction,
        visit: &mut Visit<'_>,
    ) -> Result<(), StorageError>;
}

/// A node's store engine.
pub trait Engine: EngineView + Send + Sync + 'static {
    /// Applies `batch` atomically and visibly; with `sync`, durably before returning.
    fn write(&self, batch: Batch, sync: bool) -> Result<(), StorageError>;

    /// Calls `callback` once everything written before this call is durable.
    fn after_sync(&self, callback: SyncCallback);

    /// Runs `f` over one consistent point-in-time view of the whole store.
    fn with_snapshot(
        &self,
        f: &mut dyn FnMut(&dyn EngineView) -> Result<(), StorageError>,
    ) -> Result<(), StorageError>;

    /// Makes `dir` (which must not exist) a consistent point-in-time copy of
    /// the whole store, at a cost that does not grow with the data: RocksDB
    /// flushes its memtables and hard-links its table files. Read it with
    /// [`crate::open_checkpoint`].
    fn checkpoint(&self, dir: &Path) -> Result<(), StorageError>;

    /// Writes the rows `fill` hands its sink (ascending keys of `cf`) to a
    /// new table file at `path`, straight to disk; returns how many. No file
    /// is made for no rows. Nothing is visible before [`Engine::ingest`].
    fn write_table(
        &self,
        cf: Cf,
        path: &Path,
        fill: &mut dyn FnMut(&mut Sink<'_>) -> Result<(), StorageError>,
    ) -> Result<u64, StorageError>;

    /// Adds the table file at `path` (from `write_table`) to `cf` at once,
    /// newer than every write before it, durably; the file is moved in.
    fn ingest(&self, cf: Cf, path: &Path) -> Result<(), StorageError>;
}
