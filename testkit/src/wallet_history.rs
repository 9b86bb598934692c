//! Turns a geowallet history into per-account wallet operations.

use std::collections::{BTreeMap, BTreeSet};

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
    wallet_operations_returning(events, &BTreeSet::new())
}

/// [`wallet_operations`] where the transfers under the tx ids of `returned`
/// were refused by a payee in another shard group after their payer was
/// debited, and their money came back (the payer's journal has a
/// `transfer_back` line). Both happened between the first call of the tx
/// and the last (retries included), so every call of such a tx projects to
/// one debit and one credit of the payer, both taken effect within that
/// window, and nothing on the payee; a read in between may rightly see the
/// money gone.
pub fn wallet_operations_returning(
    events: &[HistoryEvent],
    returned: &BTreeSet<String>,
) -> Result<Vec<WalletOperation>, TestkitError> {
    let mut pairing = CallPairing::new(FORMAT);
    let mut operations = Vec::new();
    let mut windows: BTreeMap<String, ReturnedWindow> = BTreeMap::new();
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
        if let Some(w) = returned_window(invoke, Some(event), returned, line)? {
            merge_window(&mut windows, w);
            continue;
        }
        project(invoke, Some(event), line, &mut operations)?;
    }
    for open in pairing.into_open() {
        if let Some(w) = returned_window(open.call, None, returned, 0)? {
            merge_window(&mut windows, w);
            continue;
        }
        project(open.call, None, 0, &mut operations)?;
    }
    for w in windows.into_values() {
        for action in [
            WalletAction::Debit(w.amount),
            WalletAction::Credit(w.amount),
        ] {
            operations.push(Operation {
                process: w.process,
                input: WalletCall {
                    account: w.payer.clone(),
                    action,
                    origin: OpKind::Transfer,
                    // Not deduplicated: the two are distinct effects.
                    tx: None,
                    tx_repeats: false,
                },
                output: WalletOutput::Ok(None),
                call_time: w.from_ns,
                return_time: w.until_ns,
            });
        }
    }
    Ok(operations)
}

/// The calls of one returned transfer, merged: from the first invoke to the
/// last completion (`None`: one never completed).
struct ReturnedWindow {
    tx: String,
    process: u64,
    payer: String,
    amount: u64,
    from_ns: u64,
    until_ns: Option<u64>,
}

fn returned_window(
    invoke: &HistoryEvent,
    completion: Option<&HistoryEvent>,
    returned: &BTreeSet<String>,
    line: usize,
) -> Result<Option<ReturnedWindow>, TestkitError> {
    let Some(tx) = invoke.value.tx.as_ref().filter(|tx| returned.contains(*tx)) else {
        return Ok(None);
    };
    if invoke.f != OpKind::Transfer {
        return Ok(None);
    }
    let until_ns = completion
        .filter(|done| done.kind != EventType::Info)
        .map(|done| done.time_ns);
    Ok(Some(ReturnedWindow {
        tx: tx.clone(),
        process: invoke.process,
        payer: require(invoke.account.clone(), "account", line)?,
        amount: require(invoke.value.amount, "value.amount", line)?,
        from_ns: invoke.time_ns,
        until_ns,
    }))
}

fn merge_window(windows: &mut BTreeMap<String, ReturnedWindow>, w: ReturnedWindow) {
    match windows.get_mut(&w.tx) {
        None => {
            windows.insert(w.tx.clone(), w);
        }
        Some(seen) => {
            seen.from_ns = seen.from_ns.min(w.from_ns);
            seen.until_ns = match (seen.until_ns, w.until_ns) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
        }
    }
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
