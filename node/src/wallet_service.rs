use crate::roles::{Access, Action};
use std::sync::Arc;
use std::time::Duration;

use geowallet_ledger::{LogIndex, Outcome};
use geowallet_proto::v1 as pb;
use geowallet_proto::v1::wallet_server::Wallet;
use geowallet_raft::directory::{DirCommand, DirRefusal, DirReply, Placement};
use geowallet_raft::{AppliedState, TypeConfig};
use geowallet_storage::{AuditRead, DefaultEngine, Engine, GroupId, JournalFrom, Totals};
use openraft::ReadPolicy;
use openraft::async_runtime::WatchReceiver;
use openraft::error::{ClientWriteError, ForwardToLeader, LinearizableReadError, RaftError};
use prost::Message;
use tonic::{Request, Response, Status};

use crate::directory::{self, Directory};
use crate::group_host::{Group, GroupHost};
use crate::move_policy::AutoMoves;
use crate::mover::{MoveError, Mover};
use crate::proposer::ProposeError;
use crate::wire;

/// Commands per Execute call at most.
pub const COMMANDS_PER_CALL_MAX: usize = 10_000;
/// Accounts per Audit call at most.
pub const ACCOUNTS_PER_AUDIT_MAX: usize = 10_000;
/// How long a requested leadership transfer may take.
const LEADER_TRANSFER_WAIT: Duration = Duration::from_secs(5);
/// Placement lookups an audit runs at once: an audit names up to
/// [`ACCOUNTS_PER_AUDIT_MAX`] accounts, and a player placed nowhere is not
/// cached, so one at a time it took a directory round trip per player.
const AUDIT_PLACEMENT_LOOKUPS_MAX: usize = 64;
/// How long a new leader may take to be confirmed by a quorum before a read gives up.
const LEADER_CONFIRM_WAIT: Duration = Duration::from_secs(2);

/// Whether `outcome` sends a transfer to the coordinator: its payee
/// (another player) moved to another group, or it was begun as a transfer
/// between groups and is not settled yet (both unrecorded).
fn for_coordinator(command: &geowallet_ledger::Command, outcome: &Outcome) -> bool {
    use geowallet_ledger::{Command, Refusal};
    match (command, outcome) {
        (Command::Transfer { .. }, Err(Refusal::TransferPending { .. })) => true,
        (Command::Transfer { from, to, .. }, Err(Refusal::Moved { player, .. })) => {
            *player == to.player && *player != from.player
        }
        _ => false,
    }
}

/// Where a command of an Execute call goes.
#[derive(Debug, Clone)]
enum Route {
    /// Into the group's next entries.
    Here,
    /// A transfer to a player of another group: to the coordinator.
    Elsewhere,
    Refused(pb::Refusal),
}

/// The client API of one node: routes each request to the hosted group it
/// names (or the default group).
pub struct WalletService<E: Engine = DefaultEngine> {
    pub host: Arc<GroupHost<E>>,
    /// The cluster's directory; `None` in a cluster without one (a single
    /// group configured the older way): commands are not checked against
    /// placements then.
    pub directory: Option<Arc<Directory>>,
    /// Drives wallets between groups (a cluster with a directory only).
    pub mover: Option<Arc<Mover<E>>>,
    /// Counts each player's callers' regions and moves wallets that should
    /// follow their player (when the policy is on).
    pub auto_moves: Option<Arc<AutoMoves>>,
    /// Which client may call what.
    pub access: Access,
    /// Demo aid ([`SIMULATED_RTT_ENV`]): the round trip an Execute call
    /// from another region waits before it is served.
    pub simulated_rtt: Option<Duration>,
}

/// A demo aid, never for production: with this variable set to a number of
/// milliseconds, an Execute call that names a region other than this
/// node's waits that long before it is served, as if client and node were
/// that far apart (loopback has no distance). Labelled as simulated
/// wherever it is used; real distance is measured with netem in
/// jepsen-tests.
pub const SIMULATED_RTT_ENV: &str = "GEOWALLET_SIMULATED_RTT_MS";

pub fn not_leader(leader_id: Option<u64>, leader_endpoint: Option<String>) -> Status {
    let detail = pb::ErrorDetail {
        kind: Some(pb::error_detail::Kind::NotLeader(pb::NotLeader {
            leader_id: leader_id.unwrap_or(0),
            leader_endpoint: leader_endpoint.clone().unwrap_or_default(),
        })),
    };
    let msg = match (leader_id, leader_endpoint) {
        (Some(id), Some(ep)) => format!("not the leader; the leader is node {id} at {ep}"),
        _ => "not the leader and no leader is known yet; retry shortly".to_string(),
    };
    Status::with_details(
        tonic::Code::FailedPrecondition,
        msg,
        detail.encode_to_vec().into(),
    )
}

/// A read sent to a group that does not hold the player.
pub fn wrong_group(p: Placement) -> Status {
    let detail = pb::ErrorDetail {
        kind: Some(pb::error_detail::Kind::WrongGroup(pb::WrongGroup {
            group_id: p.group,
            epoch: p.epoch,
            player: p.player,
        })),
    };
    Status::with_details(
        tonic::Code::FailedPrecondition,
        format!(
            "player {} is in group {} (placement epoch {})",
            p.player, p.group, p.epoch
        ),
        detail.encode_to_vec().into(),
    )
}

