use std::path::Path;
use std::sync::Arc;

use rocksdb::{
    ColumnFamilyDescriptor, DB, IngestExternalFileOptions, IteratorMode, Options, ReadOptions,
    SstFileWriter, WriteBatch, WriteOptions,
};

use crate::engine::{Batch, BatchOp, Cf, Direction, Engine, EngineView, Sink, Visit};
use crate::log_syncer::LogSyncer;
use crate::{StorageError, SyncCallback};

/// RocksDB as the engine: one instance per node, a column family per `Cf`.
pub struct RocksEngine {
    pub(crate) rocks: DB,
    syncer: LogSyncer,
    /// Told the time and size of every WAL sync (the node's metrics).
    pub(crate) sync_observer: std::sync::OnceLock<SyncObserver>,
    cache: rocksdb::Cache,
    /// A planted bug for jepsen-tests to catch, never set in production
    /// (`PLANT_BUG_ENV=lying-fsync`): every write that is not synced on its
    /// own (Raft log appends, applied state) skips the write-ahead log and
    /// lives in memory until a flush of every column family at once, once
    /// a second. Appends are acknowledged after a "sync" that syncs none
    /// of them, so a killed node comes back a consistent second or so in
    /// the past, without entries it acknowledged: a disk that lies about
    /// fsync, then a power loss.
    lying_fsync: bool,
}

/// Environment variable that plants a bug for jepsen-tests (`lying-fsync`).
pub const PLANT_BUG_ENV: &str = "GEOWALLET_TEST_PLANT_BUG";
/// How often the lying disk really writes.
const LYING_FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Bytes of the block cache shared by every column family: with the write
/// buffers below, what bounds a node's memory whatever its number of wallets.
pub const BLOCK_CACHE_BYTES: usize = 64 << 20;

/// Per column family tuning. `state` is read on the hot path (apply reads
/// the rows an entry touches by point lookups): a skiplist memtable, bloom
/// filters, the shared block cache. `journal` takes one random-key insert
/// per line on every replica and is read only in pages: an append-only
/// vector memtable (sorted once at flush) costs a fraction of a skiplist
/// insert there. The log and metadata are read on the hot path too.
fn cf_options(cf: Cf, cache: &rocksdb::Cache) -> Options {
    let mut opts = Options::default();
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_block_cache(cache);
    // Index and filter blocks live in the bounded block cache, partitioned
    // into block-sized pieces: a whole-file filter (hundreds of KiB) does not
    // fit a cache shard and was read from disk on every point read (found by
    // perf at 10^6 tx records). The small top level stays pinned.
    table.set_cache_index_and_filter_blocks(true);
    table.set_index_type(rocksdb::BlockBasedIndexType::TwoLevelIndexSearch);
    table.set_partition_filters(true);
    table.set_pin_top_level_index_and_filter(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    match cf {
        Cf::State => {
            table.set_bloom_filter(10.0, false);
            opts.set_write_buffer_size(32 << 20);
        }
        Cf::Journal => {
            opts.set_memtable_factory(rocksdb::MemtableFactory::Vector);
            opts.set_write_buffer_size(16 << 20);
        }
        Cf::Log | Cf::Meta => opts.set_write_buffer_size(32 << 20),
    }
    opts.set_max_write_buffer_number(2);
    opts.set_block_based_table_factory(&table);
    opts
}

/// Called after every WAL sync with its duration and the number of log
/// appends it made durable.
pub type SyncObserver = Box<dyn Fn(std::time::Duration, usize) + Send + Sync>;

impl RocksEngine {
    /// Has `observer` told of every WAL sync from now on. Only the first
    /// observer set is kept (false: one was already set).
    pub fn observe_syncs(&self, observer: SyncObserver) -> bool {
        self.sync_observer.set(observer).is_ok()
    }

    /// Opens (creating if missing) the database under `path`.
    pub fn open(path: &Path) -> Result<Arc<RocksEngine>, StorageError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_background_jobs(2);
        opts.set_bytes_per_sync(1 << 20);
        // The vector memtable takes no concurrent inserts; there is one writer per batch anyway.
        opts.set_allow_concurrent_memtable_write(false);
        // Damage inside the write-ahead log fails the open. RocksDB's
        // default (point in time) replays up to the damaged record and
        // silently drops the rest: Raft entries and votes this node already
        // acknowledged. Only a torn last record (a crash while writing one
        // that was never synced, so never acknowledged) is tolerated.
        opts.set_wal_recovery_mode(rocksdb::DBRecoveryMode::TolerateCorruptedTailRecords);
        let lying_fsync = std::env::var(PLANT_BUG_ENV).is_ok_and(|v| v == "lying-fsync");
        if lying_fsync {
            // Memtables of all column families reach disk together, so what
            // survives a kill is one consistent past state.
            opts.set_atomic_flush(true);
        }
        let cache = rocksdb::Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let cfs = Cf::ALL
            .iter()
            .map(|cf| ColumnFamilyDescriptor::new(cf.name(), cf_options(*cf, &cache)));
        let rocks = DB::open_cf_descriptors(&opts, path, cfs)
            .map_err(StorageError::rocks("open the database"))?;
        for cf in Cf::ALL {
            if rocks.cf_handle(cf.name()).is_none() {
                return Err(StorageError::MissingColumnFamily(cf.name()));
            }
        }
        let engine = Arc::new_cyclic(|weak| RocksEngine {
            rocks,
            syncer: LogSyncer::start(weak.clone()),
            sync_observer: std::sync::OnceLock::new(),
            cache,
            lying_fsync,
        });
        if lying_fsync {
            tracing::error!(
                "{PLANT_BUG_ENV}=lying-fsync: unsynced writes skip the write-ahead log and \
                 reach disk once a second; acknowledged entries can be lost. For testing the \
                 test harness only."
            );
            let weak = Arc::downgrade(&engine);
            std::thread::spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    let cfs: Vec<_> = Cf::ALL.iter().map(|cf| engine.cf(*cf)).collect();
                    if let Err(e) = engine
                        .rocks
                        .flush_cfs_opt(&cfs, &rocksdb::FlushOptions::default())
                    {
                        tracing::warn!(error = %e, "lying-fsync flush failed");
                    }
                    drop(cfs);
                    drop(engine);
                    std::thread::sleep(LYING_FLUSH_INTERVAL);
                }
            });
        }
        Ok(engine)
    }

    fn cf(&self, cf: Cf) -> &rocksdb::ColumnFamily {
        cf_of(&self.rocks, cf)
    }
}

