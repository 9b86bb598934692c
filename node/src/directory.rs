//! A node's access to the directory (group 0): the placement cache it
//! checks every wallet command against, the lookups that fill it, and the
//! bootstrap that declares the topology's shard groups once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use geowallet_client::{Client, ClientConfig};
use geowallet_raft::directory::{DirCommand, DirReply, GroupEntry, Placement};
use geowallet_raft::{GroupRaft, Proposal};
use geowallet_storage::{DirKey, Engine};

/// Placements cached per node at most; the cache is dropped whole when it
/// fills (memory stays bounded whatever the number of players).
pub const PLACEMENTS_CACHED_MAX: usize = 1 << 20;

/// The directory as one node sees it.
pub struct Directory {
    /// A client of the directory's replicas (follows its leader).
    client: Client,
    cache: Mutex<HashMap<u64, Placement>>,
}

impl Directory {
    /// `endpoints`: the directory's replicas; `tls`: this node's identity
    /// towards them.
    pub fn new(
        endpoints: Vec<String>,
        tls: Option<geowallet_client::ClientTls>,
    ) -> Result<Directory, geowallet_client::Error> {
        // Short: a lookup runs inside a client's call, whose own deadline
        // must not pass while one directory replica does not answer.
        let config = ClientConfig {
            rpc_timeout: Duration::from_millis(250),
            retry_budget: Duration::from_secs(2),
            tls,
            ..Default::default()
        };
        Ok(Directory {
            client: Client::connect(endpoints, config)?,
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn cached(&self, player: u64) -> Option<Placement> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&player)
            .copied()
    }

    fn remember(&self, p: Placement) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= PLACEMENTS_CACHED_MAX {
            cache.clear();
        }
        let newer = cache.get(&p.player).is_none_or(|c| c.epoch <= p.epoch);
        if newer {
            cache.insert(p.player, p);
        }
    }

    /// Remembers a placement this node learned otherwise (a move it drove).
    pub fn learned(&self, p: Placement) {
        self.remember(p);
    }

    /// `player`'s placement: from the cache unless the caller routed by a
    /// newer epoch than the cached one; else a linearizable directory read.
    /// `None`: not placed.
    pub async fn placement(
        &self,
        player: u64,
        caller_epoch: u64,
    ) -> Result<Option<Placement>, geowallet_client::Error> {
        if let Some(p) = self.cached(player).filter(|p| p.epoch >= caller_epoch) {
            return Ok(Some(p));
        }
        let found = self.client.placement(player).await?;
        let p = found.map(|(group, epoch)| Placement {
            player,
            group,
            epoch,
        });
        if let Some(p) = p {
            self.remember(p);
        }
        Ok(p)
    }
}

/// Proposes `cmd` to the directory group and returns its reply (this node
/// must lead it).
pub async fn propose<E: Engine>(
    raft: &GroupRaft<E>,
    cmd: DirCommand,
) -> Result<
    (u64, DirReply),
    openraft::error::RaftError<
        geowallet_raft::TypeConfig,
        openraft::error::ClientWriteError<geowallet_raft::TypeConfig>,
    >,
> {
    let proposal = Proposal::directory(vec![cmd]);
    let resp = raft.client_write(proposal).await?;
    let reply = resp
        .data
        .directory
        .into_iter()
        .next()
        .expect("one reply per directory command");
    Ok((resp.log_id.index, reply))
}

/// Declares `groups` in the directory once: on every directory replica,
/// retried until the directory has groups (whoever leads proposes; the
/// command is idempotent).
pub async fn bootstrap<E: Engine>(
    raft: GroupRaft<E>,
    store: geowallet_storage::StateStore<E>,
    groups: Vec<GroupEntry>,
) {
    let mut interval = tokio::time::interval(Duration::from_millis(200));
    loop {
        interval.tick().await;
        match store.directory_get(DirKey::Groups) {
            Ok(Some(_)) => return,
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "cannot read the directory's groups");
                continue;
            }
        }
        if !raft.is_leader() {
            continue;
        }
        let set = DirCommand::SetGroups {
            groups: groups.clone(),
        };
        match propose(&raft, set).await {
            Ok((_, DirReply::GroupsSet)) => {
                tracing::info!(groups = groups.len(), "directory groups declared");
            }
            Ok((_, other)) => {
                tracing::error!(reply = ?other, "the directory refused the topology's groups");
                return;
            }
            Err(e) => tracing::debug!(error = %e, "declaring directory groups failed; retrying"),
        }
    }
}

/// A shared handle.
pub type SharedDirectory = Arc<Directory>;