pub fn unavailable(reason: impl Into<String>) -> Status {
    let reason = reason.into();
    let detail = pb::ErrorDetail {
        kind: Some(pb::error_detail::Kind::Unavailable(pb::Unavailable {
            reason: reason.clone(),
        })),
    };
    Status::with_details(
        tonic::Code::Unavailable,
        reason,
        detail.encode_to_vec().into(),
    )
}

impl<E: Engine> WalletService<E> {
    /// The service over `host`; with a directory when the topology has one
    /// (group 0), and then the mover of wallets between its groups, whose
    /// resumption of moves left unfinished starts here (within a runtime).
    /// `directory_client`: how this node calls the directory's replicas
    /// (its TLS identity); `access`: who may call what here.
    pub fn new(
        host: Arc<GroupHost<E>>,
        directory_client: Option<geowallet_client::ClientTls>,
        access: Access,
    ) -> Result<WalletService<E>, geowallet_client::Error> {
        let directory = match host.replicas_of(GroupId::DIRECTORY) {
            Some(replicas) => {
                let endpoints = replicas
                    .iter()
                    .filter_map(|r| host.nodes().get(r).map(|n| n.addr.clone()))
                    .collect();
                Some(Arc::new(Directory::new(endpoints, directory_client)?))
            }
            None => None,
        };
        let mover = directory.as_ref().map(|d| {
            let mover = Mover::new(host.clone(), d.clone());
            tokio::spawn(mover.clone().resume());
            mover
        });
        let auto_moves = match (host.move_policy(), &mover) {
            (Some(config), Some(_)) => Some(Arc::new(
                AutoMoves::new(config.clone())
                    .map_err(|message| geowallet_client::Error::InvalidArgument { message })?,
            )),
            _ => None,
        };
        let simulated_rtt = std::env::var(SIMULATED_RTT_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis);
        if let Some(rtt) = simulated_rtt {
            tracing::warn!(
                ?rtt,
                "SIMULATED latency: calls from other regions wait this long ({SIMULATED_RTT_ENV}); a demo aid"
            );
        }
        Ok(WalletService {
            host,
            directory,
            mover,
            auto_moves,
            access,
            simulated_rtt,
        })
    }

    /// The hosted group `id` names (0: the default group). A group hosted
    /// elsewhere is answered with a redirect to one of its replicas.
    fn group(&self, id: u64) -> Result<Arc<Group<E>>, Status> {
        if id == 0 {
            return self.host.default_group().ok_or_else(|| {
                Status::not_found(format!(
                    "node {} hosts no shard group; name one (group_id)",
                    self.host.node_id()
                ))
            });
        }
        self.hosted(GroupId(id))
    }

    /// Group `id` if this node hosts it, else a redirect to a replica.
    fn hosted(&self, id: GroupId) -> Result<Arc<Group<E>>, Status> {
        if let Some(g) = self.host.group(id) {
            return Ok(g);
        }
        let id = id.0;
        let elsewhere = self
            .host
            .replicas_of(GroupId(id))
            .and_then(|r| r.iter().find(|r| **r != self.host.node_id()))
            .and_then(|r| Some((*r, self.host.nodes().get(r)?.addr.clone())));
        match elsewhere {
            Some((replica, endpoint)) => Err(not_leader(Some(replica), Some(endpoint))),
            None => Err(Status::not_found(format!(
                "group {id} is not hosted on node {} and the topology does not list it; \
                 ask `geowallet ctl status` for the groups of the cluster",
                self.host.node_id()
            ))),
        }
    }

    /// The directory group, hosted here (a redirect to a replica if not).
    fn directory_group(&self) -> Result<Arc<Group<E>>, Status> {
        if self.directory.is_none() {
            return Err(Status::unimplemented(
                "this cluster has no directory (one shard group, configured without \
                 [[groups]]): address the group directly",
            ));
        }
        self.hosted(GroupId::DIRECTORY)
    }

    /// Where each command goes: `Here` when `group` holds its players;
    /// `Elsewhere` for a transfer whose payee is placed in another group
    /// (the coordinator runs it); else a refusal: a `wrong_group` naming
    /// the group that holds the command's (first) player, with its epoch,
    /// or `not_placed`.
    async fn check_placements(
        &self,
        group: &Group<E>,
        commands: &[(u64, geowallet_ledger::Request)],
    ) -> Result<Vec<Route>, Status> {
        let Some(dir) = &self.directory else {
            return Ok(vec![Route::Here; commands.len()]);
        };
        let mut out = Vec::with_capacity(commands.len());
        for (epoch, r) in commands {
            let mut route = Route::Here;
            for (nth, player) in players(&r.command).into_iter().enumerate() {
                let placement = dir.placement(player, *epoch).await.map_err(|e| {
                    unavailable(format!("cannot read player {player}'s placement: {e}"))
                })?;
                let refusal = match placement {
                    // A transfer's target elsewhere is no redirect: the
                    // client routes by the source, and a `wrong_group`
                    // naming the target's group would send it (and its
                    // cached route of the source) there.
                    Some(p) if nth > 0 && p.group != group.id.0 => {
                        route = Route::Elsewhere;
                        None
                    }
                    None => Some(pb::Refusal {
                        code: "not_placed".into(),
                        message: format!(
                            "player {player} is not placed in any group: open the wallet \
                             with the caller's region first"
                        ),
                        ..Default::default()
                    }),
                    Some(p) if p.group != group.id.0 => Some(pb::Refusal {
                        code: "wrong_group".into(),
                        message: format!(
                            "player {player} is in group {} (placement epoch {}), not group {}",
                            p.group, p.epoch, group.id.0
                        ),
                        group_id: p.group,
                        epoch: p.epoch,
                        ..Default::default()
                    }),
                    Some(_) => None,
                };
                if let Some(refusal) = refusal {
                    route = Route::Refused(refusal);
                    break;
                }
            }
            out.push(route);
        }
        Ok(out)
    }

