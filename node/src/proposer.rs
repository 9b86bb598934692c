//! Leader-side batching: requests that arrive together become one Raft entry
//! (one append, one fsync, one replication round for all of them), and up to
//! `PROPOSALS_IN_FLIGHT_MAX` entries are in flight at once, so the next batch
//! gathers while the previous one commits.

use std::sync::Arc;

use geowallet_ledger::{Outcome, Request};
use geowallet_raft::{ClockQuorum, ClockVerdict, GroupRaft, MessageLimits, Proposal};
use geowallet_storage::Engine;
use openraft::async_runtime::WatchReceiver;
use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::dual_dc::DualDc;
use crate::metrics::Metrics;

/// Requests per Raft entry at most (fewer under a small transport limit:
/// `MessageLimits::requests_per_entry_max`).
pub const REQUESTS_PER_ENTRY_MAX: usize = 4096;
/// Raft entries proposed and not yet answered at most.
pub const PROPOSALS_IN_FLIGHT_MAX: usize = 2;
/// Submissions queued at most before callers wait (backpressure).
pub const SUBMISSIONS_QUEUED_MAX: usize = 16 * 1024;

/// Why a submission got no outcomes.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProposeError {
    /// This node is not the leader. The requests may still commit if this
    /// node was leader when it proposed them: retry with the same tx ids.
    #[error("this node is not the leader")]
    NotLeader {
        leader_id: Option<u64>,
        leader_endpoint: Option<String>,
    },
    #[error("the group cannot take writes now: {0}")]
    Unavailable(String),
    /// More requests than one entry may carry; nothing was proposed.
    #[error("{requests} commands in one call; send at most {max}")]
    TooMany { requests: usize, max: usize },
}

struct Submission {
    requests: Vec<Request>,
    reply: oneshot::Sender<Result<Vec<Outcome>, ProposeError>>,
    /// The caller's span (its request id): where the entry and its log
    /// index are logged once applied.
    span: tracing::Span,
}

/// Hands requests to one group's Raft, batched.
#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::Sender<Submission>,
    requests_per_entry_max: usize,
}

impl Proposer {
    /// Batches at most `REQUESTS_PER_ENTRY_MAX` requests per entry, and at
    /// most what `limits` lets one entry carry. Entries are stamped with
    /// this node's time only while `clocks` finds it agrees with a quorum.
    /// Outcomes are answered once `dual_dc` lets the entry be acknowledged.
    /// Each entry's size goes to `metrics` under the group id.
    pub fn start<E: Engine>(
        raft: GroupRaft<E>,
        limits: MessageLimits,
        clocks: ClockQuorum,
        dual_dc: Arc<DualDc>,
        metrics: (Arc<Metrics>, u64),
    ) -> Proposer {
        let requests_per_entry_max = REQUESTS_PER_ENTRY_MAX.min(limits.requests_per_entry_max());
        let (tx, rx) = mpsc::channel(SUBMISSIONS_QUEUED_MAX);
        tokio::spawn(run(
            raft,
            rx,
            requests_per_entry_max,
            clocks,
            dual_dc,
            metrics,
        ));
        Proposer {
            tx,
            requests_per_entry_max,
        }
    }

    /// Requests one submission may carry at most (they go into one entry).
    pub fn requests_per_entry_max(&self) -> usize {
        self.requests_per_entry_max
    }

    /// Proposes `requests` (in order, in one entry) and returns their outcomes.
    /// More than [`Proposer::requests_per_entry_max`] is refused.
    pub async fn propose(&self, requests: Vec<Request>) -> Result<Vec<Outcome>, ProposeError> {
        if requests.len() > self.requests_per_entry_max {
            return Err(ProposeError::TooMany {
                requests: requests.len(),
                max: self.requests_per_entry_max,
            });
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Submission {
                requests,
                reply,
                span: tracing::Span::current(),
            })
            .await
            .map_err(|_| ProposeError::Unavailable("the node is shutting down".into()))?;
        rx.await
            .map_err(|_| ProposeError::Unavailable("the proposal was dropped".into()))?
    }
}

