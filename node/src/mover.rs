//! Drives wallets between shard groups. The leader of the group a wallet
//! leaves runs every move, one committed step after another:
//!
//! 1. source `Leave` (the wallet leaves the books into transit; the
//!    player's commands are refused `moving` from here on),
//! 2. target `Arrive` over the node-to-node `MoveService` (idempotent by
//!    move id), or the target's refusal, the only abort: then source
//!    `Return` and the wallet is back,
//! 3. directory `Repoint` (placement epoch + 1, only from the epoch the
//!    move left at),
//! 4. source `Finish` (a forwarding tombstone: commands are refused
//!    `moved` with the new group and epoch).
//!
//! Every step is idempotent, so a step retried after a lost reply, or a
//! move driven twice (an old and a new leader), changes nothing more. A
//! leader that takes over resumes every `Leaving` marker of its group from
//! the log ([`Mover::resume`]); nothing is decided from memory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use geowallet_ledger::{MoveCommand, MoveId, MoveOutcome, MoveRefusal, PlayerId, PlayerMove};
use geowallet_proto::raft::move_service_client::MoveServiceClient;
use geowallet_proto::raft::move_service_server::MoveService;
use geowallet_proto::raft::{MoveStep, MoveStepReply};
use geowallet_proto::v1 as pb;
use geowallet_raft::directory::{DirCommand, DirRefusal, DirReply, Placement};
use geowallet_raft::{ClockQuorum, Proposal};
use geowallet_storage::{Engine, GroupId};
use openraft::async_runtime::WatchReceiver;
use prost::Message;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::directory::{self, Directory};
use crate::group_host::{Group, GroupHost};
use crate::move_policy::AutoMoves;
use crate::proposer::{self, ProposeError};
use crate::wallet_service::{not_leader, unavailable};

mod transfer;
pub use transfer::TRANSFER_CALL_BUDGET;

/// Fault injection for tests on real processes: with this variable set to
/// a directory, a file `<player>-<point>` there makes the node that passes
/// that point of the player's move die at once (abort: no shutdown, as a
/// SIGKILL), once: the file is removed first. Points: `leave`, `arrive`,
/// `repoint` (the source leader, right after the step committed) and
/// `arrived`, `repointed` (the target's or the directory's leader, after
/// committing the step, before answering). For a transfer between groups,
/// named by the payer: `transfer-begun`, `transfer-settled` (the payer
/// group's leader, after committing the step) and `transfer-credited` (the
/// payee group's leader, after committing the credit, before answering).
pub const MOVE_CRASH_DIR_ENV: &str = "GEOWALLET_MOVE_CRASH_DIR";

/// Dies here if the test asked for it (see [`MOVE_CRASH_DIR_ENV`]).
fn crash_point(player: u64, point: &str) {
    let Some(dir) = std::env::var_os(MOVE_CRASH_DIR_ENV) else {
        return;
    };
    let file = std::path::Path::new(&dir).join(format!("{player}-{point}"));
    if std::fs::remove_file(&file).is_ok() {
        tracing::error!(
            player,
            point,
            "fault injection: dying in the middle of a wallet move"
        );
        std::process::abort();
    }
}

/// One step sent to another node: its deadline.
const STEP_RPC_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one step keeps being retried (leader changes, an unreachable
/// replica) before the move is left for the next resume.
const STEP_RETRY_BUDGET: Duration = Duration::from_secs(10);
/// How long the target and the directory have to answer before a move
/// starts.
const PROBE_BUDGET: Duration = Duration::from_secs(3);
/// Pause between two tries of a step.
const STEP_RETRY_PAUSE: Duration = Duration::from_millis(50);
/// How often a leader looks for moves of its groups to resume.
const RESUME_INTERVAL: Duration = Duration::from_secs(1);
/// A leader rescans its group's moves at least this often (a move left
/// because its target could not be reached is tried again).
const RESCAN_EVERY: u32 = 10;

/// Why a move did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoveError {
    /// This node does not lead the player's group.
    #[error("this node does not lead group {group}")]
    NotLeader {
        group: u64,
        leader_id: Option<u64>,
        leader_endpoint: Option<String>,
    },
    #[error("player {player} is not placed in any group (never opened)")]
    NotPlaced { player: u64 },
    #[error("no shard group is homed in region {region:?} (regions: {regions})")]
    NoGroupInRegion { region: String, regions: String },
    /// The target refused before anything arrived; the wallet is back in
    /// its group.
    #[error(
        "group {to_group} refused player {player}'s wallet ({why}); it stays in group {from_group}"
    )]
    Refused {
        player: u64,
        from_group: u64,
        to_group: u64,
        why: MoveRefusal,
    },
    /// A step could not be taken now (a group without a leader, a step
    /// that did not commit in time). The move resumes from the logs: ask
    /// again.
    #[error(
        "the move of player {player} is not done yet: {reason}; it resumes by itself, ask again"
    )]
    Unavailable { player: u64, reason: String },
    /// The wallet (its accounts, holds and tx records still inside the
    /// idempotency window) is too big to travel in one log entry.
    #[error(
        "player {player}'s wallet is {bytes} bytes, more than a move carries ({max}); \
         it stays where it is (its tx records shrink as they leave the idempotency window)"
    )]
    TooBig {
        player: u64,
        bytes: usize,
        max: usize,
    },
    /// A step found the player in a state the move does not expect.
    #[error("the move of player {player} stopped: {step} answered {why}")]
    Stuck {
        player: u64,
        step: &'static str,
        why: String,
    },
}

