use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use futures::{FutureExt, Stream, StreamExt};
use geowallet_ledger::{EntryContext, LedgerConfig, LogIndex, Outcome, Request};
use geowallet_storage::{DefaultEngine, Engine, StateStore};
use openraft::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, RaftSnapshotBuilder, StoredMembership};
use serde::{Deserialize, Serialize};

use crate::TypeConfig;
use crate::codec::{decode, encode, storage_io};

/// Entries applied per state write at most (one RocksDB batch each).
const ENTRIES_PER_WRITE_MAX: usize = 256;

/// The Raft position the ledger state reflects, stored atomically with it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AppliedState {
    pub last_applied: Option<LogIdOf<TypeConfig>>,
    pub membership: StoredMembershipOf<TypeConfig>,
}

impl AppliedState {
    /// The applied log index (0 before anything was applied).
    pub fn index(&self) -> u64 {
        self.last_applied.as_ref().map_or(0, |l| l.index)
    }

    /// Decodes the applied position stored with the ledger rows.
    pub fn from_stored(bytes: Option<&[u8]>) -> Result<AppliedState, io::Error> {
        match bytes {
            Some(b) if !b.is_empty() => decode("applied state", b),
            _ => Ok(AppliedState::default()),
        }
    }
}

/// A snapshot file on local disk: built here or received from a leader.
#[derive(Debug, Clone)]
pub struct SnapshotHandle {
    pub path: PathBuf,
}

/// openraft's state machine over the ledger rules and `StateStore`: the
/// ledger's rows live in RocksDB; apply reads the rows each entry touches.
pub struct LedgerStateMachine<E: Engine = DefaultEngine> {
    applied: Arc<RwLock<AppliedState>>,
    store: StateStore<E>,
    snapshot_dir: PathBuf,
    config: LedgerConfig,
}

#[derive(Serialize, Deserialize)]
struct CurrentSnapshot {
    meta: SnapshotMetaOf<TypeConfig>,
    file: String,
}

impl<E: Engine> LedgerStateMachine<E> {
    /// Opens the group's state machine: reads the applied position only (no
    /// scan of the rows); openraft re-applies the log tail after it.
    pub fn open(
        store: StateStore<E>,
        snapshot_dir: PathBuf,
        config: LedgerConfig,
    ) -> Result<Self, io::Error> {
        std::fs::create_dir_all(&snapshot_dir)?;
        let stored = store.open_applied().map_err(storage_io)?;
        let applied = AppliedState::from_stored(stored.as_deref())?;
        Ok(LedgerStateMachine {
            applied: Arc::new(RwLock::new(applied)),
            store,
            snapshot_dir,
            config,
        })
    }

    pub fn store(&self) -> &StateStore<E> {
        &self.store
    }

    /// Applies one entry's requests over the stored rows and writes the
    /// changes with the new applied position in one batch.
    fn apply_requests(
        &self,
        ctx: EntryContext,
        requests: &[Request],
        applied: &AppliedState,
    ) -> Result<Vec<Outcome>, io::Error> {
        let rows = self.store.rows();
        rows.prefetch(requests);
        let (outcomes, changes) = geowallet_ledger::apply(&rows, &self.config, ctx, requests);
        // A failed read makes the outcomes meaningless: nothing is written.
        rows.finish().map_err(storage_io)?;
        self.store
            .persist(&changes, &encode(applied)?)
            .map_err(storage_io)?;
        Ok(outcomes)
    }

    fn apply_batch(&self, batch: Vec<EntryResponder<TypeConfig>>) -> Result<(), io::Error> {
        let mut replies = Vec::with_capacity(batch.len());
        let mut applied = self
            .applied
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let group = self.store.group().0;
        for (entry, responder) in batch {
            applied.last_applied = Some(entry.log_id);
            let outcomes: Vec<Outcome> = match entry.payload {
                EntryPayload::Blank => {
                    self.persist_position(&applied)?;
                    Vec::new()
                }
                EntryPayload::Normal(proposal) => {
                    let ctx = EntryContext {
                        group,
                        log_index: LogIndex(entry.log_id.index),
                        leader_time_ns: proposal.leader_time_ns,
                    };
                    self.apply_requests(ctx, &proposal.requests, &applied)?
                }
                EntryPayload::Membership(m) => {
                    applied.membership = StoredMembership::new(Some(entry.log_id), m);
                    self.persist_position(&applied)?;
                    Vec::new()
                }
            };
            replies.push((responder, outcomes));
        }
        *self.applied.write().unwrap_or_else(|p| p.into_inner()) = applied;
        for (responder, outcomes) in replies {
            if let Some(r) = responder {
                r.send(outcomes);
            }
        }
        Ok(())
    }

