use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{ColumnFamilyDescriptor, DB, Options, WriteBatch, WriteOptions};

use crate::keys::{ALL_CFS, CF_JOURNAL, CF_LOG, CF_META, CF_STATE, MetaTag, meta_key};
use crate::log_syncer::LogSyncer;
use crate::seal::{seal, unseal};
use crate::{GroupId, LogStore, StateStore, StorageError};

/// One node's RocksDB instance, shared by all its shard groups.
#[derive(Clone)]
pub struct Db {
    inner: Arc<DbInner>,
}

pub(crate) struct DbInner {
    pub(crate) rocks: DB,
    pub(crate) path: PathBuf,
    pub(crate) syncer: LogSyncer,
}

/// Per column family tuning. `state` and `journal` take several random-key
/// inserts per command on every replica and are read only at load, snapshot
/// and audit time: an append-only vector memtable (sorted once at flush)
/// costs a fraction of a skiplist insert there. The log and metadata are
/// read on the hot path (replication) and keep the skiplist.
fn cf_options(name: &str) -> Options {
    let mut cf = Options::default();
    match name {
        CF_STATE | CF_JOURNAL => {
            cf.set_memtable_factory(rocksdb::MemtableFactory::Vector);
            cf.set_write_buffer_size(16 << 20);
        }
        _ => cf.set_write_buffer_size(32 << 20),
    }
    cf
}

impl Db {
    /// Opens (creating if missing) the database under `path`.
    pub fn open(path: &Path) -> Result<Db, StorageError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_background_jobs(2);
        opts.set_bytes_per_sync(1 << 20);
        // The vector memtable (below) takes no concurrent inserts; we have one
        // writer per batch anyway.
        opts.set_allow_concurrent_memtable_write(false);
        let cfs = ALL_CFS
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, cf_options(name)));
        let rocks = DB::open_cf_descriptors(&opts, path, cfs)
            .map_err(StorageError::rocks("open the database"))?;
        for name in ALL_CFS {
            if rocks.cf_handle(name).is_none() {
                return Err(StorageError::MissingColumnFamily(name));
            }
        }
        let inner = Arc::new_cyclic(|weak: &std::sync::Weak<DbInner>| DbInner {
            rocks,
            path: path.to_path_buf(),
            syncer: LogSyncer::start(weak.clone()),
        });
        Ok(Db { inner })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The Raft log of `group`.
    pub fn log_store(&self, group: GroupId) -> LogStore {
        LogStore::new(self.clone(), group)
    }

    /// The ledger state, journal and snapshots of `group`.
    pub fn state_store(&self, group: GroupId) -> StateStore {
        StateStore::new(self.clone(), group)
    }

    pub(crate) fn inner(&self) -> &DbInner {
        &self.inner
    }

    pub(crate) fn rocks(&self) -> &DB {
        &self.inner.rocks
    }

    pub(crate) fn cf(&self, name: &'static str) -> &rocksdb::ColumnFamily {
        // Checked at open: every column family in ALL_CFS exists.
        self.inner
            .rocks
            .cf_handle(name)
            .expect("column family checked at open")
    }

    pub(crate) fn write(
        &self,
        batch: WriteBatch,
        sync: bool,
        context: &'static str,
    ) -> Result<(), StorageError> {
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        self.rocks()
            .write_opt(batch, &opts)
            .map_err(StorageError::rocks(context))
    }

    pub(crate) fn get_meta(
        &self,
        group: GroupId,
        tag: MetaTag,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let key = meta_key(group, tag);
        let Some(stored) = self
            .rocks()
            .get_cf(self.cf(CF_META), key)
            .map_err(StorageError::rocks("read metadata"))?
        else {
            return Ok(None);
        };
        Ok(Some(unseal(&stored, "raft metadata", &key)?.to_vec()))
    }

    pub(crate) fn meta_put(
        batch: &mut WriteBatch,
        cf: &rocksdb::ColumnFamily,
        group: GroupId,
        tag: MetaTag,
        bytes: &[u8],
    ) {
        batch.put_cf(cf, meta_key(group, tag), seal(bytes));
    }

    pub(crate) fn log_cf(&self) -> &rocksdb::ColumnFamily {
        self.cf(CF_LOG)
    }

    /// Test and fault-injection hook: overwrites the raw stored bytes of one
    /// log entry, keeping RocksDB's own checksums valid, so that our crc32
    /// layer is what must catch the damage.
    pub fn corrupt_log_entry_for_test(
        &self,
        group: GroupId,
        index: u64,
    ) -> Result<bool, StorageError> {
        let key = crate::keys::log_key(group, index);
        let cf = self.log_cf();
        let Some(mut stored) = self
            .rocks()
            .get_cf(cf, key)
            .map_err(StorageError::rocks("read log"))?
        else {
            return Ok(false);
        };
        let last = stored.len() - 1;
        stored[last] ^= 0x5a;
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.rocks()
            .put_cf_opt(cf, key, stored, &opts)
            .map_err(StorageError::rocks("write log"))?;
        Ok(true)
    }
}