/// A completed move (or none needed): where the player is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub group: u64,
    pub epoch: u64,
    /// False when the player was in such a group already.
    pub moved: bool,
}

/// Counters of the moves this node drove.
#[derive(Debug, Default)]
pub struct MoveStats {
    pub started: AtomicU64,
    pub completed: AtomicU64,
    /// Moves the target refused (the wallet returned).
    pub returned: AtomicU64,
    /// Drives that stopped before the end (resumed later).
    pub interrupted: AtomicU64,
    pub in_flight: AtomicU64,
    /// Nanoseconds spent in each step, summed over completed steps.
    pub leave_ns: AtomicU64,
    pub arrive_ns: AtomicU64,
    pub repoint_ns: AtomicU64,
    pub finish_ns: AtomicU64,
    /// Transfers between groups this node began.
    pub transfers_begun: AtomicU64,
}

impl MoveStats {
    pub fn to_pb(&self) -> pb::MoveStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        pb::MoveStats {
            started: get(&self.started),
            completed: get(&self.completed),
            returned: get(&self.returned),
            interrupted: get(&self.interrupted),
            in_flight: get(&self.in_flight),
            leave_ns: get(&self.leave_ns),
            arrive_ns: get(&self.arrive_ns),
            repoint_ns: get(&self.repoint_ns),
            finish_ns: get(&self.finish_ns),
            transfers_begun: get(&self.transfers_begun),
            transfers_pending: 0,
        }
    }
}

/// What one step answered, and at which log index.
type StepResult<T> = Result<(T, u64), ProposeError>;

/// The moves of one node.
pub struct Mover<E: Engine> {
    host: Arc<GroupHost<E>>,
    directory: Arc<Directory>,
    /// The last leader (node id) each remote group named.
    leaders: Mutex<HashMap<u64, u64>>,
    /// Players whose move this node drives now.
    driving: Mutex<HashSet<u64>>,
    /// Pending transfers (payer, tx id) a scan found that this node settles now.
    settling: Mutex<HashSet<(geowallet_ledger::AccountId, geowallet_ledger::TxId)>>,
    pub stats: MoveStats,
}

/// Removes the key (a player, a transfer) from its set when its drive ends
/// however it ends.
struct Driving<'a, K: std::hash::Hash + Eq> {
    set: &'a Mutex<HashSet<K>>,
    key: Option<K>,
}

/// Marks `key` in `set`; `None` if it already is.
fn start_driving<K: std::hash::Hash + Eq + Clone>(
    set: &Mutex<HashSet<K>>,
    key: K,
) -> Option<Driving<'_, K>> {
    let inserted = set
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key.clone());
    // Made only once the lock is released: a guard dropped while the lock
    // is held (`then_some` builds it eagerly) would deadlock.
    inserted.then(|| Driving {
        set,
        key: Some(key),
    })
}

impl<K: std::hash::Hash + Eq> Drop for Driving<'_, K> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.set
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
        }
    }
}

impl<E: Engine> Mover<E> {
    pub fn new(host: Arc<GroupHost<E>>, directory: Arc<Directory>) -> Arc<Mover<E>> {
        Arc::new(Mover {
            host,
            directory,
            leaders: Mutex::new(HashMap::new()),
            driving: Mutex::new(HashSet::new()),
            settling: Mutex::new(HashSet::new()),
            stats: MoveStats::default(),
        })
    }

    /// Moves `player` to a shard group homed in `region`; returns once the
    /// directory places it there (or it was there already). Must run on
    /// the leader of the player's group.
    pub async fn migrate(&self, player: u64, region: &str) -> Result<Moved, MoveError> {
        let result = self.migrate_once(player, region).await;
        let outcome = match &result {
            Ok(m) if m.moved => "moved",
            Ok(_) => "already_there",
            Err(MoveError::NotLeader { .. }) => "not_leader",
            Err(MoveError::Unavailable { .. }) => "unfinished",
            Err(_) => "refused",
        };
        self.host.metrics().wallet_move(outcome);
        result
    }

