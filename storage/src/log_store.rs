use crate::DefaultEngine;
use crate::engine::{Batch, Cf, Direction, Engine};
use crate::keys::{MetaTag, group_end, log_key, log_key_index};
use crate::seal::{hex, seal, unseal};
use crate::{Db, GroupId, StorageError, SyncCallback};

/// The Raft log and Raft metadata (vote, committed, last purged) of one
/// group. Entries are opaque bytes here; each is stored sealed with a crc32.
pub struct LogStore<E: Engine = DefaultEngine> {
    db: Db<E>,
    group: GroupId,
}

impl<E: Engine> Clone for LogStore<E> {
    fn clone(&self) -> Self {
        LogStore {
            db: self.db.clone(),
            group: self.group,
        }
    }
}

fn entry_row(key: &[u8], value: &[u8]) -> Result<(u64, Vec<u8>), StorageError> {
    let index = log_key_index(key).ok_or_else(|| StorageError::Checksum {
        what: "log key",
        key: hex(key),
    })?;
    Ok((index, unseal(value, "log entry", key)?.to_vec()))
}

impl<E: Engine> LogStore<E> {
    pub(crate) fn new(db: Db<E>, group: GroupId) -> LogStore<E> {
        LogStore { db, group }
    }

    pub fn group(&self) -> GroupId {
        self.group
    }

    /// Writes `entries` (index, encoded entry); they are readable at once and
    /// durable when `on_durable` is called.
    pub fn append(
        &self,
        entries: &[(u64, Vec<u8>)],
        on_durable: SyncCallback,
    ) -> Result<(), StorageError> {
        let mut batch = Batch::default();
        let mut prev: Option<u64> = None;
        for (index, bytes) in entries {
            assert!(
                prev.is_none_or(|p| p + 1 == *index),
                "log indexes must be contiguous"
            );
            prev = Some(*index);
            batch.put(Cf::Log, log_key(self.group, *index), seal(bytes));
        }
        self.db.write(batch, false)?;
        self.db.engine().after_sync(on_durable);
        Ok(())
    }

    /// Entries with index in `[start, end)`, checksums verified.
    pub fn read_range(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
        let mut out = Vec::new();
        if start >= end {
            return Ok(out);
        }
        let (lower, upper) = (log_key(self.group, start), log_key(self.group, end));
        self.db
            .engine()
            .scan(Cf::Log, &lower, &upper, Direction::Forward, &mut |k, v| {
                out.push(entry_row(k, v)?);
                Ok(true)
            })?;
        Ok(out)
    }

    /// The last entry of the log, if any.
    pub fn last(&self) -> Result<Option<(u64, Vec<u8>)>, StorageError> {
        let mut last = None;
        let (lower, upper) = (log_key(self.group, 0), group_end(self.group));
        self.db
            .engine()
            .scan(Cf::Log, &lower, &upper, Direction::Reverse, &mut |k, v| {
                last = Some(entry_row(k, v)?);
                Ok(false)
            })?;
        Ok(last)
    }

    /// Deletes every entry with index > `index` (all of them for `None`).
    pub fn truncate_after(&self, index: Option<u64>) -> Result<(), StorageError> {
        let from = index.map_or(0, |i| i + 1);
        let mut batch = Batch::default();
        batch.delete_range(Cf::Log, log_key(self.group, from), group_end(self.group));
        self.db.write(batch, false)
    }

    /// Deletes entries up to and including `index` and records `last_purged`.
    pub fn purge_upto(&self, index: u64, last_purged: &[u8]) -> Result<(), StorageError> {
        let mut batch = Batch::default();
        Db::<E>::meta_put(&mut batch, self.group, MetaTag::LastPurged, last_purged);
        batch.delete_range(
            Cf::Log,
            log_key(self.group, 0),
            log_key(self.group, index + 1),
        );
        self.db.write(batch, false)
    }

    pub fn save_vote(&self, vote: &[u8]) -> Result<(), StorageError> {
        self.put_meta(MetaTag::Vote, vote, true)
    }

    pub fn read_vote(&self) -> Result<Option<Vec<u8>>, StorageError> {
        self.db.get_meta(self.group, MetaTag::Vote)
    }

    /// The committed index need not be durable (losing it only delays
    /// re-applying), so it is written without an fsync.
    pub fn save_committed(&self, committed: &[u8]) -> Result<(), StorageError> {
        self.put_meta(MetaTag::Committed, committed, false)
    }

    pub fn read_committed(&self) -> Result<Option<Vec<u8>>, StorageError> {
        self.db.get_meta(self.group, MetaTag::Committed)
    }

    pub fn read_last_purged(&self) -> Result<Option<Vec<u8>>, StorageError> {
        self.db.get_meta(self.group, MetaTag::LastPurged)
    }

    fn put_meta(&self, tag: MetaTag, bytes: &[u8], sync: bool) -> Result<(), StorageError> {
        let mut batch = Batch::default();
        Db::<E>::meta_put(&mut batch, self.group, tag, bytes);
        self.db.write(batch, sync)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    fn durable() -> (SyncCallback, mpsc::Receiver<Result<(), StorageError>>) {
        let (tx, rx) = mpsc::channel();
        (Box::new(move |r| drop(tx.send(r))), rx)
    }

    // Appended entries read back byte for byte, per group, and survive reopen.
    #[test]
    fn append_read_truncate_purge_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Db::open(dir.path()).unwrap();
            let a = db.log_store(GroupId(1));
            let b = db.log_store(GroupId(2));
            let (cb, rx) = durable();
            a.append(
                &[
                    (1, b"one".to_vec()),
                    (2, b"two".to_vec()),
                    (3, b"three".to_vec()),
                ],
                cb,
            )
            .unwrap();
            rx.recv().unwrap().unwrap();
            let (cb, rx) = durable();
            b.append(&[(1, b"other".to_vec())], cb).unwrap();
            rx.recv().unwrap().unwrap();
            assert_eq!(
                a.read_range(2, 10).unwrap(),
                vec![(2, b"two".to_vec()), (3, b"three".to_vec())]
            );
            assert_eq!(a.last().unwrap().unwrap().0, 3);
            a.truncate_after(Some(2)).unwrap();
            assert_eq!(a.last().unwrap().unwrap().0, 2);
            a.purge_upto(1, b"purged-1").unwrap();
            assert_eq!(a.read_range(0, 10).unwrap(), vec![(2, b"two".to_vec())]);
            assert_eq!(b.read_range(0, 10).unwrap(), vec![(1, b"other".to_vec())]);
            a.save_vote(b"vote").unwrap();
        }
        let db = Db::open(dir.path()).unwrap();
        let a = db.log_store(GroupId(1));
        assert_eq!(a.read_vote().unwrap().unwrap(), b"vote");
        assert_eq!(a.read_last_purged().unwrap().unwrap(), b"purged-1");
        assert_eq!(a.read_range(0, 10).unwrap(), vec![(2, b"two".to_vec())]);
    }

    // A damaged log entry is reported as a checksum error, never returned.
    #[test]
    fn corrupted_entry_is_detected_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let log = db.log_store(GroupId(7));
        let (cb, rx) = durable();
        log.append(&[(1, b"credit 10".to_vec()), (2, b"debit 5".to_vec())], cb)
            .unwrap();
        rx.recv().unwrap().unwrap();
        assert!(db.corrupt_log_entry_for_test(GroupId(7), 2).unwrap());
        let err = log.read_range(1, 3).unwrap_err();
        assert!(err.is_corruption(), "{err}");
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        assert_eq!(log.read_range(1, 2).unwrap().len(), 1);
    }
}
