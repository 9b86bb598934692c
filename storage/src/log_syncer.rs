//! Group commit for the Raft log: appends are written to RocksDB (visible to
//! readers at once) and their durability callbacks queued here; one thread
//! syncs the WAL once for everything queued so far and then fires all their
//! callbacks. One fsync therefore covers many appends of many groups.

use std::sync::Weak;
use std::sync::mpsc::{Receiver, Sender, channel};

use crate::rocks_engine::RocksEngine;
use crate::{StorageError, SyncCallback};

/// Callbacks drained per fsync at most; bounds the latency of the first one.
const CALLBACKS_PER_SYNC_MAX: usize = 4096;

pub(crate) struct LogSyncer {
    tx: Sender<SyncCallback>,
}

impl LogSyncer {
    pub(crate) fn start(db: Weak<RocksEngine>) -> LogSyncer {
        let (tx, rx) = channel::<SyncCallback>();
        std::thread::Builder::new()
            .name("log-syncer".into())
            .spawn(move || run(db, rx))
            .expect("spawn the log syncer thread");
        LogSyncer { tx }
    }

    /// Queues `callback` to run after the next WAL sync.
    pub(crate) fn after_sync(&self, callback: SyncCallback) {
        if let Err(err) = self.tx.send(callback) {
            (err.0)(Err(StorageError::SyncerStopped));
        }
    }
}

fn run(db: Weak<RocksEngine>, rx: Receiver<SyncCallback>) {
    let mut pending: Vec<SyncCallback> = Vec::with_capacity(64);
    while let Ok(first) = rx.recv() {
        pending.push(first);
        while pending.len() < CALLBACKS_PER_SYNC_MAX {
            match rx.try_recv() {
                Ok(cb) => pending.push(cb),
                Err(_) => break,
            }
        }
        let Some(db) = db.upgrade() else {
            for cb in pending.drain(..) {
                cb(Err(StorageError::SyncerStopped));
            }
            return;
        };
        let started = std::time::Instant::now();
        let result = db.rocks.flush_wal(true);
        if let Some(observe) = db.sync_observer.get() {
            observe(started.elapsed(), pending.len());
        }
        drop(db);
        for cb in pending.drain(..) {
            cb(result
                .clone()
                .map_err(StorageError::rocks("sync the write-ahead log")));
        }
    }
}