    async fn migrate_once(&self, player: u64, region: &str) -> Result<Moved, MoveError> {
        let target = self.host.group_in_region(region).ok_or_else(|| {
            let regions: Vec<&str> = self.host.regions().into_iter().collect();
            MoveError::NoGroupInRegion {
                region: region.to_string(),
                regions: regions.join(", "),
            }
        })?;
        let deadline = tokio::time::Instant::now() + STEP_RETRY_BUDGET * 3;
        loop {
            let placement = self.placement(player).await?;
            if placement.group == target.0 {
                return Ok(Moved {
                    group: placement.group,
                    epoch: placement.epoch,
                    moved: false,
                });
            }
            let source = self.led_group(placement.group)?;
            let Some(_driving) = self.start_driving(player) else {
                // A resumed move of the player runs here: wait for it, then
                // look again.
                if tokio::time::Instant::now() >= deadline {
                    return Err(MoveError::Unavailable {
                        player,
                        reason: "another move of the player is still running".into(),
                    });
                }
                tokio::time::sleep(STEP_RETRY_PAUSE).await;
                continue;
            };
            let id = match self.marker(&source, player).await? {
                // A move under way (to any group) ends first.
                Some(PlayerMove::Leaving { id, to_group, .. }) => {
                    self.drive(&source, PlayerId(player), id, to_group).await?;
                    continue;
                }
                Some(PlayerMove::Returned { id }) if id.from_epoch == placement.epoch => MoveId {
                    attempt: id.attempt + 1,
                    ..id
                },
                _ => MoveId {
                    from_epoch: placement.epoch,
                    attempt: 0,
                    from_group: source.id.0,
                },
            };
            self.check_size(&source, player).await?;
            // The wallet is out of reach from its Leave until it arrives:
            // start only when the target and the directory answer now.
            let probe = |group: u64| async move {
                self.remote_within(group, Vec::new(), PROBE_BUDGET)
                    .await
                    .map_err(|e| MoveError::Unavailable {
                        player,
                        reason: format!("group {group} cannot take a move step now: {e}"),
                    })
            };
            futures::future::try_join(probe(target.0), probe(GroupId::DIRECTORY.0)).await?;
            self.stats.started.fetch_add(1, Ordering::Relaxed);
            return self.drive(&source, PlayerId(player), id, target.0).await;
        }
    }

