//! Coordinates transfers between players of different shard groups (see
//! `geowallet_ledger`'s `cross_transfer`): the leader of the payer's group
//! commits `TransferBegin` (the payer debited into transit, a pending row
//! kept), asks the payee's group for `TransferCredit` over `MoveService`,
//! following the payee's wallet if it moved, and commits `TransferSettle`
//! with the payee group's final answer. Every step is idempotent by the
//! transfer's tx id, so the client's retry, a second driver or a new
//! leader resuming the pending rows from the log ([`Mover::resume`]) can
//! run it again; nothing is decided from memory.

use std::time::Duration;

use geowallet_ledger::{
    AccountId, MoveCommand, MoveOutcome, Outcome, PendingTransfer, Refusal, Request, TxId, is_final,
};
use geowallet_raft::directory::Placement;
use geowallet_storage::Engine;

use super::{Mover, STEP_RETRY_PAUSE, crash_point};
use crate::group_host::Group;
use crate::proposer::ProposeError;

/// How long a client's call waits for its transfer to settle before it is
/// answered `unavailable` (the transfer goes on; a retry with the same tx
/// id waits for it again).
/// Shorter than the client's default call timeout (3 s), so the client
/// hears why rather than timing out.
pub const TRANSFER_CALL_BUDGET: Duration = Duration::from_secs(2);
/// How long a resumed transfer is driven before the next scan tries again.
pub(super) const TRANSFER_RESUME_BUDGET: Duration = Duration::from_secs(30);