    fn persist_position(&self, applied: &AppliedState) -> Result<(), io::Error> {
        let changes = geowallet_ledger::Changes::default();
        self.store
            .persist(&changes, &encode(applied)?)
            .map_err(storage_io)
    }

    fn current_path(&self) -> PathBuf {
        self.snapshot_dir.join("current")
    }

    fn read_current(&self) -> Result<Option<CurrentSnapshot>, io::Error> {
        match std::fs::read(self.current_path()) {
            Ok(bytes) => Ok(Some(decode("current snapshot pointer", &bytes)?)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Runs blocking storage work (snapshot build and install, journal pages) off the async
/// threads; inline under simulation, which has no threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, io::Error> {
    #[cfg(not(madsim))]
    {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(io::Error::other)
    }
    #[cfg(madsim)]
    {
        Ok(f())
    }
}

/// Makes `file` (inside `dir`) the current snapshot and deletes older files.
fn set_current(dir: &Path, meta: &SnapshotMetaOf<TypeConfig>, file: &str) -> Result<(), io::Error> {
    let pointer = CurrentSnapshot {
        meta: meta.clone(),
        file: file.to_string(),
    };
    let tmp = dir.join("current.tmp");
    std::fs::write(&tmp, encode(&pointer)?)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, dir.join("current"))?;
    for item in std::fs::read_dir(dir)? {
        let name = item?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".snap") && name != file {
            let _ = std::fs::remove_file(dir.join(&name));
        }
    }
    Ok(())
}

impl<E: Engine> RaftStateMachine<TypeConfig> for LedgerStateMachine<E> {
    type SnapshotData = SnapshotHandle;
    type SnapshotBuilder = LedgerSnapshotBuilder<E>;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<TypeConfig>>, StoredMembershipOf<TypeConfig>), io::Error> {
        let applied = self.applied.read().unwrap_or_else(|p| p.into_inner());
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>>
            + Unpin
            + openraft::OptionalSend,
    {
        while let Some(first) = entries.next().await {
            let mut batch = vec![first?];
            while batch.len() < ENTRIES_PER_WRITE_MAX {
                match entries.next().now_or_never() {
                    Some(Some(item)) => batch.push(item?),
                    _ => break,
                }
            }
            self.apply_batch(batch)?;
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        LedgerSnapshotBuilder {
            store: self.store.clone(),
            dir: self.snapshot_dir.clone(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<TypeConfig>,
        snapshot: SnapshotHandle,
    ) -> Result<(), io::Error> {
        let store = self.store.clone();
        let path = snapshot.path.clone();
        let stored = blocking(move || store.install_snapshot(&path))
            .await?
            .map_err(storage_io)?;
        let applied = AppliedState::from_stored(Some(&stored))?;
        *self.applied.write().unwrap_or_else(|p| p.into_inner()) = applied;
        let file = snapshot
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        set_current(&self.snapshot_dir, meta, &file)
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<TypeConfig, SnapshotHandle>>, io::Error> {
        let Some(current) = self.read_current()? else {
            return Ok(None);
        };
        let path = self.snapshot_dir.join(&current.file);
        if !path.exists() {
            return Ok(None);
        }
        Ok(Some(openraft::storage::Snapshot {
            meta: current.meta,
            snapshot: SnapshotHandle { path },
        }))
    }
}

/// Builds a snapshot file from a consistent RocksDB snapshot, off the apply path.
pub struct LedgerSnapshotBuilder<E: Engine = DefaultEngine> {
    store: StateStore<E>,
    dir: PathBuf,
}

impl<E: Engine> RaftSnapshotBuilder<TypeConfig> for LedgerSnapshotBuilder<E> {
    type SnapshotData = SnapshotHandle;

    async fn build_snapshot(
        &mut self,
    ) -> Result<SnapshotOf<TypeConfig, SnapshotHandle>, io::Error> {
        let store = self.store.clone();
        let nonce: u64 = rand::random();
        let file = format!("{}-{nonce:016x}.snap", store.group());
        let path = self.dir.join(&file);
        let build_path = path.clone();
        let info = blocking(move || store.build_snapshot(&build_path))
            .await?
            .map_err(storage_io)?;
        let applied = AppliedState::from_stored(Some(&info.applied))?;
        let meta = openraft::SnapshotMeta {
            last_log_id: applied.last_applied,
            last_membership: applied.membership.clone(),
        };
        set_current(&self.dir, &meta, &file)?;
        tracing::info!(rows = info.rows, bytes = info.size_bytes, last = ?meta.last_log_id, "built snapshot");
        Ok(openraft::storage::Snapshot {
            meta,
            snapshot: SnapshotHandle { path },
        })
    }
}