    /// Marks `player` as driven here; `None` if it already is.
    fn start_driving(&self, player: u64) -> Option<Driving<'_, u64>> {
        start_driving(&self.driving, player)
    }

    /// `player`'s placement, read from the directory's leader (never from
    /// a cache: a move starts from the epoch the directory holds now).
    async fn placement(&self, player: u64) -> Result<Placement, MoveError> {
        match self.directory.placement(player, u64::MAX).await {
            Ok(Some(p)) => Ok(p),
            Ok(None) => Err(MoveError::NotPlaced { player }),
            Err(e) => Err(MoveError::Unavailable {
                player,
                reason: format!("cannot read the player's placement: {e}"),
            }),
        }
    }

    /// Group `id`, if this node hosts and leads it.
    fn led_group(&self, id: u64) -> Result<Arc<Group<E>>, MoveError> {
        let group = self.host.group(GroupId(id));
        let leader = group.as_ref().and_then(|g| leader_of(&g.raft));
        match group {
            Some(g) if leader == Some(self.host.node_id()) => Ok(g),
            _ => {
                let leader_id = leader.or_else(|| {
                    self.host
                        .replicas_of(GroupId(id))
                        .and_then(|r| r.iter().copied().find(|r| *r != self.host.node_id()))
                });
                let leader_endpoint =
                    leader_id.and_then(|l| self.host.nodes().get(&l).map(|n| n.addr.clone()));
                Err(MoveError::NotLeader {
                    group: id,
                    leader_id,
                    leader_endpoint,
                })
            }
        }
    }

    /// Refuses to start moving a wallet whose rows would not fit one log
    /// entry (the `Arrive` carries them all) with room to spare for what
    /// the player does before the `Leave` applies.
    async fn check_size(&self, group: &Group<E>, player: u64) -> Result<(), MoveError> {
        let max = self.host.limits().entry_bytes_max() / 2;
        let bytes = read_store(group, player, "reading the wallet", move |store| {
            use geowallet_ledger::LedgerRows;
            let rows = store.rows();
            let wallet = rows.wallet_rows(PlayerId(player));
            rows.finish()
                .map(|()| postcard::to_allocvec(&wallet).map_or(usize::MAX, |b| b.len()))
        })
        .await?;
        if bytes > max {
            return Err(MoveError::TooBig { player, bytes, max });
        }
        Ok(())
    }

    async fn marker(&self, group: &Group<E>, player: u64) -> Result<Option<PlayerMove>, MoveError> {
        read_store(group, player, "reading the move marker", move |store| {
            store.player_move(PlayerId(player))
        })
        .await
    }

    /// Takes move `id` of `player` from `source` (led here) to `to_group`
    /// through every step from wherever it stands. Every step is
    /// idempotent: driving a move that is further along repeats nothing.
    async fn drive(
        &self,
        source: &Group<E>,
        player: PlayerId,
        id: MoveId,
        to_group: u64,
    ) -> Result<Moved, MoveError> {
        self.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let result = self.steps(source, player, id, to_group).await;
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        let counter = match &result {
            Ok(_) => &self.stats.completed,
            Err(MoveError::Refused { .. }) => &self.stats.returned,
            Err(_) => &self.stats.interrupted,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        match &result {
            Ok(m) => {
                tracing::info!(player = player.0, %id, to_group, epoch = m.epoch, "wallet moved")
            }
            Err(e) => {
                tracing::warn!(player = player.0, %id, to_group, error = %e, "wallet move stopped")
            }
        }
        result
    }

    async fn steps(
        &self,
        source: &Group<E>,
        player: PlayerId,
        id: MoveId,
        to_group: u64,
    ) -> Result<Moved, MoveError> {
        let p = player.0;
        let unavailable = |step: &str, e: ProposeError| MoveError::Unavailable {
            player: p,
            reason: format!("{step}: {e}"),
        };
        let stuck = |step: &'static str, why: String| MoveError::Stuck {
            player: p,
            step,
            why,
        };
        // 1. Leave (or learn the wallet an earlier Leave took out).
        let started = tokio::time::Instant::now();
        let leave = MoveCommand::Leave {
            player,
            id,
            to_group,
        };
        let wallet = match self.local_step(source, leave).await {
            Ok((MoveOutcome::Left { wallet }, _)) => wallet,
            Ok((other, _)) => return self.over(source, p, id, "leave", other).await,
            Err(e) => return Err(unavailable("leave", e)),
        };
        self.timed(&self.stats.leave_ns, started);
        crash_point(p, "leave");
        // 2. Arrive in the target.
        let started = tokio::time::Instant::now();
        let arrive = MoveCommand::Arrive { player, id, wallet };
        match self.step(to_group, &arrive).await {
            Ok(MoveOutcome::Arrived) => {}
            // A later move of the player was seen there: this one arrived
            // and the player moved on.
            Ok(MoveOutcome::Rejected {
                why: MoveRefusal::Stale { .. },
            }) => {}
            Ok(MoveOutcome::Refused { why }) => {
                let back = MoveCommand::Return { player, id };
                return match self.local_step(source, back).await {
                    Ok((MoveOutcome::Returned, _)) => Err(MoveError::Refused {
                        player: p,
                        from_group: source.id.0,
                        to_group,
                        why,
                    }),
                    Ok((other, _)) => Err(stuck("return", format!("{other:?}"))),
                    Err(e) => Err(unavailable("return", e)),
                };
            }
            Ok(other) => return Err(stuck("arrive", format!("{other:?}"))),
            Err(e) => return Err(unavailable("arrive", e)),
        }
        self.timed(&self.stats.arrive_ns, started);
        crash_point(p, "arrive");
        // 3. The directory places the player in the target. Only this move
        //    can change the placement from the epoch it left at, so a
        //    stale epoch means it did already.
        let started = tokio::time::Instant::now();
        let repoint = DirCommand::Repoint {
            player: p,
            group: to_group,
            expected_epoch: id.from_epoch,
        };
        let epoch = id.from_epoch + 1;
        match self.repoint(&repoint).await {
            Ok(DirReply::Placed(placed)) => {
                self.directory.learned(placed);
            }
            Ok(DirReply::Refused(DirRefusal::StaleEpoch { epoch: now, .. }))
                if now > id.from_epoch => {}
            Ok(other) => return Err(stuck("repoint", format!("{other:?}"))),
            Err(e) => return Err(unavailable("repoint", e)),
        }
        self.timed(&self.stats.repoint_ns, started);
        crash_point(p, "repoint");
        // 4. The source leaves a forwarding tombstone.
        let started = tokio::time::Instant::now();
        let finish = MoveCommand::Finish { player, id, epoch };
        match self.local_step(source, finish).await {
            Ok((MoveOutcome::Finished, _)) => {}
            Ok((other, _)) => return self.over(source, p, id, "finish", other).await,
            Err(e) => return Err(unavailable("finish", e)),
        }
        self.timed(&self.stats.finish_ns, started);
        Ok(Moved {
            group: to_group,
            epoch,
            moved: true,
        })
    }

    /// A source step of move `id` that did not fit: the move is over if
    /// the marker shows it finished, or a later move replaced it (the
    /// player moved back before this Finish applied: then the answer names
    /// this group and the epoch the later move left at); else it is stuck.
    async fn over(
        &self,
        source: &Group<E>,
        player: u64,
        id: MoveId,
        step: &'static str,
        answered: MoveOutcome,
    ) -> Result<Moved, MoveError> {
        match self.marker(source, player).await? {
            Some(PlayerMove::Moved {
                id: done,
                group,
                epoch,
            }) if done == id => Ok(Moved {
                group,
                epoch,
                moved: true,
            }),
            Some(later) if later.id() > id => Ok(Moved {
                group: source.id.0,
                epoch: later.id().from_epoch,
                moved: true,
            }),
            _ => Err(MoveError::Stuck {
                player,
                step,
                why: format!("{answered:?}"),
            }),
        }
    }

    fn timed(&self, sum: &AtomicU64, started: tokio::time::Instant) {
        let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        sum.fetch_add(ns, Ordering::Relaxed);
    }

    /// Proposes a step to a group led here.
    async fn local_step(&self, group: &Group<E>, cmd: MoveCommand) -> StepResult<MoveOutcome> {
        propose_move(group, self.host.clocks(), cmd).await
    }

    /// Proposes `cmd` to group `to` wherever it is led, retried within the
    /// step budget.
    async fn step(&self, to: u64, cmd: &MoveCommand) -> Result<MoveOutcome, ProposeError> {
        let bytes = postcard::to_allocvec(cmd).expect("a move step encodes");
        let reply = self.remote(to, bytes).await?;
        postcard::from_bytes(&reply).map_err(|e| {
            ProposeError::Unavailable(format!("group {to} answered an undecodable outcome: {e}"))
        })
    }

    async fn repoint(&self, cmd: &DirCommand) -> Result<DirReply, ProposeError> {
        let bytes = postcard::to_allocvec(cmd).expect("a directory command encodes");
        let reply = self.remote(GroupId::DIRECTORY.0, bytes).await?;
        postcard::from_bytes(&reply).map_err(|e| {
            ProposeError::Unavailable(format!("the directory answered an undecodable reply: {e}"))
        })
    }

    /// Sends one encoded step to group `to`'s leader: this node when it
    /// leads it, else over `MoveService`, following leader hints.
    async fn remote(&self, to: u64, command: Vec<u8>) -> Result<Vec<u8>, ProposeError> {
        self.remote_within(to, command, STEP_RETRY_BUDGET).await
    }

    /// [`Mover::remote`], retried for `budget`.
    async fn remote_within(
        &self,
        to: u64,
        command: Vec<u8>,
        budget: Duration,
    ) -> Result<Vec<u8>, ProposeError> {
        let deadline = tokio::time::Instant::now() + budget;
        let replicas: Vec<u64> = self
            .host
            .replicas_of(GroupId(to))
            .map(<[u64]>::to_vec)
            .unwrap_or_default();
        if replicas.is_empty() {
            return Err(ProposeError::Unavailable(format!(
                "group {to} is not in this node's topology"
            )));
        }
        let mut last = String::new();
        for attempt in 0usize.. {
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            if let Some(g) = self.host.group(GroupId(to))
                && leader_of(&g.raft) == Some(self.host.node_id())
            {
                match step_here(&g, self.host.clocks(), &command).await {
                    Ok(reply) => return Ok(reply.outcome),
                    Err(e) => last = e.to_string(),
                }
                tokio::time::sleep(STEP_RETRY_PAUSE).await;
                continue;
            }
            let target = self
                .leaders
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&to)
                .copied()
                .unwrap_or(replicas[attempt % replicas.len()]);
            let req = MoveStep {
                group_id: to,
                command: command.clone(),
            };
            let mut client = self.peer(target)?;
            let call = tokio::time::timeout(STEP_RPC_TIMEOUT, client.step(req)).await;
            let hint = match call {
                Ok(Ok(reply)) => {
                    self.leaders
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(to, target);
                    return Ok(reply.into_inner().outcome);
                }
                Ok(Err(status)) => {
                    last = format!("node {target}: {}", status.message());
                    leader_hint(&status).filter(|h| *h != target)
                }
                Err(_) => {
                    last = format!("node {target}: no answer within {STEP_RPC_TIMEOUT:?}");
                    None
                }
            };
            let followed = hint.is_some();
            {
                let mut leaders = self.leaders.lock().unwrap_or_else(|p| p.into_inner());
                match hint {
                    Some(h) => leaders.insert(to, h),
                    None => leaders.remove(&to),
                };
            }
            if !followed {
                tokio::time::sleep(STEP_RETRY_PAUSE).await;
            }
        }
        Err(ProposeError::Unavailable(format!(
            "group {to} did not take the step within {budget:?} ({last})"
        )))
    }

    /// A move-step client of node `id`'s node-to-node listener, over the
    /// node's one connection to it.
    fn peer(&self, id: u64) -> Result<MoveServiceClient<Channel>, ProposeError> {
        let channel = self
            .host
            .peer_channel(id)
            .map_err(|e| ProposeError::Unavailable(format!("no connection to node {id}: {e}")))?;
        // An Arrive carries a whole wallet: up to an entry's size.
        let bytes_max = self.host.limits().message_bytes_max();
        Ok(MoveServiceClient::new(channel)
            .max_decoding_message_size(bytes_max)
            .max_encoding_message_size(bytes_max))
    }

    /// Resumes the moves of every group this node leads, forever: a leader
    /// that takes over (or any leader, every [`RESCAN_EVERY`] rounds)
    /// drives each `Leaving` marker of its group on from the log.
    pub async fn resume(self: Arc<Self>) {
        let mut interval = tokio::time::interval(RESUME_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut scanned: BTreeMap<GroupId, (u64, u32)> = BTreeMap::new();
        loop {
            interval.tick().await;
            for group in self.host.groups() {
                if group.id == GroupId::DIRECTORY || !group.raft.is_leader() {
                    scanned.remove(&group.id);
                    continue;
                }
                let term = group.raft.metrics().borrow_watched().current_term;
                let due = match scanned.get_mut(&group.id) {
                    Some((t, rounds)) if *t == term => {
                        *rounds += 1;
                        *rounds % RESCAN_EVERY == 0
                    }
                    _ => true,
                };
                if !due {
                    continue;
                }
                scanned.entry(group.id).or_insert((term, 0)).0 = term;
                let store = group.store.clone();
                let leaving = match geowallet_raft::blocking(move || store.moves_leaving()).await {
                    Ok(Ok(l)) => l,
                    Ok(Err(e)) => {
                        tracing::error!(group = %group.id, error = %e, "cannot list the group's moves");
                        continue;
                    }
                    Err(_) => continue,
                };
                self.resume_transfers(&group);
                for (player, marker) in leaving {
                    let PlayerMove::Leaving { id, to_group, .. } = marker else {
                        continue;
                    };
                    let mover = self.clone();
                    let group = group.clone();
                    tokio::spawn(async move {
                        let Some(_driving) = mover.start_driving(player.0) else {
                            return;
                        };
                        tracing::info!(player = player.0, %id, to_group, "resuming a wallet move");
                        let _ = mover.drive(&group, player, id, to_group).await;
                    });
                }
            }
        }
    }
}