    /// Refuses a read of `player` from a group that does not hold it: a
    /// `WrongGroup` redirect naming the one that does. A player placed
    /// nowhere has no wallet anywhere: the group answers that itself.
    async fn check_read(&self, group: &Group<E>, player: u64) -> Result<(), Status> {
        let Some(dir) = &self.directory else {
            return Ok(());
        };
        let lookup = |epoch| async move {
            dir.placement(player, epoch)
                .await
                .map_err(|e| unavailable(format!("cannot read player {player}'s placement: {e}")))
        };
        let mut placement = lookup(0).await?;
        // The cache can be older than a move another node drove (here to
        // there and back): ask the directory before sending the reader
        // away, or two nodes' stale caches send it back and forth.
        if let Some(p) = placement.filter(|p| p.group != group.id.0) {
            placement = lookup(p.epoch + 1).await?;
        }
        match placement {
            Some(p) if p.group != group.id.0 => Err(wrong_group(p)),
            _ => Ok(()),
        }
    }

    fn endpoint_of(&self, id: u64) -> Option<String> {
        self.host.nodes().get(&id).map(|n| n.addr.clone())
    }

    fn forward(&self, f: ForwardToLeader<TypeConfig>) -> Status {
        let endpoint = f
            .leader_node
            .map(|n| n.addr)
            .or_else(|| f.leader_id.and_then(|id| self.endpoint_of(id)));
        not_leader(f.leader_id, endpoint)
    }

    /// Confirms leadership with a quorum (read index) and waits until the
    /// state machine has applied up to it.
    async fn linearize(&self, group: &Group<E>) -> Result<(), Status> {
        for attempt in 0..2 {
            match group.raft.ensure_linearizable(ReadPolicy::ReadIndex).await {
                Ok(_) => return Ok(()),
                Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f))) => {
                    if f.leader_id == Some(self.host.node_id()) && attempt == 0 {
                        // A fresh leader: wait for a quorum to acknowledge it, then retry.
                        let _ = group
                            .raft
                            .wait(Some(LEADER_CONFIRM_WAIT))
                            .leader_with_quorum_acked(None, "read")
                            .await;
                        continue;
                    }
                    return Err(self.forward(f));
                }
                Err(e) => {
                    return Err(unavailable(format!(
                        "cannot confirm leadership for a read: {e}"
                    )));
                }
            }
        }
        Err(unavailable(
            "the new leader is not confirmed by a quorum yet; retry",
        ))
    }

    async fn propose(
        &self,
        group: &Group<E>,
        requests: Vec<geowallet_ledger::Request>,
    ) -> Result<Vec<Outcome>, Status> {
        group
            .proposer
            .propose(requests)
            .await
            .map_err(|e| self.propose_status(e))
    }

    /// The status a client gets for a proposal that failed.
    fn propose_status(&self, e: ProposeError) -> Status {
        match e {
            ProposeError::NotLeader {
                leader_id,
                leader_endpoint,
            } => {
                let endpoint =
                    leader_endpoint.or_else(|| leader_id.and_then(|id| self.endpoint_of(id)));
                not_leader(leader_id, endpoint)
            }
            ProposeError::Unavailable(reason) => unavailable(reason),
            e @ ProposeError::TooMany { .. } => Status::invalid_argument(e.to_string()),
        }
    }

    /// Counts the calls this leader served for `players` from `region`, and
    /// starts the move of each wallet the policy says should follow its
    /// player (in the background: the caller is answered now).
    fn follow_players(&self, group: &Group<E>, players: &[u64], region: &str) {
        let (Some(auto), Some(mover)) = (&self.auto_moves, &self.mover) else {
            return;
        };
        if region.is_empty() || players.is_empty() {
            return;
        }
        for (player, to) in auto.observe(group.id.0, players, region, &group.home_region) {
            let mover = mover.clone();
            tracing::info!(player, from = %group.home_region, to = %to, "wallet follows its player");
            tokio::spawn(async move {
                if let Err(e) = mover.migrate(player, &to).await {
                    tracing::warn!(player, to = %to, error = %e, "automatic wallet move stopped");
                }
            });
        }
    }

    /// Reads `accounts` and the totals from one consistent view of the
    /// applied state (after `linearize`), off the async threads.
    async fn read(
        &self,
        group: &Group<E>,
        accounts: Vec<geowallet_ledger::AccountId>,
        totals: Totals,
    ) -> Result<(AuditRead, u64), Status> {
        let store = group.store.clone();
        let read = geowallet_raft::blocking(move || store.read_at(&accounts, totals))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::data_loss(format!("read the ledger state: {e}")))?;
        let applied = AppliedState::from_stored(read.applied.as_deref())
            .map_err(|e| Status::data_loss(format!("read the applied position: {e}")))?;
        Ok((read, applied.index()))
    }
}

