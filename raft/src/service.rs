use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use geowallet_proto::raft::raft_service_server::RaftService;
use geowallet_proto::raft::{RaftBatch, RaftMessage, SnapshotChunk};
use geowallet_storage::{DefaultEngine, Engine, GroupId, SnapshotChunkWriter};
use openraft::alias::{SnapshotMetaOf, VoteOf};
use tonic::{Request, Response, Status, Streaming};

use crate::codec::{decode, encode};
use crate::{GroupRaft, SnapshotHandle, WallClock};

/// Messages in one `AppendBatch` at most (a sender batches one heartbeat
/// per group it leads with this peer).
pub const BATCH_MESSAGES_MAX: usize = 65_536;

/// The Raft groups hosted by this node, by group id.
pub struct GroupRegistry<E: Engine = DefaultEngine> {
    groups: RwLock<HashMap<GroupId, (GroupRaft<E>, PathBuf)>>,
}

impl<E: Engine> Default for GroupRegistry<E> {
    fn default() -> Self {
        GroupRegistry {
            groups: RwLock::new(HashMap::new()),
        }
    }
}

impl<E: Engine> GroupRegistry<E> {
    /// Registers `raft`; received snapshots for it are written to `snapshot_dir`.
    pub fn insert(&self, group: GroupId, raft: GroupRaft<E>, snapshot_dir: PathBuf) {
        self.groups
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(group, (raft, snapshot_dir));
    }

    /// Stops routing to `group`; its RPCs get `not_found` from now on.
    pub fn remove(&self, group: GroupId) {
        self.groups
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&group);
    }

    pub fn get(&self, group: GroupId) -> Option<GroupRaft<E>> {
        self.groups
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&group)
            .map(|(r, _)| r.clone())
    }

    /// Every registered group's Raft.
    pub fn rafts(&self) -> Vec<GroupRaft<E>> {
        self.groups
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|(r, _)| r.clone())
            .collect()
    }

    fn snapshot_dir(&self, group: GroupId) -> Option<PathBuf> {
        self.groups
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&group)
            .map(|(_, d)| d.clone())
    }
}

/// Server side of the node-to-node Raft RPCs: decodes, routes by group id,
/// hands the message to that group's `Raft`.
pub struct RaftRpcService<E: Engine = DefaultEngine> {
    registry: Arc<GroupRegistry<E>>,
    /// Stamped on every reply: the sender measures this node's clock.
    clock: WallClock,
}

impl<E: Engine> Clone for RaftRpcService<E> {
    fn clone(&self) -> Self {
        RaftRpcService {
            registry: self.registry.clone(),
            clock: self.clock.clone(),
        }
    }
}

impl<E: Engine> RaftRpcService<E> {
    pub fn new(registry: Arc<GroupRegistry<E>>, clock: WallClock) -> RaftRpcService<E> {
        RaftRpcService { registry, clock }
    }

    fn reply<T: serde::Serialize>(
        &self,
        group_id: u64,
        v: &T,
    ) -> Result<Response<RaftMessage>, Status> {
        self.message(group_id, v).map(Response::new)
    }

    fn message<T: serde::Serialize>(&self, group_id: u64, v: &T) -> Result<RaftMessage, Status> {
        let data = encode(v).map_err(|e| Status::internal(e.to_string()))?;
        Ok(RaftMessage {
            group_id,
            data,
            sender_time_ns: self.clock.now_ns(),
            ..Default::default()
        })
    }

    /// One AppendEntries of a batch, answered as a message (an error is
    /// carried in it: one group's failure does not fail the others).
    async fn append_one(&self, m: RaftMessage) -> RaftMessage {
        let group_id = m.group_id;
        let result = async {
            let raft = self.raft(group_id)?;
            let rpc = decode("append entries", &m.data).map_err(bad_input)?;
            let resp = raft.append_entries(rpc).await.map_err(fatal)?;
            self.message(group_id, &resp)
        }
        .await;
        result.unwrap_or_else(|status| RaftMessage {
            group_id,
            sender_time_ns: self.clock.now_ns(),
            error_code: status.code() as i32,
            error: status.message().to_string(),
            ..Default::default()
        })
    }

    fn raft(&self, group_id: u64) -> Result<GroupRaft<E>, Status> {
        self.registry.get(GroupId(group_id)).ok_or_else(|| {
            Status::not_found(format!("group {group_id} is not hosted on this node"))
        })
    }
}

fn bad_input(e: std::io::Error) -> Status {
    Status::invalid_argument(e.to_string())
}

fn fatal(e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("raft is shutting down or failed: {e}"))
}

#[tonic::async_trait]
impl<E: Engine> RaftService for RaftRpcService<E> {
    async fn append_entries(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let m = req.into_inner();
        let raft = self.raft(m.group_id)?;
        let rpc = decode("append entries", &m.data).map_err(bad_input)?;
        let resp = raft.append_entries(rpc).await.map_err(fatal)?;
        self.reply(m.group_id, &resp)
    }