impl<E: Engine> Mover<E> {
    /// Settles, in the background, every transfer to another group that
    /// `group` (led here) has pending and this node does not settle yet.
    fn resume_transfers(self: &Arc<Self>, group: &Arc<Group<E>>) {
        let (mover, group) = (self.clone(), group.clone());
        tokio::spawn(async move {
            let store = group.store.clone();
            let pending = match geowallet_raft::blocking(move || store.transfers_pending()).await {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => {
                    tracing::error!(group = %group.id, error = %e, "cannot list the group's pending transfers");
                    return;
                }
                Err(_) => return,
            };
            for (from, tx, pending) in pending {
                let (mover, group) = (mover.clone(), group.clone());
                tokio::spawn(async move {
                    let Some(_settling) = start_driving(&mover.settling, (from, tx.clone())) else {
                        return;
                    };
                    tracing::info!(%from, %tx, to = %pending.to, "resuming a transfer between groups");
                    let deadline = tokio::time::Instant::now() + transfer::TRANSFER_RESUME_BUDGET;
                    if let Err(e) = mover
                        .settle(&group, from, tx.clone(), &pending, deadline)
                        .await
                    {
                        tracing::warn!(%from, %tx, error = %e, "a resumed transfer is not settled yet");
                    }
                });
            }
        });
    }
}