fn scan_rocks<'a, D: rocksdb::DBAccess>(
    iter: rocksdb::DBIteratorWithThreadMode<'a, D>,
    visit: &mut Visit<'_>,
) -> Result<(), StorageError> {
    for item in iter {
        let (key, value) = item.map_err(StorageError::rocks("scan"))?;
        if !visit(&key, &value)? {
            break;
        }
    }
    Ok(())
}

fn bounded(lower: &[u8], upper: &[u8]) -> ReadOptions {
    let mut opts = ReadOptions::default();
    opts.set_iterate_lower_bound(lower.to_vec());
    opts.set_iterate_upper_bound(upper.to_vec());
    opts
}

fn mode(direction: Direction) -> IteratorMode<'static> {
    match direction {
        Direction::Forward => IteratorMode::Start,
        Direction::Reverse => IteratorMode::End,
    }
}

fn cf_of(rocks: &DB, cf: Cf) -> &rocksdb::ColumnFamily {
    // Checked at open: every column family exists.
    rocks
        .cf_handle(cf.name())
        .expect("column family checked at open")
}

/// A checkpoint (`Engine::checkpoint`) opened read-only.
pub(crate) struct RocksCheckpoint {
    rocks: DB,
}

impl RocksCheckpoint {
    pub(crate) fn open(dir: &Path) -> Result<RocksCheckpoint, StorageError> {
        let names = Cf::ALL.iter().map(|cf| cf.name());
        // Open table files as they are read, not all at open: taking a
        // snapshot reads one row of the checkpoint, and the cost of the
        // open must not grow with the number of files.
        let mut opts = Options::default();
        opts.set_max_open_files(64);
        opts.set_skip_stats_update_on_db_open(true);
        let rocks = DB::open_cf_for_read_only(&opts, dir, names, false)
            .map_err(StorageError::rocks("open a checkpoint"))?;
        for cf in Cf::ALL {
            if rocks.cf_handle(cf.name()).is_none() {
                return Err(StorageError::MissingColumnFamily(cf.name()));
            }
        }
        Ok(RocksCheckpoint { rocks })
    }
}

