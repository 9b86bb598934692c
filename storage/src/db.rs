use std::sync::Arc;

use crate::DefaultEngine;
use crate::engine::{Batch, Cf, Engine};
use crate::keys::{MetaTag, meta_key};
use crate::seal::{seal, unseal};
use crate::{GroupId, LogStore, StateStore, StorageError};

/// One node's store, shared by all its shard groups: RocksDB by default, or
/// any other `Engine` (the simulator's `MemEngine`).
pub struct Db<E: Engine = DefaultEngine> {
    engine: Arc<E>,
}

impl<E: Engine> Clone for Db<E> {
    fn clone(&self) -> Self {
        Db {
            engine: self.engine.clone(),
        }
    }
}

#[cfg(feature = "rocksdb")]
impl Db<crate::RocksEngine> {
    /// Opens (creating if missing) the RocksDB database under `path`.
    pub fn open(path: &std::path::Path) -> Result<Db, StorageError> {
        Ok(Db {
            engine: crate::RocksEngine::open(path)?,
        })
    }
}

impl<E: Engine> Db<E> {
    /// A store over an engine made elsewhere (e.g. a `MemEngine` the test or
    /// simulator keeps a handle to, to crash it).
    pub fn with_engine(engine: Arc<E>) -> Db<E> {
        Db { engine }
    }

    pub fn engine(&self) -> &Arc<E> {
        &self.engine
    }

    /// The Raft log of `group`.
    pub fn log_store(&self, group: GroupId) -> LogStore<E> {
        LogStore::new(self.clone(), group)
    }

    /// The ledger state, journal and snapshots of `group`.
    pub fn state_store(&self, group: GroupId) -> StateStore<E> {
        StateStore::new(self.clone(), group)
    }

    pub(crate) fn write(&self, batch: Batch, sync: bool) -> Result<(), StorageError> {
        self.engine.write(batch, sync)
    }

    pub(crate) fn get_meta(
        &self,
        group: GroupId,
        tag: MetaTag,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        Db::<E>::meta_in(self.engine.as_ref(), group, tag)
    }

    /// A group's metadata row read from `view` (e.g. a snapshot).
    pub(crate) fn meta_in(
        view: &dyn crate::engine::EngineView,
        group: GroupId,
        tag: MetaTag,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let key = meta_key(group, tag);
        let Some(stored) = view.get(Cf::Meta, &key)? else {
            return Ok(None);
        };
        Ok(Some(unseal(&stored, "raft metadata", &key)?.to_vec()))
    }

    pub(crate) fn meta_put(batch: &mut Batch, group: GroupId, tag: MetaTag, bytes: &[u8]) {
        batch.put(Cf::Meta, meta_key(group, tag), seal(bytes));
    }

    /// Test and fault-injection hook: overwrites the stored bytes of one log
    /// entry (keeping the engine's own checksums valid), so that our crc32
    /// layer is what must catch the damage.
    pub fn corrupt_log_entry_for_test(
        &self,
        group: GroupId,
        index: u64,
    ) -> Result<bool, StorageError> {
        let key = crate::keys::log_key(group, index);
        let Some(mut stored) = self.engine.get(Cf::Log, &key)? else {
            return Ok(false);
        };
        let last = stored.len() - 1;
        stored[last] ^= 0x5a;
        let mut batch = Batch::default();
        batch.put(Cf::Log, key, stored);
        self.engine.write(batch, true)?;
        Ok(true)
    }
}
