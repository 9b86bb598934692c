//! No acknowledged write is lost.

use crate::final_state::FinalState;
use crate::history::{EventType, HistoryEvent, OpKind, completed_calls};

/// An ok write whose transaction id is missing from the final journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostAck {
    pub process: u64,
    pub f: OpKind,
    pub account: Option<String>,
    pub tx: String,
    pub time_ns: u64,
}

/// Result of [`check_acknowledged`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LostAckReport {
    /// Ok writes with a transaction id, all checked.
    pub acknowledged_checked: usize,
    /// Ok writes without a transaction id (cannot be checked).
    pub acknowledged_without_tx: usize,
    pub lost: Vec<LostAck>,
}

impl LostAckReport {
    pub fn is_ok(&self) -> bool {
        self.lost.is_empty()
    }
}

/// Every ok write (anything but `read`/`read_all`) with a `tx` on its invoke
/// or completion must appear in `final_state.applied_tx`.
pub fn check_acknowledged(history: &[HistoryEvent], final_state: &FinalState) -> LostAckReport {
    let mut report = LostAckReport::default();
    for call in completed_calls(history) {
        let is_read = matches!(call.invoke.f, OpKind::Read | OpKind::ReadAll);
        if is_read || call.completion.kind != EventType::Ok {
            continue;
        }
        let tx = call
            .invoke
            .value
            .tx
            .as_ref()
            .or(call.completion.value.tx.as_ref());
        let Some(tx) = tx else {
            report.acknowledged_without_tx += 1;
            continue;
        };
        report.acknowledged_checked += 1;
        if !final_state.applied_tx.contains(tx) {
            report.lost.push(LostAck {
                process: call.invoke.process,
                f: call.invoke.f,
                account: call.invoke.account.clone(),
                tx: tx.clone(),
                time_ns: call.completion.time_ns,
            });
        }
    }
    report
}