#[tonic::async_trait]
impl<E: Engine> Wallet for WalletService<E> {
    async fn execute(
        &self,
        req: Request<pb::ExecuteRequest>,
    ) -> Result<Response<pb::ExecuteResponse>, Status> {
        let mut actions: Vec<Action> = Vec::new();
        for c in &req.get_ref().commands {
            actions_of(c, &mut actions);
        }
        self.access.check(req.extensions(), &actions)?;
        let req = req.into_inner();
        if let Some(rtt) = self.simulated_rtt {
            let here = self.host.me().map(|n| n.region.as_str());
            if !req.region.is_empty() && here != Some(req.region.as_str()) {
                tokio::time::sleep(rtt).await;
            }
        }
        let group = self.group(req.group_id)?;
        let commands = req.commands;
        if commands.len() > COMMANDS_PER_CALL_MAX {
            return Err(Status::invalid_argument(format!(
                "{} commands in one call; send at most {COMMANDS_PER_CALL_MAX}",
                commands.len()
            )));
        }
        let mut results: Vec<Option<pb::CommandResult>> = Vec::with_capacity(commands.len());
        let mut parsed = Vec::with_capacity(commands.len());
        for c in &commands {
            match wire::request(c) {
                Ok(r) => {
                    parsed.push((c.placement_epoch, r));
                    results.push(None);
                }
                Err(refusal) => results.push(Some(wire::refused(refusal))),
            }
        }
        let routes = self.check_placements(&group, &parsed).await?;
        let free: Vec<usize> = (0..results.len())
            .filter(|i| results[*i].is_none())
            .collect();
        let mut requests = Vec::with_capacity(parsed.len());
        let mut local = Vec::with_capacity(parsed.len());
        let mut elsewhere = Vec::new();
        let mut callers: Vec<u64> = Vec::new();
        for ((slot, (_, r)), route) in free.into_iter().zip(parsed).zip(routes) {
            match route {
                Route::Refused(refusal) => results[slot] = Some(wire::refused(refusal)),
                Route::Here => {
                    callers.push(r.command.account().player.0);
                    local.push(slot);
                    requests.push(r);
                }
                Route::Elsewhere => {
                    callers.push(r.command.account().player.0);
                    elsewhere.push((slot, r));
                }
            }
        }
        // A call larger than one entry may carry goes in several entries, in
        // order; if a later one fails, the client's retry with the same tx
        // ids gets the earlier ones' stored outcomes.
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(requests.len());
        for chunk in requests.chunks(group.proposer.requests_per_entry_max()) {
            outcomes.extend(self.propose(&group, chunk.to_vec()).await?);
        }
        for ((slot, outcome), request) in local.into_iter().zip(outcomes).zip(requests) {
            // The payee moved away between the placement check and the
            // apply, or the transfer was begun between groups and is
            // pending (both unrecorded): the coordinator runs it, rather
            // than a `moved` naming the payee's group, which the client
            // would take for the payer's route, or a second apply.
            if for_coordinator(&request.command, &outcome) {
                elsewhere.push((slot, request));
                continue;
            }
            results[slot] = Some(wire::outcome(outcome));
        }
        // Transfers to other groups, at once; one that cannot settle in
        // time fails the call as unavailable, and the retry (same tx ids)
        // answers the others from their records.
        if !elsewhere.is_empty() {
            let mover = self.mover.as_ref().ok_or_else(|| {
                Status::internal("a transfer between groups without a coordinator")
            })?;
            let runs = elsewhere
                .iter()
                .map(|(_, r)| mover.transfer(&group, r.clone()));
            let settled = futures::future::join_all(runs).await;
            for ((slot, _), outcome) in elsewhere.iter().zip(settled) {
                let outcome = outcome.map_err(|e| self.propose_status(e))?;
                results[*slot] = Some(wire::outcome(outcome));
            }
        }
        self.follow_players(&group, &callers, &req.region);
        let results: Vec<pb::CommandResult> = results
            .into_iter()
            .map(|r| r.expect("every command answered"))
            .collect();
        self.host
            .metrics()
            .refusals("Execute", results.iter().filter_map(refusal_code));
        Ok(Response::new(pb::ExecuteResponse { results }))
    }

    async fn balance(
        &self,
        req: Request<pb::BalanceRequest>,
    ) -> Result<Response<pb::BalanceResponse>, Status> {
        self.access.check(req.extensions(), &[Action::Balance])?;
        let group = self.group(req.get_ref().group_id)?;
        let account = match wire::account(req.get_ref().account.as_ref(), "account") {
            Ok(a) => a,
            Err(refused) => {
                return Ok(Response::new(pb::BalanceResponse {
                    refused: Some(refused.into()),
                    ..Default::default()
                }));
            }
        };
        self.check_read(&group, account.player.0).await?;
        self.linearize(&group).await?;
        let (read, read_index) = self.read(&group, vec![account], Totals::Skip).await?;
        let resp = match read.accounts.into_iter().next().flatten() {
            Some(a) => pb::BalanceResponse {
                balance: Some(pb::Balance {
                    available: a.available,
                    held: a.held,
                }),
                frozen: a.frozen,
                read_index,
                refused: None,
            },
            None => {
                moved_away(account.player, &read.moves)?;
                pb::BalanceResponse {
                    read_index,
                    refused: Some(wire::refusal(&geowallet_ledger::Refusal::UnknownAccount {
                        account,
                    })),
                    ..Default::default()
                }
            }
        };
        Ok(Response::new(resp))
    }

