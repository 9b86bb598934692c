use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use futures::{FutureExt, Stream, StreamExt};
use geowallet_ledger::{
    Chain, EntryContext, EntryEvents, GENESIS, LedgerConfig, LogIndex, MoveCommand, MoveOutcome,
    Outcome, Request,
};
use geowallet_storage::{DefaultEngine, Engine, StateStore, remove_snapshot};
use openraft::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, RaftSnapshotBuilder, StoredMembership};
use serde::{Deserialize, Serialize};

use crate::codec::{decode, encode, storage_io};
use crate::directory::{DirCommand, DirReply, DirRows, Overlay};
use crate::{Applied, Proposal, TypeConfig};

/// Entries applied per state write at most (one RocksDB batch each).
const ENTRIES_PER_WRITE_MAX: usize = 256;

/// The Raft position the ledger state reflects, stored atomically with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// A snapshot on local disk: a checkpoint directory built here, or a
/// snapshot file received from a leader.
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
    /// Serializes snapshot builds and installs of this group, files included:
    /// openraft builds in a task of its own, so without it a build could read
    /// an install half done, or delete the file an install is reading.
    snapshot_lock: Arc<Mutex<()>>,
    /// The chain of the group's last event row, once read (`None`: read it
    /// from the store). Saves apply a reverse seek per entry; forgotten
    /// when a snapshot replaces the rows.
    last_chain: std::sync::Mutex<Option<Chain>>,
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
        prune_snapshot_dir(&snapshot_dir)?;
        Ok(LedgerStateMachine {
            snapshot_lock: Arc::new(Mutex::new(())),
            last_chain: std::sync::Mutex::new(None),
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
        self.persist_entry(ctx, &changes, applied)?;
        Ok(outcomes)
    }

    /// Applies a wallet move step over the stored rows and writes its
    /// changes with the new applied position in one batch.
    fn apply_move(
        &self,
        ctx: EntryContext,
        step: &MoveCommand,
        applied: &AppliedState,
    ) -> Result<MoveOutcome, io::Error> {
        let rows = self.store.rows();
        let (outcome, changes) = geowallet_ledger::apply_move(&rows, &self.config, ctx, step);
        // A failed read makes the outcome meaningless: nothing is written.
        rows.finish().map_err(storage_io)?;
        self.persist_entry(ctx, &changes, applied)?;
        Ok(outcome)
    }

    /// Writes an entry's changes, its events chained after the group's
    /// last ones (when it wrote journal lines), and the applied position,
    /// in one batch. The events are the lines this entry created: a wallet
    /// arriving from another group brings its older lines along, which are
    /// not events of this group.
    fn persist_entry(
        &self,
        ctx: EntryContext,
        changes: &geowallet_ledger::Changes,
        applied: &AppliedState,
    ) -> Result<(), io::Error> {
        let lines: Vec<geowallet_ledger::JournalEntry> = changes
            .journal
            .iter()
            .filter(|l| l.group == ctx.group && l.log_index == ctx.log_index)
            .cloned()
            .collect();
        let mut last_chain = self.last_chain.lock().unwrap_or_else(|p| p.into_inner());
        let events = if lines.is_empty() {
            None
        } else {
            let prev = match *last_chain {
                Some(chain) => chain,
                None => self
                    .store
                    .last_events()
                    .map_err(storage_io)?
                    .map_or(GENESIS, |p| p.chain),
            };
            let time_ns = changes
                .meta
                .as_ref()
                .map_or(ctx.leader_time_ns, |m| m.leader_time_ns);
            Some(EntryEvents::new(
                ctx.group,
                ctx.log_index.0,
                time_ns,
                prev,
                lines,
            ))
        };
        self.store
            .persist_with_events(changes, &encode(applied)?, events.as_ref())
            .map_err(storage_io)?;
        if let Some(e) = &events {
            *last_chain = Some(e.chain);
        }
        Ok(())
    }

    /// Applies an entry of directory commands (the directory group's) and
    /// writes the rows they changed with the new applied position.
    fn apply_directory(
        &self,
        commands: &[DirCommand],
        applied: &AppliedState,
    ) -> Result<Vec<DirReply>, io::Error> {
        let rows = DirStoreRows {
            store: &self.store,
            error: std::cell::RefCell::new(None),
        };
        let mut overlay = Overlay::new(&rows);
        let replies = commands.iter().map(|c| overlay.apply(c)).collect();
        if let Some(key) = overlay.undecodable() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("directory row {key:?} does not decode: damaged or from another version"),
            ));
        }
        let writes = overlay.into_writes();
        // A failed read makes the replies meaningless: nothing is written.
        if let Some(e) = rows.error.into_inner() {
            return Err(storage_io(e));
        }
        self.store
            .directory_persist(&writes, &encode(applied)?)
            .map_err(storage_io)?;
        Ok(replies)
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
            let outcomes: Applied = match entry.payload {
                EntryPayload::Blank => {
                    self.persist_position(&applied)?;
                    Applied::default()
                }
                EntryPayload::Normal(proposal) if !proposal.directory.is_empty() => Applied {
                    directory: self.apply_directory(&proposal.directory, &applied)?,
                    ..Applied::default()
                },
                EntryPayload::Normal(Proposal {
                    wallet_move: Some(step),
                    leader_time_ns,
                    ..
                }) => {
                    let ctx = EntryContext {
                        group,
                        log_index: LogIndex(entry.log_id.index),
                        leader_time_ns,
                    };
                    Applied {
                        wallet_move: Some(self.apply_move(ctx, &step, &applied)?),
                        ..Applied::default()
                    }
                }
                EntryPayload::Normal(proposal) => {
                    let ctx = EntryContext {
                        group,
                        log_index: LogIndex(entry.log_id.index),
                        leader_time_ns: proposal.leader_time_ns,
                    };
                    Applied {
                        outcomes: self.apply_requests(ctx, &proposal.requests, &applied)?,
                        ..Applied::default()
                    }
                }
                EntryPayload::Membership(m) => {
                    applied.membership = StoredMembership::new(Some(entry.log_id), m);
                    self.persist_position(&applied)?;
                    Applied::default()
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

    fn read_current(&self) -> Result<Option<CurrentSnapshot>, io::Error> {
        read_pointer(&self.snapshot_dir)
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

fn read_pointer(dir: &Path) -> Result<Option<CurrentSnapshot>, io::Error> {
    match std::fs::read(dir.join("current")) {
        Ok(bytes) => Ok(Some(decode("current snapshot pointer", &bytes)?)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Makes `file` (a snapshot file or checkpoint directory inside `dir`) the
/// current snapshot and deletes the one it replaces, unless the current one
/// is newer: `current` only moves forward (then `file` is the one deleted).
/// Others are left alone: one may be a received snapshot about to be
/// installed. Call with the snapshot lock held.
fn set_current(dir: &Path, meta: &SnapshotMetaOf<TypeConfig>, file: &str) -> Result<(), io::Error> {
    let existing = read_pointer(dir)?;
    if let Some(existing) = &existing {
        let exists = dir.join(&existing.file).exists();
        if exists && existing.file != file && existing.meta.last_log_id > meta.last_log_id {
            tracing::info!(kept = %existing.file, dropped = %file, "a newer snapshot is current");
            remove_snapshot(&dir.join(file));
            return Ok(());
        }
    }
    let pointer = CurrentSnapshot {
        meta: meta.clone(),
        file: file.to_string(),
    };
    let tmp = dir.join("current.tmp");
    std::fs::write(&tmp, encode(&pointer)?)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    geowallet_storage::rename_durably(&tmp, &dir.join("current")).map_err(storage_io)?;
    if let Some(old) = existing.filter(|e| e.file != file) {
        remove_snapshot(&dir.join(old.file));
    }
    Ok(())
}

/// The snapshot at `path` as a snapshot file of `dir` (copied there if it
/// is elsewhere; written out if it is a checkpoint), so the current snapshot
/// is always one of the group's own.
fn into_dir(
    dir: &Path,
    path: &Path,
    group: geowallet_storage::GroupId,
) -> Result<PathBuf, io::Error> {
    let nonce: u64 = rand::random();
    let local = dir.join(format!("{group}-in-{nonce:016x}.snap"));
    if path.is_dir() {
        geowallet_storage::write_snapshot_file(path, group, &local).map_err(storage_io)?;
        return Ok(local);
    }
    if path.parent() == Some(dir) {
        return Ok(path.to_path_buf());
    }
    let tmp = local.with_extension("part");
    std::fs::copy(path, &tmp)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    geowallet_storage::rename_durably(&tmp, &local).map_err(storage_io)?;
    Ok(local)
}

/// Deletes a received snapshot file that did not become current (openraft
/// refused or skipped it), so failed or superseded receives leave nothing.
pub fn discard_unless_current(dir: &Path, path: &Path) {
    let name = path.file_name().map(|f| f.to_string_lossy().into_owned());
    let current = read_pointer(dir).ok().flatten().map(|c| c.file);
    if name.is_some() && name != current {
        remove_snapshot(path);
    }
}

/// At startup, deletes what failed or superseded work left in a snapshot
/// dir: partial files and checkpoints (`.part`, `.tmp`), table files of an
/// install (`.sst`), and snapshots `current` does not name. A snapshot an
/// interrupted install was reading is finished by then
/// (`StateStore::open_applied` runs first).
fn prune_snapshot_dir(dir: &Path) -> Result<(), io::Error> {
    let keep = read_pointer(dir)?.map(|c| c.file);
    for item in std::fs::read_dir(dir)? {
        let name = item?.file_name().to_string_lossy().into_owned();
        let partial = name.ends_with(".part")
            || name.ends_with(".sst")
            || (name.ends_with(".tmp") && name != "current.tmp");
        let snapshot = name.ends_with(".snap") || name.ends_with(".ckpt");
        let stale = snapshot && Some(&name) != keep.as_ref();
        if partial || stale {
            remove_snapshot(&dir.join(&name));
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
            lock: self.snapshot_lock.clone(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<TypeConfig>,
        snapshot: SnapshotHandle,
    ) -> Result<(), io::Error> {
        let store = self.store.clone();
        let (lock, dir, meta) = (
            self.snapshot_lock.clone(),
            self.snapshot_dir.clone(),
            meta.clone(),
        );
        let path = snapshot.path.clone();
        // The rows (event rows included) are replaced: read the chain anew.
        *self.last_chain.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let stored = blocking(move || {
            let _serial = lock.lock().unwrap_or_else(|p| p.into_inner());
            let path = into_dir(&dir, &path, store.group())?;
            let stored = store.install_snapshot(&path).map_err(storage_io)?;
            let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
            set_current(&dir, &meta, &file.unwrap_or_default())?;
            Ok::<_, io::Error>(stored)
        })
        .await??;
        let applied = AppliedState::from_stored(Some(&stored))?;
        *self.applied.write().unwrap_or_else(|p| p.into_inner()) = applied;
        Ok(())
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

/// Builds a snapshot as a checkpoint of the store, off the apply path.
pub struct LedgerSnapshotBuilder<E: Engine = DefaultEngine> {
    store: StateStore<E>,
    dir: PathBuf,
    lock: Arc<Mutex<()>>,
}

impl<E: Engine> RaftSnapshotBuilder<TypeConfig> for LedgerSnapshotBuilder<E> {
    type SnapshotData = SnapshotHandle;

    async fn build_snapshot(
        &mut self,
    ) -> Result<SnapshotOf<TypeConfig, SnapshotHandle>, io::Error> {
        let store = self.store.clone();
        let nonce: u64 = rand::random();
        let file = format!("{}-{nonce:016x}.ckpt", store.group());
        let (dir, lock) = (self.dir.clone(), self.lock.clone());
        let started = std::time::Instant::now();
        let (info, current) = blocking(move || {
            let _serial = lock.lock().unwrap_or_else(|p| p.into_inner());
            let info = store.build_snapshot(&dir.join(&file)).map_err(storage_io)?;
            let applied = AppliedState::from_stored(Some(&info.applied))?;
            let meta = openraft::SnapshotMeta {
                last_log_id: applied.last_applied,
                last_membership: applied.membership,
            };
            set_current(&dir, &meta, &file)?;
            // An install may have made a newer snapshot current meanwhile.
            let current =
                read_pointer(&dir)?.ok_or_else(|| io::Error::other("no current snapshot"))?;
            Ok::<_, io::Error>((info, current))
        })
        .await??;
        let (meta, path) = (current.meta, self.dir.join(&current.file));
        tracing::info!(
            checkpoint_bytes = info.size_bytes,
            took_ms = started.elapsed().as_millis() as u64,
            last = ?meta.last_log_id,
            "built snapshot (checkpoint)"
        );
        Ok(openraft::storage::Snapshot {
            meta,
            snapshot: SnapshotHandle { path },
        })
    }
}

/// Directory rows read through the group's store; the first read error is
/// kept (the rules see it as an absent row) and fails the entry.
struct DirStoreRows<'a, E: Engine> {
    store: &'a StateStore<E>,
    error: std::cell::RefCell<Option<geowallet_storage::StorageError>>,
}

impl<E: Engine> DirRows for DirStoreRows<'_, E> {
    fn read(&self, key: geowallet_storage::DirKey) -> Option<Vec<u8>> {
        match self.store.directory_get(key) {
            Ok(v) => v,
            Err(e) => {
                self.error.borrow_mut().get_or_insert(e);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use openraft::impls::leader_id_adv::LeaderId;
    use openraft::{LogId, Membership, StoredMembership};

    use super::*;
    use crate::NodeInfo;

    /// `current` as encoded when the test was written (see the golden files
    /// under tests/golden/ for the other stored formats).
    const POINTER_GOLDEN: &str = "010502ad02010502ad0201010101010d31302e302e302e313a3730303002657501610\
                                   01b67312d696e2d303030303030303030303030303066662e736e6170";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("a hex byte"))
            .collect()
    }

    // The snapshot pointer file (`current`, read at every start) still has
    // the committed bytes, and they still decode to the same pointer.
    #[test]
    fn current_snapshot_pointer_keeps_its_encoding() {
        let log_id = LogId::new(
            LeaderId {
                term: 5,
                node_id: 2,
            },
            301,
        );
        let node = NodeInfo {
            addr: "10.0.0.1:7000".into(),
            region: "eu".into(),
            dc: "a".into(),
        };
        let nodes = std::collections::BTreeMap::from([(1, node)]);
        let membership = Membership::new(vec![[1].into()], nodes).unwrap();
        let pointer = CurrentSnapshot {
            meta: SnapshotMetaOf::<TypeConfig> {
                last_log_id: Some(log_id),
                last_membership: StoredMembership::new(Some(log_id), membership),
            },
            file: "g1-in-00000000000000ff.snap".into(),
        };
        let today = hex(&encode(&pointer).unwrap());
        let changed = "the on-disk format changed: if intended, add a migration and \
                       update the golden bytes";
        assert_eq!(today, POINTER_GOLDEN, "{changed}");
        let read: CurrentSnapshot = decode("pointer", &unhex(POINTER_GOLDEN)).unwrap();
        assert_eq!(
            (read.meta, read.file),
            (pointer.meta, pointer.file),
            "{changed}"
        );
    }
}
