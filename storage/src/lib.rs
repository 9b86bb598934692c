//! geowallet's durable storage on RocksDB: the Raft log, vote and committed
//! index, the ledger state with its applied index (written in one batch), the
//! per-wallet journal, and snapshot files. Every stored value carries a crc32
//! that is verified on read; a mismatch is an error, never silently used.
//!
//! Many shard groups share one RocksDB instance: every key starts with the
//! group id. Everything is written once over the `Engine` trait: RocksDB in
//! production, `MemEngine` (in memory, crash faults injectable) for the
//! simulator. This crate knows the ledger's types but nothing of Raft, gRPC or
//! async runtimes: callers hand it opaque bytes for Raft metadata.

mod db;
mod engine;
mod error;
mod keys;
mod log_store;
#[cfg(feature = "rocksdb")]
mod log_syncer;
mod mem_engine;
#[cfg(feature = "rocksdb")]
mod rocks_engine;
mod seal;
mod snapshot_books;
mod snapshot_file;
mod state_store;
mod store_rows;

pub use db::Db;
pub use engine::SyncCallback;
pub use engine::{Batch, BatchOp, Cf, Direction, Engine, EngineView, Sink, Visit};
pub use error::StorageError;
pub use keys::{DirKey, GroupId};
pub use log_store::LogStore;
pub use mem_engine::{CrashFaults, LYING_SYNC_PERIOD, MemEngine, SyncMode};
#[cfg(feature = "rocksdb")]
pub use rocks_engine::{PLANT_BUG_ENV, RocksEngine, SyncObserver};

/// The engine stores use unless told otherwise: RocksDB, or the in-memory
/// twin in builds without the `rocksdb` feature (the simulator).
#[cfg(feature = "rocksdb")]
pub type DefaultEngine = RocksEngine;
#[cfg(not(feature = "rocksdb"))]
pub type DefaultEngine = MemEngine;
pub use snapshot_file::{
    CheckpointInfo, SnapshotChunkReader, SnapshotChunkWriter, SnapshotFileInfo, open_checkpoint,
    remove_snapshot, rename_durably, verify_for as verify_snapshot, write_snapshot_file,
};
pub use state_store::{AuditRead, CurrencyMoney, JournalFrom, JournalPage, StateStore, Totals};
pub use store_rows::StoreRows;
