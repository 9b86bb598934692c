//! One operation planned by a [`crate::Workload`].

use crate::expect::Expect;
use crate::history::{OpKind, OpValue};

/// An operation for a client to issue, with what it may legally return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedOp {
    /// Idempotency id; a deliberate duplicate repeats an earlier one.
    pub tx_id: String,
    pub f: OpKind,
    /// (player, currency). For `read_all` the first of `accounts`, unused.
    pub account: (u64, String),
    /// Target of a transfer.
    pub to: Option<(u64, String)>,
    /// Minor units; 0 for open, release and reads (and for `zero_amount` refusals).
    pub amount: u64,
    /// Hold id of hold, capture and release.
    pub hold_id: Option<String>,
    pub expect: Expect,
    /// For `read_all`: every account of the current generation opened by
    /// planned ops so far, ordered by player then currency position in the
    /// config; empty otherwise.
    pub accounts: Vec<(u64, String)>,
}

impl PlannedOp {
    /// A call on `account` with no amount, target or hold, expected to maybe succeed.
    pub fn new(tx_id: String, f: OpKind, account: (u64, String)) -> Self {
        PlannedOp {
            tx_id,
            f,
            account,
            to: None,
            amount: 0,
            hold_id: None,
            expect: Expect::MaybeOk,
            accounts: Vec::new(),
        }
    }

    /// True for calls that change state and carry a tx id on the wire.
    pub fn is_write(&self) -> bool {
        !matches!(self.f, OpKind::Read | OpKind::ReadAll)
    }

    /// `"<player>/<currency>"` as in the history; `None` for `read_all`.
    pub fn account_id(&self) -> Option<String> {
        (self.f != OpKind::ReadAll).then(|| account_id(&self.account))
    }

    /// The invoke `value` for [`crate::Recorder::invoke`].
    pub fn invoke_value(&self) -> OpValue {
        let carries_amount = matches!(
            self.f,
            OpKind::Credit | OpKind::Debit | OpKind::Transfer | OpKind::Hold | OpKind::Capture
        );
        OpValue {
            amount: carries_amount.then_some(self.amount),
            tx: self.is_write().then(|| self.tx_id.clone()),
            to: self.to.as_ref().map(account_id),
            hold: self.hold_id.clone(),
            ..OpValue::default()
        }
    }
}

fn account_id((player, currency): &(u64, String)) -> String {
    format!("{player}/{currency}")
}
