//! Turns a geowallet history into per-account wallet operations.

use crate::call_pairing::CallPairing;
use crate::error::TestkitError;
use crate::history::{EventType, HistoryEvent, OpKind};
use crate::operation::Operation;
use crate::wallet_model::{WalletAction, WalletCall, WalletOutput};

const FORMAT: &str = "geowallet";

/// Fail reason that is an observation rather than "did not happen".
pub const INSUFFICIENT_FUNDS: &str = "insufficient_funds";

type WalletOperation = Operation<WalletCall, WalletOutput>;

/// Pairs invocations with completions and projects each call onto the
/// accounts it touches: a transfer becomes a debit of the source and a credit
/// of the target (both carrying the transfer's tx), an ok `read_all` a read of
/// every account it lists. Each projection is checked on its own, which is
/// sound but weaker than checking the transfer atomically across both
/// accounts. Calls repeating a tx id (retries, deliberate duplicates) stay
/// separate operations: the model answers them from the tx's stored result.
pub fn wallet_operations(events: &[HistoryEvent]) -> Result<Vec<WalletOperation>, TestkitError> {
    let mut pairing = CallPairing::new(FORMAT);
    let mut operations = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let line = index + 1;
        if event.kind == EventType::Invoke {
            pairing.invoke(event.process, event, event.time_ns, line)?;
            continue;
        }
        let invoke = pairing.complete(event.process, line)?.call;
        if invoke.f != event.f || invoke.account != event.account {
            let message = "completion names another f or account than its invoke";
            return Err(TestkitError::malformed(FORMAT, line, message));
        }
        if event.time_ns < invoke.time_ns {
            return Err(TestkitError::malformed(
                FORMAT,
                line,
                "completion before its invoke",
            ));
        }
        project(invoke, Some(event), line, &mut operations)?;
    }
    for open in pairing.into_open() {
        project(open.call, None, 0, &mut operations)?;
    }
    Ok(operations)
}

/// Adds the projections of one call; `completion == None` or `:info` = indeterminate.
fn project(
    invoke: &HistoryEvent,
    completion: Option<&HistoryEvent>,
    line: usize,
    out: &mut Vec<WalletOperation>,
) -> Result<(), TestkitError> {
    let (output, return_time) = match completion {
        None => (WalletOutput::Unknown, None),
        Some(done) => match done.kind {
            EventType::Ok => (WalletOutput::Ok(done.value.balance), Some(done.time_ns)),
            EventType::Info => (WalletOutput::Unknown, None),
            EventType::Fail if is_funds_refusal(invoke.f, done) => {
                (WalletOutput::InsufficientFunds, Some(done.time_ns))
            }
            // Any other failure means the call did not happen.
            EventType::Fail => return Ok(()),
            EventType::Invoke => unreachable!("pairing completes only with non-invoke events"),
        },
    };
    let base = |account: String, action: WalletAction, output: WalletOutput| Operation {
        process: invoke.process,
        input: WalletCall {
            account,
            action,
            origin: invoke.f,
            tx: invoke.value.tx.clone(),
            // Refined by `WalletModel::partition`.
            tx_repeats: true,
        },
        output,
        call_time: invoke.time_ns,
        return_time,
    };
    if invoke.f == OpKind::ReadAll {
        if let Some(done) = completion.filter(|done| done.kind == EventType::Ok) {
            for (account, balance) in done.value.balances.iter().flatten() {
                out.push(base(
                    account.clone(),
                    WalletAction::Read,
                    WalletOutput::Ok(Some(*balance)),
                ));
            }
        }
        return Ok(());
    }
    let account = require(invoke.account.clone(), "account", line)?;
    let action = action_of(invoke, line)?;
    out.push(base(account, action, output));
    if invoke.f == OpKind::Transfer {
        let to = require(invoke.value.to.clone(), "value.to", line)?;
        let amount = require(invoke.value.amount, "value.amount", line)?;
        let to_output = match output {
            WalletOutput::Ok(_) => {
                WalletOutput::Ok(completion.and_then(|done| done.value.to_balance))
            }
            WalletOutput::Unknown => WalletOutput::Unknown,
            // A refused transfer did nothing to the target.
            WalletOutput::InsufficientFunds => return Ok(()),
        };
        out.push(base(to, WalletAction::Credit(amount), to_output));
    }
    Ok(())
}

fn is_funds_refusal(f: OpKind, done: &HistoryEvent) -> bool {
    matches!(f, OpKind::Debit | OpKind::Transfer | OpKind::Hold)
        && done.value.reason.as_deref() == Some(INSUFFICIENT_FUNDS)
}

/// The action on the invoking account (the source, for a transfer).
fn action_of(invoke: &HistoryEvent, line: usize) -> Result<WalletAction, TestkitError> {
    let value = &invoke.value;
    let amount = || require(value.amount, "value.amount", line);
    let hold = || require(value.hold.clone(), "value.hold", line);
    Ok(match invoke.f {
        OpKind::Open => WalletAction::Open,
        OpKind::Credit => WalletAction::Credit(amount()?),
        OpKind::Debit | OpKind::Transfer => WalletAction::Debit(amount()?),
        OpKind::Hold => WalletAction::Hold {
            hold: hold()?,
            amount: amount()?,
        },
        OpKind::Capture => WalletAction::Capture {
            hold: hold()?,
            amount: value.amount,
        },
        OpKind::Release => WalletAction::Release { hold: hold()? },
        OpKind::Read | OpKind::ReadAll => WalletAction::Read,
    })
}

fn require<T>(field: Option<T>, name: &str, line: usize) -> Result<T, TestkitError> {
    field.ok_or_else(|| TestkitError::malformed(FORMAT, line, format!("missing {name}")))
}
