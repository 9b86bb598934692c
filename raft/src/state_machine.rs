use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use futures::{FutureExt, Stream, StreamExt};
use geowallet_ledger::{EntryContext, LedgerConfig, LogIndex, Outcome, State};
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

struct Shared {
    ledger: State,
    applied: AppliedState,
}

/// Read access to the applied ledger state, for strong reads after a read
/// index has been confirmed. Never held across an await.
#[derive(Clone)]
pub struct LedgerView {
    shared: Arc<RwLock<Shared>>,
}

impl LedgerView {
    pub fn read<R>(&self, f: impl FnOnce(&State, &AppliedState) -> R) -> R {
        let guard = self.shared.read().unwrap_or_else(|p| p.into_inner());
        f(&guard.ledger, &guard.applied)
    }
}

/// A snapshot file on local disk: built here or received from a leader.
#[derive(Debug, Clone)]
pub struct SnapshotHandle {
    pub path: PathBuf,
}

/// openraft's state machine over the ledger rules and `StateStore`.
pub struct LedgerStateMachine<E: Engine = DefaultEngine> {
    shared: Arc<RwLock<Shared>>,
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
    /// Loads the group's ledger state (replaying nothing: the applied index is
    /// stored with it; openraft re-applies only the log tail after it).
    pub fn open(
        store: StateStore<E>,
        snapshot_dir: PathBuf,
        config: LedgerConfig,
    ) -> Result<Self, io::Error> {
        std::fs::create_dir_all(&snapshot_dir)?;
        let (ledger, applied) = store.load(config.clone()).map_err(storage_io)?;
        let applied = match applied {
            Some(bytes) => decode("applied state", &bytes)?,
            None => AppliedState::default(),
        };
        ledger.check_invariants();
        let shared = Arc::new(RwLock::new(Shared { ledger, applied }));
        Ok(LedgerStateMachine {
            shared,
            store,
            snapshot_dir,
            config,
        })
    }

    pub fn view(&self) -> LedgerView {
        LedgerView {
            shared: self.shared.clone(),
        }
    }

    pub fn store(&self) -> &StateStore<E> {
        &self.store
    }

    fn apply_batch(&self, batch: Vec<EntryResponder<TypeConfig>>) -> Result<(), io::Error> {
        let mut replies = Vec::with_capacity(batch.len());
        let mut guard = self.shared.write().unwrap_or_else(|p| p.into_inner());
        let shared = &mut *guard;
        for (entry, responder) in batch {
            let outcomes: Vec<Outcome> = match entry.payload {
                EntryPayload::Blank => Vec::new(),
                EntryPayload::Normal(proposal) => {
                    let ctx = EntryContext {
                        log_index: LogIndex(entry.log_id.index),
                        leader_time_ns: proposal.leader_time_ns,
                    };
                    shared.ledger.apply(ctx, &proposal.requests)
                }
                EntryPayload::Membership(m) => {
                    shared.applied.membership = StoredMembership::new(Some(entry.log_id), m);
                    Vec::new()
                }
            };
            shared.applied.last_applied = Some(entry.log_id);
            replies.push((responder, outcomes));
        }
        let changes = shared.ledger.take_changes();
        self.store
            .persist(&changes, &encode(&shared.applied)?)
            .map_err(storage_io)?;
        drop(guard);
        for (responder, outcomes) in replies {
            if let Some(r) = responder {
                r.send(outcomes);
            }
        }
        Ok(())
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
        let guard = self.shared.read().unwrap_or_else(|p| p.into_inner());
        Ok((guard.applied.last_applied, guard.applied.membership.clone()))
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
        let config = self.config.clone();
        let (ledger, applied) = blocking(move || {
            store.install_snapshot(&path)?;
            store.load(config)
        })
        .await?
        .map_err(storage_io)?;
        let applied: AppliedState = decode("applied state", &applied.unwrap_or_default())?;
        ledger.check_invariants();
        {
            let mut guard = self.shared.write().unwrap_or_else(|p| p.into_inner());
            guard.ledger = ledger;
            guard.applied = applied;
        }
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
        let applied: AppliedState = if info.applied.is_empty() {
            AppliedState::default()
        } else {
            decode("applied state", &info.applied)?
        };
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