/// Runs `read` on `group`'s store off the async threads: a damaged row
/// stops the move (`Stuck`), a task that could not run leaves it for later.
async fn read_store<E: Engine, T: Send + 'static>(
    group: &Group<E>,
    player: u64,
    step: &'static str,
    read: impl FnOnce(geowallet_storage::StateStore<E>) -> Result<T, geowallet_storage::StorageError>
    + Send
    + 'static,
) -> Result<T, MoveError> {
    let store = group.store.clone();
    geowallet_raft::blocking(move || read(store))
        .await
        .map_err(|e| MoveError::Unavailable {
            player,
            reason: e.to_string(),
        })?
        .map_err(|e| MoveError::Stuck {
            player,
            step,
            why: e.to_string(),
        })
}

/// Proposes one move step to `group` (this node must lead it) and answers
/// its outcome once it may be acknowledged.
pub async fn propose_move<E: Engine>(
    group: &Group<E>,
    clocks: &ClockQuorum,
    cmd: MoveCommand,
) -> StepResult<MoveOutcome> {
    let time = proposer::ledger_time(&group.raft, clocks)?;
    let resp = group
        .raft
        .client_write(Proposal::wallet_move(time, cmd))
        .await
        .map_err(|e| proposer::propose_error(&group.raft, e))?;
    let index = resp.log_id.index;
    group.dual_dc.wait_durable(&group.raft, index).await?;
    let outcome = resp.data.wallet_move.ok_or_else(|| {
        ProposeError::Unavailable("the move step applied without an outcome".into())
    })?;
    Ok((outcome, index))
}