    async fn append_batch(&self, req: Request<RaftBatch>) -> Result<Response<RaftBatch>, Status> {
        let messages = req.into_inner().messages;
        if messages.len() > BATCH_MESSAGES_MAX {
            return Err(Status::invalid_argument(format!(
                "a batch of {} messages; at most {BATCH_MESSAGES_MAX}",
                messages.len()
            )));
        }
        let replies =
            futures::future::join_all(messages.into_iter().map(|m| self.append_one(m))).await;
        Ok(Response::new(RaftBatch { messages: replies }))
    }

    async fn vote(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let m = req.into_inner();
        let raft = self.raft(m.group_id)?;
        let rpc = decode("vote", &m.data).map_err(bad_input)?;
        let resp = raft.vote(rpc).await.map_err(fatal)?;
        self.reply(m.group_id, &resp)
    }

    async fn pre_vote(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let m = req.into_inner();
        let raft = self.raft(m.group_id)?;
        let rpc = decode("pre-vote", &m.data).map_err(bad_input)?;
        let resp = raft.pre_vote(rpc).await.map_err(fatal)?;
        self.reply(m.group_id, &resp)
    }

    async fn transfer_leader(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let m = req.into_inner();
        let raft = self.raft(m.group_id)?;
        let rpc = decode("transfer leader", &m.data).map_err(bad_input)?;
        let resp = raft.handle_transfer_leader(rpc).await.map_err(fatal)?;
        self.reply(m.group_id, &resp)
    }

    async fn install_snapshot(
        &self,
        req: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<RaftMessage>, Status> {
        let mut stream = req.into_inner();
        let first = stream
            .next()
            .await
            .ok_or_else(|| Status::invalid_argument("empty snapshot stream"))??;
        let group_id = first.group_id;
        let raft = self.raft(group_id)?;
        let dir = self
            .registry
            .snapshot_dir(GroupId(group_id))
            .ok_or_else(|| Status::not_found("group gone"))?;
        let vote: VoteOf<crate::TypeConfig> =
            decode("snapshot vote", &first.vote).map_err(bad_input)?;
        let meta: SnapshotMetaOf<crate::TypeConfig> =
            decode("snapshot meta", &first.meta).map_err(bad_input)?;
        let nonce: u64 = rand::random();
        let path = dir.join(format!("{}-recv-{nonce:016x}.snap", GroupId(group_id)));
        let storage = |e: geowallet_storage::StorageError| Status::data_loss(e.to_string());
        let mut writer = SnapshotChunkWriter::create(&path).map_err(storage)?;
        let mut chunk = first;
        loop {
            if chunk.last {
                break;
            }
            writer
                .write_piece(chunk.offset, &chunk.data, chunk.crc32)
                .map_err(storage)?;
            chunk = stream.next().await.ok_or_else(|| {
                Status::invalid_argument("snapshot stream ended before its last chunk")
            })??;
        }
        let info = writer.finish().map_err(|e| {
            tracing::warn!(group = group_id, "refused a snapshot: {e}");
            storage(e)
        })?;
        if let Err(why) = matches_meta(GroupId(group_id), &info, &meta) {
            tracing::warn!(group = group_id, "refused a snapshot: {why}");
            let _ = std::fs::remove_file(&path);
            return Err(Status::invalid_argument(format!("refused snapshot: {why}")));
        }
        tracing::info!(
            group = group_id,
            rows = info.rows,
            bytes = info.size_bytes,
            "received snapshot"
        );
        let snapshot = openraft::storage::Snapshot {
            meta,
            snapshot: SnapshotHandle { path: path.clone() },
        };
        let resp = raft.install_full_snapshot(vote, snapshot).await;
        crate::state_machine::discard_unless_current(&dir, &path);
        self.reply(group_id, &resp.map_err(fatal)?)
    }
}

/// Whether a received snapshot file is what its metadata says: of the
/// group it was sent for, at the log position and membership the meta
/// names (openraft trusts the meta; the rows must agree with it).
fn matches_meta(
    group: GroupId,
    info: &geowallet_storage::SnapshotFileInfo,
    meta: &SnapshotMetaOf<crate::TypeConfig>,
) -> Result<(), String> {
    if info.group != group {
        return Err(format!("its rows are of group {}, not {group}", info.group));
    }
    let applied = crate::state_machine::AppliedState::from_stored(Some(&info.applied))
        .map_err(|e| format!("its applied position does not decode: {e}"))?;
    if applied.last_applied != meta.last_log_id {
        return Err(format!(
            "its rows are at {:?} but its meta says {:?}",
            applied.last_applied, meta.last_log_id
        ));
    }
    if applied.membership != meta.last_membership {
        return Err("its rows' membership differs from its meta's".to_string());
    }
    Ok(())
}