impl<E: Engine> Mover<E> {
    /// Runs a client's `request` (a transfer whose payee is placed in
    /// another group) from `group`, which must be led here and hold the
    /// payer: its final outcome, or `Unavailable` if it could not settle
    /// within [`TRANSFER_CALL_BUDGET`] (it is pending then, and settles
    /// by itself; the client's retry answers it).
    pub async fn transfer(
        &self,
        group: &Group<E>,
        request: Request,
    ) -> Result<Outcome, ProposeError> {
        let deadline = tokio::time::Instant::now() + TRANSFER_CALL_BUDGET;
        let from = request.command.account();
        let tx = request.tx.clone();
        let begin = MoveCommand::TransferBegin { request };
        let (outcome, index) = self.local_step(group, begin).await?;
        match outcome {
            MoveOutcome::TransferDone { outcome } => Ok(outcome),
            MoveOutcome::TransferPending { pending } => {
                // This entry debited the payer (not a retry finding it pending).
                if pending.debited.log_index.0 == index {
                    self.stats
                        .transfers_begun
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                crash_point(from.player.0, "transfer-begun");
                self.settle(group, from, tx, &pending, deadline).await
            }
            other => Err(ProposeError::Unavailable(format!(
                "the transfer's first step answered {other:?}"
            ))),
        }
    }

    /// Credits the payee wherever its wallet is and settles the payer in
    /// `group` (led here) by `deadline`.
    pub(super) async fn settle(
        &self,
        group: &Group<E>,
        from: AccountId,
        tx: TxId,
        pending: &PendingTransfer,
        deadline: tokio::time::Instant,
    ) -> Result<Outcome, ProposeError> {
        let credit = self.credit(from, &tx, pending, deadline).await?;
        let settle = MoveCommand::TransferSettle {
            from,
            tx: tx.clone(),
            credit,
        };
        let settled = self.local_step(group, settle).await?.0;
        crash_point(from.player.0, "transfer-settled");
        match settled {
            // A `moved` refusal: the payer's wallet (and the pending row)
            // left; its new group settles, and the client follows it there.
            MoveOutcome::TransferDone { outcome } => Ok(outcome),
            other => Err(ProposeError::Unavailable(format!(
                "transfer {tx} from {from}: the settle answered {other:?}"
            ))),
        }
    }

    /// The payee group's final answer to the credit of `pending`: asked of
    /// the group the directory places the payee in, and of the group a
    /// `moved` answer names, until one answers for good or `deadline`.
    async fn credit(
        &self,
        from: AccountId,
        tx: &TxId,
        pending: &PendingTransfer,
        deadline: tokio::time::Instant,
    ) -> Result<Outcome, ProposeError> {
        let to = pending.to;
        let player = to.player.0;
        let command = MoveCommand::TransferCredit {
            from,
            to,
            amount: pending.amount,
            tx: tx.clone(),
            created_at_ns: pending.created_at_ns,
        };
        let bytes = postcard::to_allocvec(&command).expect("a transfer step encodes");
        let mut epoch = 0;
        let mut last = String::from("no attempt");
        while tokio::time::Instant::now() < deadline {
            let placement = match self.directory.placement(player, epoch).await {
                Ok(p) => p,
                Err(e) => {
                    last = format!("cannot read player {player}'s placement: {e}");
                    tokio::time::sleep(STEP_RETRY_PAUSE).await;
                    continue;
                }
            };
            let Some(placement) = placement else {
                // Placed nowhere: no group has (or had) the payee's wallet,
                // so no group can have credited it.
                return Ok(Err(Refusal::UnknownAccount { account: to }));
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let reply = match self
                .remote_within(placement.group, bytes.clone(), left)
                .await
            {
                Ok(reply) => reply,
                Err(e) => {
                    // A group outside this node's topology fails at once:
                    // pause rather than spin on the directory's cache.
                    last = e.to_string();
                    tokio::time::sleep(STEP_RETRY_PAUSE).await;
                    continue;
                }
            };
            let outcome: MoveOutcome = postcard::from_bytes(&reply).map_err(|e| {
                ProposeError::Unavailable(format!(
                    "group {} answered an undecodable outcome: {e}",
                    placement.group
                ))
            })?;
            match outcome {
                MoveOutcome::TransferDone { outcome: Ok(r) } => return Ok(Ok(r)),
                MoveOutcome::TransferDone { outcome: Err(r) } if is_final(&r) => return Ok(Err(r)),
                MoveOutcome::TransferDone {
                    outcome:
                        Err(Refusal::Moved {
                            group, epoch: e, ..
                        }),
                } => {
                    self.directory.learned(Placement {
                        player,
                        group,
                        epoch: e,
                    });
                    epoch = e;
                    last = format!("the payee moved to group {group}");
                }
                MoveOutcome::TransferDone {
                    outcome: Err(r @ (Refusal::Moving { .. } | Refusal::TxIdFromFuture { .. })),
                } => {
                    last = r.to_string();
                    tokio::time::sleep(STEP_RETRY_PAUSE).await;
                }
                MoveOutcome::TransferDone { outcome: Err(r) } => {
                    // An expired or conflicting id: the payee's group cannot
                    // tell whether it credited. The money stays in transit
                    // and the transfer pending for an operator; never a guess.
                    tracing::error!(%tx, %from, %to, refusal = %r, "a transfer between groups cannot settle");
                    return Err(ProposeError::Unavailable(format!(
                        "transfer {tx} from {from} to {to} cannot settle: the payee's group \
                         answers `{}` ({r}); it stays pending, its money in transit",
                        r.code()
                    )));
                }
                other => {
                    return Err(ProposeError::Unavailable(format!(
                        "the payee's group answered the credit with {other:?}"
                    )));
                }
            }
        }
        Err(ProposeError::Unavailable(format!(
            "transfer {tx} from {from} to {to} is not settled yet ({last}); it settles by \
             itself: retry with the same tx id for its outcome"
        )))
    }
}

impl<E: Engine> Mover<E> {
    /// Transfers between groups pending in the groups this node leads.
    pub async fn transfers_pending_here(&self) -> u64 {
        let mut pending = 0;
        for group in self.host.groups() {
            if group.id == geowallet_storage::GroupId::DIRECTORY || !group.raft.is_leader() {
                continue;
            }
            let store = group.store.clone();
            if let Ok(Ok(p)) = geowallet_raft::blocking(move || store.transfers_pending()).await {
                pending += p.len() as u64;
            }
        }
        pending
    }
}