/// Applies one encoded step to `group` (led here): a `MoveCommand` for a
/// shard group, a `Repoint` for the directory.
async fn step_here<E: Engine>(
    group: &Group<E>,
    clocks: &ClockQuorum,
    command: &[u8],
) -> Result<MoveStepReply, ProposeError> {
    if command.is_empty() {
        // A probe: is this node the group's leader, confirmed by a quorum?
        group
            .raft
            .ensure_linearizable(openraft::ReadPolicy::ReadIndex)
            .await
            .map_err(|e| match e {
                openraft::error::RaftError::APIError(
                    openraft::error::LinearizableReadError::ForwardToLeader(f),
                ) => ProposeError::NotLeader {
                    leader_id: f.leader_id,
                    leader_endpoint: f.leader_node.map(|n| n.addr),
                },
                other => ProposeError::Unavailable(other.to_string()),
            })?;
        return Ok(MoveStepReply::default());
    }
    let undecodable = |e: postcard::Error| {
        ProposeError::Unavailable(format!("the move step does not decode: {e}"))
    };
    if group.id == GroupId::DIRECTORY {
        let cmd: DirCommand = postcard::from_bytes(command).map_err(undecodable)?;
        if !matches!(cmd, DirCommand::Repoint { .. }) {
            return Err(ProposeError::Unavailable(
                "only a repoint is a move step of the directory".into(),
            ));
        }
        let player = match &cmd {
            DirCommand::Repoint { player, .. } => *player,
            _ => 0,
        };
        let (index, reply) = directory::propose(&group.raft, cmd)
            .await
            .map_err(|e| proposer::propose_error(&group.raft, e))?;
        group.dual_dc.wait_durable(&group.raft, index).await?;
        crash_point(player, "repointed");
        return Ok(MoveStepReply {
            outcome: postcard::to_allocvec(&reply).expect("a directory reply encodes"),
            log_index: index,
        });
    }
    let cmd: MoveCommand = postcard::from_bytes(command).map_err(undecodable)?;
    if !is_remote_step(&cmd) {
        return Err(ProposeError::Unavailable(
            "only an arrival, its refusal or a transfer's credit is a step another group's \
             leader sends; the source's own steps are proposed by its leader"
                .into(),
        ));
    }
    let crash_after = match &cmd {
        MoveCommand::Arrive { player, .. } => Some((player.0, "arrived")),
        MoveCommand::TransferCredit { from, .. } => Some((from.player.0, "transfer-credited")),
        _ => None,
    };
    let (outcome, index) = propose_move(group, clocks, cmd).await?;
    if let Some((player, point)) = crash_after {
        crash_point(player, point);
    }
    Ok(MoveStepReply {
        outcome: postcard::to_allocvec(&outcome).expect("a move outcome encodes"),
        log_index: index,
    })
}

/// Whether another group's leader may send `cmd` (over `MoveService`):
/// the steps a group takes for a wallet or a transfer of another group.
/// A group's own steps (`Leave`, `Finish`, `Return`, `TransferBegin`,
/// `TransferSettle`) are proposed only by its own leader's driver, so a
/// peer cannot, say, settle a transfer with an answer the payee's group
/// never gave.
fn is_remote_step(cmd: &MoveCommand) -> bool {
    matches!(
        cmd,
        MoveCommand::Arrive { .. }
            | MoveCommand::Refuse { .. }
            | MoveCommand::TransferCredit { .. }
    )
}

