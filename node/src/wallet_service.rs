use std::sync::Arc;
use std::time::Duration;

use geowallet_ledger::{LogIndex, Outcome};
use geowallet_proto::v1 as pb;
use geowallet_proto::v1::wallet_server::Wallet;
use geowallet_raft::{AppliedState, TypeConfig};
use geowallet_storage::{AuditRead, DefaultEngine, Engine, GroupId, JournalFrom, Totals};
use openraft::ReadPolicy;
use openraft::error::{ForwardToLeader, LinearizableReadError, RaftError};
use prost::Message;
use tonic::{Request, Response, Status};

use crate::group_host::{Group, GroupHost};
use crate::proposer::ProposeError;
use crate::wire;

/// Commands per Execute call at most.
pub const COMMANDS_PER_CALL_MAX: usize = 10_000;
/// Accounts per Audit call at most.
pub const ACCOUNTS_PER_AUDIT_MAX: usize = 10_000;
/// How long a new leader may take to be confirmed by a quorum before a read gives up.
const LEADER_CONFIRM_WAIT: Duration = Duration::from_secs(2);

/// The client API of one node: routes each request to the hosted group it
/// names (or the default group).
pub struct WalletService<E: Engine = DefaultEngine> {
    pub host: Arc<GroupHost<E>>,
}

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
    pub fn new(host: Arc<GroupHost<E>>) -> WalletService<E> {
        WalletService { host }
    }

    /// The hosted group `id` names (0: the default group). A group hosted
    /// elsewhere is answered with a redirect to one of its replicas.
    fn group(&self, id: u64) -> Result<Arc<Group<E>>, Status> {
        let found = if id == 0 {
            self.host.default_group()
        } else {
            self.host.group(GroupId(id))
        };
        if let Some(g) = found {
            return Ok(g);
        }
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
        match group.proposer.propose(requests).await {
            Ok(o) => Ok(o),
            Err(ProposeError::NotLeader {
                leader_id,
                leader_endpoint,
            }) => {
                let endpoint =
                    leader_endpoint.or_else(|| leader_id.and_then(|id| self.endpoint_of(id)));
                Err(not_leader(leader_id, endpoint))
            }
            Err(ProposeError::Unavailable(reason)) => Err(unavailable(reason)),
            Err(e @ ProposeError::TooMany { .. }) => Err(Status::invalid_argument(e.to_string())),
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
        let req = req.into_inner();
        let group = self.group(req.group_id)?;
        let commands = req.commands;
        if commands.len() > COMMANDS_PER_CALL_MAX {
            return Err(Status::invalid_argument(format!(
                "{} commands in one call; send at most {COMMANDS_PER_CALL_MAX}",
                commands.len()
            )));
        }
        let mut results: Vec<Option<pb::CommandResult>> = Vec::with_capacity(commands.len());
        let mut requests = Vec::with_capacity(commands.len());
        for c in &commands {
            match wire::request(c) {
                Ok(r) => {
                    requests.push(r);
                    results.push(None);
                }
                Err(refusal) => results.push(Some(wire::refused(refusal))),
            }
        }
        // A call larger than one entry may carry goes in several entries, in
        // order; if a later one fails, the client's retry with the same tx
        // ids gets the earlier ones' stored outcomes.
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(requests.len());
        for chunk in requests.chunks(group.proposer.requests_per_entry_max()) {
            outcomes.extend(self.propose(&group, chunk.to_vec()).await?);
        }
        let mut outcomes = outcomes.into_iter();
        let results = results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    wire::outcome(outcomes.next().expect("one outcome per valid command"))
                })
            })
            .collect();
        Ok(Response::new(pb::ExecuteResponse { results }))
    }

    async fn balance(
        &self,
        req: Request<pb::BalanceRequest>,
    ) -> Result<Response<pb::BalanceResponse>, Status> {
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
            None => pb::BalanceResponse {
                read_index,
                refused: Some(wire::refusal(&geowallet_ledger::Refusal::UnknownAccount {
                    account,
                })),
                ..Default::default()
            },
        };
        Ok(Response::new(resp))
    }

    async fn audit(
        &self,
        req: Request<pb::AuditRequest>,
    ) -> Result<Response<pb::AuditResponse>, Status> {
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
        self.linearize(&group).await?;
        let ids = accounts.iter().map(|(id, _)| *id).collect();
        let (read, read_index) = self.read(&group, ids, Totals::Read).await?;
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
        let r = req.into_inner();
        let group = self.group(r.group_id)?;
        let account = wire::account(r.account.as_ref(), "account")
            .map_err(|e| Status::invalid_argument(e.0))?;
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
        let entries = page.entries.iter().map(wire::journal_entry).collect();
        Ok(Response::new(pb::JournalResponse {
            entries,
            more,
            next_log_index,
            next_position,
            next_seq,
        }))
    }

    async fn status(
        &self,
        _req: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        Ok(Response::new(crate::status::status(&self.host)))
    }
}