/// The time to stamp on the next entry: this node's clock, if it agrees
/// with a quorum of the group's voters. A leader whose clock disagrees
/// hands leadership to a voter whose clock agrees with the others.
pub fn ledger_time<E: Engine>(
    raft: &GroupRaft<E>,
    clocks: &ClockQuorum,
) -> Result<u64, ProposeError> {
    let (leader, voters): (bool, Vec<u64>) = {
        // Read in place: this runs once per proposed batch.
        let m = raft.metrics();
        let m = m.borrow_watched();
        let voters = m.membership_config.membership().voter_ids().collect();
        (m.state == openraft::ServerState::Leader, voters)
    };
    if !leader {
        // openraft answers ForwardToLeader; should this node become leader
        // in between, 0 leaves ledger time where it is.
        return Ok(0);
    }
    let verdict = clocks.verdict(voters);
    match &verdict {
        ClockVerdict::Agreed { now_ns } => return Ok(*now_ns),
        ClockVerdict::Disagrees {
            candidate: Some(to),
            ..
        } if clocks.transfer_due() => {
            tracing::warn!(%verdict, to, "clock out of quorum: transferring leadership");
            let (raft, to) = (raft.clone(), *to);
            tokio::spawn(async move {
                if let Err(e) = raft.trigger().transfer_leader(to).await {
                    tracing::warn!(error = %e, "leadership transfer failed");
                }
            });
        }
        _ => tracing::debug!(%verdict, "not stamping ledger time"),
    }
    Err(ProposeError::Unavailable(verdict.to_string()))
}

async fn run<E: Engine>(
    raft: GroupRaft<E>,
    mut rx: mpsc::Receiver<Submission>,
    requests_per_entry_max: usize,
    clocks: ClockQuorum,
    dual_dc: Arc<DualDc>,
    metrics: (Arc<Metrics>, u64),
) {
    let slots = Arc::new(Semaphore::new(PROPOSALS_IN_FLIGHT_MAX));
    // A submission that did not fit the previous batch starts the next one.
    let mut carry: Option<Submission> = None;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let first = match carry.take() {
            Some(s) => s,
            None => match rx.recv().await {
                Some(s) => s,
                None => return,
            },
        };
        let mut total = first.requests.len();
        let mut batch = vec![first];
        while let Ok(s) = rx.try_recv() {
            if total + s.requests.len() > requests_per_entry_max {
                carry = Some(s);
                break;
            }
            total += s.requests.len();
            batch.push(s);
        }
        let (raft, clocks, dual_dc) = (raft.clone(), clocks.clone(), dual_dc.clone());
        if total > 0 {
            metrics.0.proposal(metrics.1, total);
        }
        tokio::spawn(async move {
            propose_batch(&raft, &clocks, &dual_dc, batch, total, slot).await;
        });
    }
}

/// Proposes one batch; its in-flight `slot` is given back once the entry
/// committed, before the dual-datacenter wait, so the next batch does not
/// queue behind it.
async fn propose_batch<E: Engine>(
    raft: &GroupRaft<E>,
    clocks: &ClockQuorum,
    dual_dc: &DualDc,
    mut batch: Vec<Submission>,
    total: usize,
    slot: OwnedSemaphorePermit,
) {
    let leader_time_ns = match ledger_time(raft, clocks) {
        Ok(t) => t,
        Err(err) => {
            for s in batch {
                let _ = s.reply.send(Err(err.clone()));
            }
            return;
        }
    };
    let mut requests = Vec::with_capacity(total);
    let mut counts = Vec::with_capacity(batch.len());
    for s in &mut batch {
        counts.push(s.requests.len());
        requests.append(&mut s.requests);
    }
    let result = raft
        .client_write(Proposal::ledger(leader_time_ns, requests))
        .await;
    drop(slot);
    let result = match result {
        // Ticks (empty entries) wait too: they are what notices that a
        // datacenter is back when no client writes.
        Ok(resp) => match dual_dc.wait_durable(raft, resp.log_id.index).await {
            Ok(()) => Ok(resp),
            Err(e) => {
                for s in batch {
                    let _ = s.reply.send(Err(e.clone()));
                }
                return;
            }
        },
        other => other,
    };
    match result {
        Ok(resp) => {
            let mut outcomes = resp.data.outcomes.into_iter();
            assert_eq!(
                outcomes.len(),
                total,
                "apply answers one outcome per request"
            );
            for (s, n) in batch.into_iter().zip(counts) {
                tracing::debug!(
                    parent: &s.span,
                    log_index = resp.log_id.index,
                    requests = n,
                    "applied"
                );
                let _ = s.reply.send(Ok(outcomes.by_ref().take(n).collect()));
            }
        }
        Err(err) => {
            let err = propose_error(raft, err);
            for s in batch {
                let _ = s.reply.send(Err(err.clone()));
            }
        }
    }
}

pub fn propose_error<E: Engine>(
    raft: &GroupRaft<E>,
    err: RaftError<geowallet_raft::TypeConfig, ClientWriteError<geowallet_raft::TypeConfig>>,
) -> ProposeError {
    match err {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            if f.leader_id.as_ref() == Some(raft.node_id()) {
                return ProposeError::Unavailable(
                    "the new leader is not confirmed by a quorum yet; retry".into(),
                );
            }
            ProposeError::NotLeader {
                leader_id: f.leader_id,
                leader_endpoint: f.leader_node.map(|n| n.addr),
            }
        }
        other => ProposeError::Unavailable(other.to_string()),
    }
}