/// The leader `raft`'s metrics name now.
fn leader_of<E: Engine>(raft: &geowallet_raft::GroupRaft<E>) -> Option<u64> {
    raft.metrics().borrow_watched().current_leader
}

/// The leader (node id) a `not_leader` status names, if any.
fn leader_hint(status: &Status) -> Option<u64> {
    let detail = pb::ErrorDetail::decode(status.details()).ok()?;
    match detail.kind? {
        pb::error_detail::Kind::NotLeader(n) if n.leader_id != 0 => Some(n.leader_id),
        _ => None,
    }
}

/// The node-to-node service other leaders send move steps to.
pub struct MoveStepService<E: Engine> {
    pub host: Arc<GroupHost<E>>,
    /// Where a wallet arrives, its cooldown starts.
    pub auto_moves: Option<Arc<AutoMoves>>,
}

#[tonic::async_trait]
impl<E: Engine> MoveService for MoveStepService<E> {
    async fn step(&self, req: Request<MoveStep>) -> Result<Response<MoveStepReply>, Status> {
        let req = req.into_inner();
        let Some(group) = self.host.group(GroupId(req.group_id)) else {
            let replica = self
                .host
                .replicas_of(GroupId(req.group_id))
                .and_then(|r| r.first().copied());
            let endpoint = replica.and_then(|r| self.host.nodes().get(&r).map(|n| n.addr.clone()));
            return Err(not_leader(replica, endpoint));
        };
        match step_here(&group, self.host.clocks(), &req.command).await {
            Ok(reply) => {
                if let Some(auto) = &self.auto_moves
                    && let Ok(MoveCommand::Arrive { player, .. }) =
                        postcard::from_bytes(&req.command)
                {
                    auto.arrived(req.group_id, player.0);
                }
                Ok(Response::new(reply))
            }
            Err(ProposeError::NotLeader {
                leader_id,
                leader_endpoint,
            }) => {
                let endpoint = leader_endpoint.or_else(|| {
                    leader_id.and_then(|l| self.host.nodes().get(&l).map(|n| n.addr.clone()))
                });
                Err(not_leader(leader_id, endpoint))
            }
            Err(e) => Err(unavailable(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves a group's own steps are refused from the network: only an
    // arrival, its refusal and a transfer's credit come from another
    // group's leader.
    #[test]
    fn only_steps_for_another_group_are_taken_from_peers() {
        use geowallet_ledger::{AccountId, Currency, Outcome, Refusal, TxId};
        let player = PlayerId(1);
        let id = MoveId {
            from_epoch: 1,
            attempt: 0,
            from_group: 1,
        };
        let account = AccountId {
            player,
            currency: Currency::parse("EUR").unwrap(),
        };
        let tx = TxId::new("t").unwrap();
        let credit: Outcome = Err(Refusal::ZeroAmount);
        let remote = [
            MoveCommand::Arrive {
                player,
                id,
                wallet: Default::default(),
            },
            MoveCommand::Refuse { player, id },
            MoveCommand::TransferCredit {
                from: account,
                to: account,
                amount: 1,
                tx: tx.clone(),
                created_at_ns: 1,
            },
        ];
        let own = [
            MoveCommand::Leave {
                player,
                id,
                to_group: 2,
            },
            MoveCommand::Finish {
                player,
                id,
                epoch: 2,
            },
            MoveCommand::Return { player, id },
            MoveCommand::TransferBegin {
                request: geowallet_ledger::Request {
                    tx: tx.clone(),
                    created_at_ns: 1,
                    command: geowallet_ledger::Command::Transfer {
                        from: account,
                        to: account,
                        amount: geowallet_ledger::Amount(1),
                    },
                },
            },
            MoveCommand::TransferSettle {
                from: account,
                tx,
                credit,
            },
        ];
        assert!(remote.iter().all(is_remote_step));
        assert!(!own.iter().any(is_remote_step));
    }

    // A second drive of the same player is refused while the first runs,
    // and allowed once it ended: the refusal must not take the lock again
    // while holding it (it deadlocked a node when a resumed move met a
    // migrate call).
    #[test]
    fn a_player_is_driven_once_at_a_time() {
        let set = Mutex::new(HashSet::new());
        let start = |player| start_driving(&set, player);
        let first = start(7);
        assert!(first.is_some());
        assert!(start(7).is_none());
        assert!(start(8).is_some());
        drop(first);
        assert!(start(7).is_some());
    }
}