impl EngineView for RocksCheckpoint {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.rocks
            .get_cf(cf_of(&self.rocks, cf), key)
            .map_err(StorageError::rocks("read a checkpoint"))
    }

    fn scan(
        &self,
        cf: Cf,
        lower: &[u8],
        upper: &[u8],
        direction: Direction,
        visit: &mut Visit<'_>,
    ) -> Result<(), StorageError> {
        let iter = self.rocks.iterator_cf_opt(
            cf_of(&self.rocks, cf),
            bounded(lower, upper),
            mode(direction),
        );
        scan_rocks(iter, visit)
    }
}

impl EngineView for RocksEngine {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.rocks
            .get_cf(self.cf(cf), key)
            .map_err(StorageError::rocks("read"))
    }

    fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        let handle = self.cf(cf);
        self.rocks
            .batched_multi_get_cf(handle, keys, false)
            .into_iter()
            .map(|r| {
                r.map(|v| v.map(|slice| slice.to_vec()))
                    .map_err(StorageError::rocks("read"))
            })
            .collect()
    }

    fn scan(
        &self,
        cf: Cf,
        lower: &[u8],
        upper: &[u8],
        direction: Direction,
        visit: &mut Visit<'_>,
    ) -> Result<(), StorageError> {
        scan_rocks(
            self.rocks
                .iterator_cf_opt(self.cf(cf), bounded(lower, upper), mode(direction)),
            visit,
        )
    }
}

struct RocksSnapshotView<'a> {
    engine: &'a RocksEngine,
    snap: rocksdb::SnapshotWithThreadMode<'a, DB>,
}

impl EngineView for RocksSnapshotView<'_> {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.snap
            .get_cf(self.engine.cf(cf), key)
            .map_err(StorageError::rocks("read a snapshot"))
    }

    fn scan(
        &self,
        cf: Cf,
        lower: &[u8],
        upper: &[u8],
        direction: Direction,
        visit: &mut Visit<'_>,
    ) -> Result<(), StorageError> {
        scan_rocks(
            self.snap
                .iterator_cf_opt(self.engine.cf(cf), bounded(lower, upper), mode(direction)),
            visit,
        )
    }
}

impl Engine for RocksEngine {
    fn write(&self, batch: Batch, sync: bool) -> Result<(), StorageError> {
        let mut wb = WriteBatch::default();
        for op in batch.ops {
            match op {
                BatchOp::Put(cf, k, v) => wb.put_cf(self.cf(cf), k, v),
                BatchOp::Delete(cf, k) => wb.delete_cf(self.cf(cf), k),
                BatchOp::DeleteRange(cf, from, to) => wb.delete_range_cf(self.cf(cf), from, to),
            }
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        if self.lying_fsync && !sync {
            opts.disable_wal(true);
        }
        self.rocks
            .write_opt(wb, &opts)
            .map_err(StorageError::rocks("write"))
    }

    fn after_sync(&self, callback: SyncCallback) {
        self.syncer.after_sync(callback);
    }

    fn with_snapshot(
        &self,
        f: &mut dyn FnMut(&dyn EngineView) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let view = RocksSnapshotView {
            engine: self,
            snap: self.rocks.snapshot(),
        };
        f(&view)
    }

    fn checkpoint(&self, dir: &Path) -> Result<(), StorageError> {
        rocksdb::checkpoint::Checkpoint::new(&self.rocks)
            .and_then(|c| c.create_checkpoint(dir))
            .map_err(StorageError::rocks("make a checkpoint"))
    }

    fn write_table(
        &self,
        cf: Cf,
        path: &Path,
        fill: &mut dyn FnMut(&mut Sink<'_>) -> Result<(), StorageError>,
    ) -> Result<u64, StorageError> {
        let opts = cf_options(cf, &self.cache);
        let mut writer: Option<SstFileWriter<'_>> = None;
        let mut rows = 0u64;
        fill(&mut |key, value| {
            let w = match &mut writer {
                Some(w) => w,
                None => {
                    let w = SstFileWriter::create(&opts);
                    w.open(path)
                        .map_err(StorageError::rocks("create a table file"))?;
                    writer.insert(w)
                }
            };
            rows += 1;
            w.put(key, value)
                .map_err(StorageError::rocks("write a table file"))
        })?;
        if let Some(mut w) = writer {
            w.finish()
                .map_err(StorageError::rocks("finish a table file"))?;
        }
        Ok(rows)
    }

    fn ingest(&self, cf: Cf, path: &Path) -> Result<(), StorageError> {
        let mut opts = IngestExternalFileOptions::default();
        opts.set_move_files(true);
        self.rocks
            .ingest_external_file_cf_opts(self.cf(cf), &opts, vec![path])
            .map_err(StorageError::rocks("ingest a table file"))
    }
}