    async fn audit(
        &self,
        req: Request<pb::AuditRequest>,
    ) -> Result<Response<pb::AuditResponse>, Status> {
        self.access.check(req.extensions(), &[Action::Audit])?;
        let req = req.into_inner();
        let group = self.group(req.group_id)?;
        let refs = req.accounts;
        if refs.len() > ACCOUNTS_PER_AUDIT_MAX {
            return Err(Status::invalid_argument(format!(
                "{} accounts in one audit; ask for at most {ACCOUNTS_PER_AUDIT_MAX}",
                refs.len()
            )));
        }
        let mut accounts = Vec::with_capacity(refs.len());
        for (i, r) in refs.into_iter().enumerate() {
            let id = wire::account(Some(&r), &format!("accounts[{i}]"))
                .map_err(|e| Status::invalid_argument(e.0))?;
            accounts.push((id, r));
        }
        let players: std::collections::BTreeSet<u64> =
            accounts.iter().map(|(id, _)| id.player.0).collect();
        if !req.group_view {
            use futures::{StreamExt, TryStreamExt};
            futures::stream::iter(players.into_iter().map(|p| self.check_read(&group, p)))
                .buffer_unordered(AUDIT_PLACEMENT_LOOKUPS_MAX)
                .try_collect::<Vec<()>>()
                .await?;
        }
        self.linearize(&group).await?;
        let ids = accounts.iter().map(|(id, _)| *id).collect();
        let (read, read_index) = self.read(&group, ids, Totals::Read).await?;
        if !req.group_view {
            for player in read.moves.keys() {
                moved_away(*player, &read.moves)?;
            }
        }
        let resp = pb::AuditResponse {
            accounts: accounts
                .into_iter()
                .zip(read.accounts)
                .map(|((_, account), a)| pb::AuditedAccount {
                    account: Some(account),
                    balance: a.map(|a| pb::Balance {
                        available: a.available,
                        held: a.held,
                    }),
                })
                .collect(),
            totals: read
                .totals
                .into_iter()
                .map(|(currency, money)| pb::CurrencyTotals {
                    currency: currency.to_string(),
                    players: money.players.to_string(),
                    system: money.system.to_string(),
                    transit: money.transit.to_string(),
                })
                .collect(),
            read_index,
        };
        Ok(Response::new(resp))
    }

