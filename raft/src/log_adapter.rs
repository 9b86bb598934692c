use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};

use geowallet_storage::{DefaultEngine, Engine, LogStore};
use openraft::alias::{EntryOf, LogIdOf, VoteOf};
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};

use crate::TypeConfig;
use crate::codec::{decode, encode, storage_io};

/// openraft's log storage over `geowallet_storage::LogStore`. Appends are
/// visible at once and reported durable by the shared log syncer (one WAL
/// fsync for everything appended meanwhile: group commit).
pub struct LogAdapter<E: Engine = DefaultEngine> {
    store: LogStore<E>,
}

impl<E: Engine> Clone for LogAdapter<E> {
    fn clone(&self) -> Self {
        LogAdapter {
            store: self.store.clone(),
        }
    }
}

impl<E: Engine> LogAdapter<E> {
    pub fn new(store: LogStore<E>) -> LogAdapter<E> {
        LogAdapter { store }
    }
}

fn bounds(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(e) => e.saturating_add(1),
        Bound::Excluded(e) => *e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl<E: Engine> RaftLogReader<TypeConfig> for LogAdapter<E> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<EntryOf<TypeConfig>>, io::Error> {
        let (start, end) = bounds(&range);
        let rows = self.store.read_range(start, end).map_err(storage_io)?;
        let mut entries = Vec::with_capacity(rows.len());
        for (index, bytes) in rows {
            let entry: EntryOf<TypeConfig> = decode("log entry", &bytes)?;
            if entry.log_id.index != index {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("log entry at {index} claims index {}", entry.log_id.index),
                ));
            }
            entries.push(entry);
        }
        Ok(entries)
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<TypeConfig>>, io::Error> {
        match self.store.read_vote().map_err(storage_io)? {
            Some(bytes) => Ok(Some(decode("vote", &bytes)?)),
            None => Ok(None),
        }
    }
}

impl<E: Engine> RaftLogStorage<TypeConfig> for LogAdapter<E> {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged: Option<LogIdOf<TypeConfig>> =
            match self.store.read_last_purged().map_err(storage_io)? {
                Some(bytes) => Some(decode("last purged log id", &bytes)?),
                None => None,
            };
        let last = match self.store.last().map_err(storage_io)? {
            Some((_, bytes)) => Some(decode::<EntryOf<TypeConfig>>("log entry", &bytes)?.log_id),
            None => last_purged,
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<TypeConfig>) -> Result<(), io::Error> {
        self.store.save_vote(&encode(vote)?).map_err(storage_io)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogIdOf<TypeConfig>>,
    ) -> Result<(), io::Error> {
        self.store
            .save_committed(&encode(&committed)?)
            .map_err(storage_io)
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<TypeConfig>>, io::Error> {
        match self.store.read_committed().map_err(storage_io)? {
            Some(bytes) => decode("committed log id", &bytes),
            None => Ok(None),
        }
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = EntryOf<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut rows = Vec::new();
        for entry in entries {
            rows.push((entry.log_id.index, encode(&entry)?));
        }
        if rows.is_empty() {
            callback.io_completed(Ok(()));
            return Ok(());
        }
        self.store
            .append(
                &rows,
                Box::new(move |result| callback.io_completed(result.map_err(storage_io))),
            )
            .map_err(storage_io)
    }

    async fn truncate_after(
        &mut self,
        last_log_id: Option<LogIdOf<TypeConfig>>,
    ) -> Result<(), io::Error> {
        self.store
            .truncate_after(last_log_id.map(|l| l.index))
            .map_err(storage_io)
    }

    async fn purge(&mut self, log_id: LogIdOf<TypeConfig>) -> Result<(), io::Error> {
        self.store
            .purge_upto(log_id.index, &encode(&log_id)?)
            .map_err(storage_io)
    }
}