    async fn journal(
        &self,
        req: Request<pb::JournalRequest>,
    ) -> Result<Response<pb::JournalResponse>, Status> {
        self.access.check(req.extensions(), &[Action::Journal])?;
        let r = req.into_inner();
        let group = self.group(r.group_id)?;
        let account = wire::account(r.account.as_ref(), "account")
            .map_err(|e| Status::invalid_argument(e.0))?;
        if !r.group_view {
            self.check_read(&group, account.player.0).await?;
        }
        self.linearize(&group).await?;
        let limit = if r.limit == 0 { 100 } else { r.limit as usize };
        let store = group.store.clone();
        let from = if r.from_seq == 0 && (r.from_log_index, r.from_position) != (0, 0) {
            JournalFrom::Position(LogIndex(r.from_log_index), r.from_position)
        } else {
            JournalFrom::Seq(r.from_seq)
        };
        let page = geowallet_raft::blocking(move || store.journal_page(&account, from, limit))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::data_loss(e.to_string()))?;
        let (more, next_log_index, next_position, next_seq) = match &page.next {
            Some(e) => (true, e.log_index.0, e.position, e.seq),
            None => (false, 0, 0, 0),
        };
        // A wallet that moved has lines in other groups: when the lines
        // here (and the next one) do not follow each other from the asked
        // number, say where else to look.
        let mut lines_elsewhere = Vec::new();
        if let (JournalFrom::Seq(from_seq), false) = (from, r.group_view) {
            let mut expect = from_seq.max(1);
            let gap = page.entries.iter().chain(page.next.iter()).any(|e| {
                let gap = e.seq != expect;
                expect = e.seq + 1;
                gap
            });
            if gap {
                lines_elsewhere = self
                    .host
                    .shard_groups()
                    .into_iter()
                    .filter(|g| *g != group.id)
                    .map(|g| g.0)
                    .collect();
            }
        }
        let entries = page.entries.iter().map(wire::journal_entry).collect();
        Ok(Response::new(pb::JournalResponse {
            entries,
            more,
            next_log_index,
            next_position,
            next_seq,
            lines_elsewhere,
        }))
    }

    type EventsStream = std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<pb::EventsResponse, Status>> + Send + 'static>,
    >;

    async fn events(
        &self,
        req: Request<pb::EventsRequest>,
    ) -> Result<Response<Self::EventsStream>, Status> {
        self.access.check(req.extensions(), &[Action::Events])?;
        let req = req.into_inner();
        let group = self.group(req.group_id)?;
        let (tx, rx) = tokio::sync::mpsc::channel(EVENT_BATCHES_AHEAD);
        tokio::spawn(stream_events(
            group,
            req.from_index.max(1),
            req.until_index,
            tx,
        ));
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    type BackupStream = std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<pb::BackupChunk, Status>> + Send + 'static>,
    >;

    async fn backup(
        &self,
        req: Request<pb::BackupRequest>,
    ) -> Result<Response<Self::BackupStream>, Status> {
        self.access.check(req.extensions(), &[Action::Backup])?;
        let req = req.into_inner();
        let group = if req.directory {
            self.directory_group()?
        } else {
            self.group(req.group_id)?
        };
        // Everything acknowledged before this call is applied here after it.
        self.linearize(&group).await?;
        let dir = self.host.backup_scratch(group.id);
        let store = group.store.clone();
        let at = dir.clone();
        let built = geowallet_raft::blocking(move || {
            if let Some(parent) = at.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            store.build_snapshot(&at).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
        if let Err(e) = built {
            let at = dir.clone();
            let _ = geowallet_raft::blocking(move || geowallet_storage::remove_snapshot(&at)).await;
            return Err(unavailable(format!(
                "group {}: cannot take a checkpoint for the backup: {e}; retry",
                group.id
            )));
        }
        let (tx, rx) = tokio::sync::mpsc::channel(BACKUP_PIECES_AHEAD);
        tokio::spawn(stream_backup(group.id, dir, tx));
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn place(
        &self,
        req: Request<pb::PlaceRequest>,
    ) -> Result<Response<pb::PlacementResponse>, Status> {
        self.access.check(req.extensions(), &[Action::Place])?;
        let req = req.into_inner();
        let dir = self.directory_group()?;
        let cmd = DirCommand::Place {
            player: req.player,
            region: req.region,
        };
        let (index, reply) = match directory::propose(&dir.raft, cmd).await {
            Ok(r) => r,
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                return Err(self.forward(f));
            }
            Err(e) => return Err(unavailable(format!("the directory cannot write: {e}"))),
        };
        if reply == DirReply::Refused(DirRefusal::NoGroups) {
            // A cluster still bootstrapping: worth a retry, not a refusal.
            return Err(unavailable(DirRefusal::NoGroups.to_string()));
        }
        dir.dual_dc
            .wait_durable(&dir.raft, index)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        Ok(Response::new(placement_response(&self.host, reply)))
    }

    async fn placement(
        &self,
        req: Request<pb::PlacementRequest>,
    ) -> Result<Response<pb::PlacementResponse>, Status> {
        self.access.check(req.extensions(), &[Action::Placement])?;
        let player = req.into_inner().player;
        let dir = self.directory_group()?;
        self.linearize(&dir).await?;
        let store = dir.store.clone();
        let row = geowallet_raft::blocking(move || {
            store.directory_get(geowallet_storage::DirKey::Placement(player))
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(|e| Status::data_loss(format!("read the directory: {e}")))?;
        let placement: Option<Placement> = row
            .map(|b| postcard::from_bytes(&b))
            .transpose()
            .map_err(|e| Status::data_loss(format!("directory row does not decode: {e}")))?;
        Ok(Response::new(match placement {
            Some(p) => placement_response(&self.host, DirReply::Placed(p)),
            None => pb::PlacementResponse::default(),
        }))
    }

    async fn transfer_leader(
        &self,
        req: Request<pb::TransferLeaderRequest>,
    ) -> Result<Response<pb::TransferLeaderResponse>, Status> {
        self.access
            .check(req.extensions(), &[Action::TransferLeader])?;
        let req = req.into_inner();
        if req.group_id == 0 && self.directory.is_none() {
            return Err(Status::invalid_argument("name the group (group_id)"));
        }
        let group = self.hosted(GroupId(req.group_id))?;
        let to = req.node_id;
        let (leader, voter) = {
            let m = group.raft.metrics();
            let m = m.borrow_watched();
            let voter = m
                .membership_config
                .membership()
                .voter_ids()
                .any(|v| v == to);
            (m.current_leader, voter)
        };
        if !voter {
            return Err(Status::invalid_argument(format!(
                "node {to} is not a voter of group {}",
                req.group_id
            )));
        }
        if leader != Some(self.host.node_id()) && leader != Some(to) {
            let endpoint = leader.and_then(|l| self.endpoint_of(l));
            return Err(not_leader(leader, endpoint));
        }
        if leader != Some(to)
            && let Err(e) = group.raft.trigger().transfer_leader(to).await
        {
            return Err(unavailable(format!("leadership transfer failed: {e}")));
        }
        let led = group
            .raft
            .wait(Some(LEADER_TRANSFER_WAIT))
            .metrics(|m| m.current_leader == Some(to), "transfer leader")
            .await
            .map_err(|e| {
                unavailable(format!(
                    "node {to} did not take over group {} in time: {e}",
                    req.group_id
                ))
            })?;
        Ok(Response::new(pb::TransferLeaderResponse {
            leader_id: to,
            term: led.current_term,
        }))
    }

    async fn migrate(
        &self,
        req: Request<pb::MigrateRequest>,
    ) -> Result<Response<pb::MigrateResponse>, Status> {
        self.access.check(req.extensions(), &[Action::Migrate])?;
        let req = req.into_inner();
        let Some(mover) = &self.mover else {
            return Err(Status::unimplemented(
                "this cluster has no directory (one shard group configured without \
                 [[groups]]): there is no other group to move a wallet to",
            ));
        };
        if req.region.is_empty() {
            return Err(Status::invalid_argument(
                "name the region to move the wallet to (region)",
            ));
        }
        let refused = |code: &str, e: MoveError| {
            Ok(Response::new(pb::MigrateResponse {
                refused: Some(pb::Refusal {
                    code: code.into(),
                    message: e.to_string(),
                    ..Default::default()
                }),
                ..Default::default()
            }))
        };
        match mover.migrate(req.player, &req.region).await {
            Ok(m) => Ok(Response::new(pb::MigrateResponse {
                group_id: m.group,
                epoch: m.epoch,
                home_region: self
                    .host
                    .home_region_of(GroupId(m.group))
                    .unwrap_or_default()
                    .to_string(),
                moved: m.moved,
                refused: None,
            })),
            Err(MoveError::NotLeader {
                leader_id,
                leader_endpoint,
                ..
            }) => Err(not_leader(leader_id, leader_endpoint)),
            Err(e @ MoveError::NotPlaced { .. }) => refused("not_placed", e),
            Err(e @ MoveError::NoGroupInRegion { .. }) => refused("no_group_in_region", e),
            Err(e @ MoveError::Refused { .. }) => refused("move_refused", e),
            Err(e @ MoveError::TooBig { .. }) => refused("wallet_too_big", e),
            Err(e @ MoveError::Unavailable { .. }) => Err(unavailable(e.to_string())),
            Err(e @ MoveError::Stuck { .. }) => Err(Status::aborted(e.to_string())),
        }
    }

    async fn status(
        &self,
        req: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        self.access.check(req.extensions(), &[Action::Status])?;
        let mut status = crate::status::status(&self.host);
        if let Some(mover) = &self.mover {
            let mut moves = mover.stats.to_pb();
            moves.transfers_pending = mover.transfers_pending_here().await;
            status.moves = Some(moves);
        }
        Ok(Response::new(status))
    }
}

/// Refuses a read of `player`, whose accounts are not in the group read,
/// when its wallet is moving away (retry: `unavailable`) or moved (a
/// `wrong_group` redirect to where it went). The directory check before
/// the read does not see these: it names this group until the move
/// repoints the player, and a node's cached placement may lag.
fn moved_away(
    player: geowallet_ledger::PlayerId,
    moves: &std::collections::BTreeMap<geowallet_ledger::PlayerId, geowallet_ledger::PlayerMove>,
) -> Result<(), Status> {
    use geowallet_ledger::PlayerMove;
    match moves.get(&player) {
        Some(PlayerMove::Leaving { to_group, .. }) => Err(unavailable(format!(
            "player {player}'s wallet is moving to group {to_group}; retry shortly"
        ))),
        Some(PlayerMove::Moved { group, epoch, .. }) => Err(wrong_group(Placement {
            player: player.0,
            group: *group,
            epoch: *epoch,
        })),
        _ => Ok(()),
    }
}

/// The players a command touches (both sides of a transfer).
/// Backup pieces read ahead of the client at most (back-pressure).
const BACKUP_PIECES_AHEAD: usize = 4;
/// Bytes per backup piece at most.
const BACKUP_PIECE_BYTES: usize = 1 << 20;

/// Streams the checkpoint at `dir` as group `group`'s snapshot file, then
/// deletes it (also when the client went away or a read failed).
async fn stream_backup(
    group: GroupId,
    dir: std::path::PathBuf,
    tx: tokio::sync::mpsc::Sender<Result<pb::BackupChunk, Status>>,
) {
    if let Err(status) = send_backup(group, &dir, &tx).await {
        tracing::warn!(%group, error = %status.message(), "backup stream failed");
        let _ = tx.send(Err(status)).await;
    }
    let _ = geowallet_raft::blocking(move || geowallet_storage::remove_snapshot(&dir)).await;
}

async fn send_backup(
    group: GroupId,
    dir: &std::path::Path,
    tx: &tokio::sync::mpsc::Sender<Result<pb::BackupChunk, Status>>,
) -> Result<(), Status> {
    let failed = |e: String| Status::internal(format!("group {group}: read the backup: {e}"));
    let path = dir.to_path_buf();
    let mut reader = geowallet_raft::blocking(move || {
        geowallet_storage::SnapshotChunkReader::open(&path, group)
    })
    .await
    .map_err(|e| failed(e.to_string()))?
    .map_err(|e| failed(e.to_string()))?;
    loop {
        let (back, piece) = geowallet_raft::blocking(move || {
            let piece = reader.next_piece(BACKUP_PIECE_BYTES);
            (reader, piece)
        })
        .await
        .map_err(|e| failed(e.to_string()))?;
        reader = back;
        let chunk = match piece.map_err(|e| failed(e.to_string()))? {
            Some((offset, data, crc32)) => pb::BackupChunk {
                offset,
                data,
                crc32,
                last: false,
            },
            None => pb::BackupChunk {
                last: true,
                ..Default::default()
            },
        };
        let last = chunk.last;
        if tx.send(Ok(chunk)).await.is_err() || last {
            // Sent whole, or the client went away.
            return Ok(());
        }
    }
}

/// Change stream batches read ahead of the client at most (back-pressure:
/// the reader waits while they are unsent).
const EVENT_BATCHES_AHEAD: usize = 4;
/// Entries per change stream batch at most.
const EVENTS_PER_BATCH: usize = 256;
/// How long an idle change stream waits for the applied index to move
/// before it looks again (and notices a client that left).
const EVENTS_IDLE_WAIT: Duration = Duration::from_millis(500);

/// Feeds `tx` the group's events from `from` on, in order, as they are
/// applied here (applied means committed: nothing sent is ever undone);
/// ends after `until` (when not 0) or when the client goes away.
async fn stream_events<E: Engine>(
    group: Arc<Group<E>>,
    mut from: u64,
    until: u64,
    tx: tokio::sync::mpsc::Sender<Result<pb::EventsResponse, Status>>,
) {
    let mut applied_rx = group.raft.metrics();
    loop {
        // Rows are written with the applied position: every event at or
        // below `applied` is in the read that follows.
        let applied = applied_rx
            .borrow_watched()
            .last_applied
            .as_ref()
            .map_or(0, |l| l.index);
        let store = group.store.clone();
        let rows =
            geowallet_raft::blocking(move || store.events_from(from, EVENTS_PER_BATCH)).await;
        let mut rows = match rows {
            Ok(Ok(rows)) => rows,
            Ok(Err(e)) => {
                let _ = tx
                    .send(Err(Status::data_loss(format!(
                        "read the group's events: {e}"
                    ))))
                    .await;
                return;
            }
            Err(e) => {
                let _ = tx.send(Err(Status::internal(e.to_string()))).await;
                return;
            }
        };
        if until > 0 {
            rows.retain(|e| e.log_index <= until);
        }
        if let Some(last) = rows.last() {
            from = last.log_index + 1;
            let batch = pb::EventsResponse {
                entries: rows.iter().map(wire::group_events).collect(),
            };
            if tx.send(Ok(batch)).await.is_err() {
                return;
            }
            continue;
        }
        if until > 0 && (applied >= until || from > until) {
            return;
        }
        tokio::select! {
            waited = tokio::time::timeout(EVENTS_IDLE_WAIT, applied_rx.changed()) => {
                if let Ok(Err(_)) = waited {
                    let _ = tx
                        .send(Err(Status::unavailable(
                            "the group stopped on this node; resume on another replica",
                        )))
                        .await;
                    return;
                }
            }
            () = tx.closed() => return,
        }
    }
}

/// The refusal code of a refused command's result.
fn refusal_code(r: &pb::CommandResult) -> Option<&str> {
    match &r.result {
        Some(pb::command_result::Result::Refused(refusal)) => Some(refusal.code.as_str()),
        _ => None,
    }
}

fn players(c: &geowallet_ledger::Command) -> Vec<u64> {
    match c {
        geowallet_ledger::Command::Transfer { from, to, .. } => {
            let mut p = vec![from.player.0, to.player.0];
            p.dedup();
            p
        }
        other => vec![other.account().player.0],
    }
}

fn placement_response<E: Engine>(host: &GroupHost<E>, reply: DirReply) -> pb::PlacementResponse {
    match reply {
        DirReply::Placed(p) => pb::PlacementResponse {
            placed: true,
            group_id: p.group,
            epoch: p.epoch,
            refused: None,
            home_region: host
                .home_region_of(GroupId(p.group))
                .unwrap_or_default()
                .to_string(),
        },
        DirReply::Refused(r) => {
            let code = match &r {
                DirRefusal::NoGroupInRegion { .. } => "no_group_in_region",
                DirRefusal::NoGroups => "no_groups",
                DirRefusal::GroupsDiffer => "groups_differ",
                DirRefusal::UnknownGroup { .. } => "unknown_group",
                DirRefusal::NotPlaced { .. } => "not_placed",
                DirRefusal::StaleEpoch { .. } => "stale_epoch",
            };
            pb::PlacementResponse {
                placed: false,
                refused: Some(pb::Refusal {
                    code: code.into(),
                    message: r.to_string(),
                    ..Default::default()
                }),
                ..Default::default()
            }
        }
        DirReply::GroupsSet => pb::PlacementResponse::default(),
    }
}

/// What one command of an `Execute` does, for the access check.
/// What a command does, for the role check: its verb, and for money
/// that enters or leaves a wallet the kind of money (a game server may
/// capture a bet's hold, never a withdrawal's). A kind that does not
/// decode adds nothing: the command is refused as invalid anyway.
fn actions_of(c: &pb::Command, out: &mut Vec<Action>) {
    use pb::command::Op;
    let debit = |kind: i32| match pb::DebitKind::try_from(kind) {
        Ok(pb::DebitKind::Bet) => Some(Action::Bet),
        Ok(pb::DebitKind::Withdrawal) => Some(Action::Withdraw),
        Ok(pb::DebitKind::Fee) => Some(Action::Fee),
        _ => None,
    };
    let Some(op) = c.op.as_ref() else {
        return;
    };
    match op {
        Op::Open(_) => out.push(Action::Open),
        Op::Credit(o) => out.extend(match pb::CreditKind::try_from(o.kind) {
            Ok(pb::CreditKind::Deposit) => Some(Action::Deposit),
            Ok(pb::CreditKind::Win | pb::CreditKind::Bonus | pb::CreditKind::Refund) => {
                Some(Action::Win)
            }
            _ => None,
        }),
        Op::Debit(o) => out.extend(debit(o.kind)),
        Op::Transfer(_) => out.push(Action::Transfer),
        Op::Hold(_) => out.push(Action::Hold),
        Op::Capture(o) => {
            out.push(Action::Capture);
            out.extend(debit(o.kind));
        }
        Op::Release(_) => out.push(Action::Release),
        Op::Freeze(_) => out.push(Action::Freeze),
        Op::Unfreeze(_) => out.push(Action::Unfreeze),
    }
}
