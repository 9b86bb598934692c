//! The wallet of one account as a sequential object: a register with
//! arithmetic and named holds. Histories are partitioned by account.

use std::collections::BTreeMap;

use crate::balance::Balance;
use crate::history::OpKind;
use crate::model::Model;
use crate::operation::Operation;

/// What a call does to its account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WalletAction {
    /// Accounts exist implicitly at zero; open only observes the balance.
    Open,
    Credit(u64),
    Debit(u64),
    Hold {
        hold: String,
        amount: u64,
    },
    /// Moves `amount` (all that remains if `None`) out of the hold and the account.
    Capture {
        hold: String,
        amount: Option<u64>,
    },
    Release {
        hold: String,
    },
    Read,
}

/// A call projected onto one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WalletCall {
    pub account: String,
    pub action: WalletAction,
    /// The history operation it came from (a transfer becomes a debit and a credit).
    pub origin: OpKind,
    pub tx: Option<String>,
}

/// What the call returned, as far as this account is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WalletOutput {
    /// Took effect; the reported resulting balance, if any, must match.
    Ok(Option<Balance>),
    /// Refused for lack of available funds: an observation that available < amount.
    InsufficientFunds,
    /// Indeterminate: may have taken effect (and then succeeded or was refused).
    Unknown,
}

/// Why the model refuses an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    InsufficientFunds,
    UnknownHold,
    DuplicateHold,
    HoldExceeded,
    Overflow,
}

/// One account: available and held minor units, and open holds by id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct WalletState {
    pub available: u64,
    pub held: u64,
    pub holds: BTreeMap<String, u64>,
}

impl WalletState {
    /// The state after `action`, or why it is refused.
    pub fn apply(&self, action: &WalletAction) -> Result<WalletState, Refusal> {
        let mut next = self.clone();
        match action {
            WalletAction::Open | WalletAction::Read => {}
            WalletAction::Credit(amount) => {
                next.available = next
                    .available
                    .checked_add(*amount)
                    .ok_or(Refusal::Overflow)?;
            }
            WalletAction::Debit(amount) => {
                next.available = next
                    .available
                    .checked_sub(*amount)
                    .ok_or(Refusal::InsufficientFunds)?;
            }
            WalletAction::Hold { hold, amount } => {
                if next.holds.contains_key(hold) {
                    return Err(Refusal::DuplicateHold);
                }
                next.available = next
                    .available
                    .checked_sub(*amount)
                    .ok_or(Refusal::InsufficientFunds)?;
                next.held = next.held.checked_add(*amount).ok_or(Refusal::Overflow)?;
                next.holds.insert(hold.clone(), *amount);
            }
            WalletAction::Capture { hold, amount } => {
                let remaining = next.holds.get_mut(hold).ok_or(Refusal::UnknownHold)?;
                let captured = amount.unwrap_or(*remaining);
                *remaining = remaining
                    .checked_sub(captured)
                    .ok_or(Refusal::HoldExceeded)?;
                if *remaining == 0 {
                    next.holds.remove(hold);
                }
                next.held = next
                    .held
                    .checked_sub(captured)
                    .ok_or(Refusal::HoldExceeded)?;
            }
            WalletAction::Release { hold } => {
                let remaining = next.holds.remove(hold).ok_or(Refusal::UnknownHold)?;
                next.held = next
                    .held
                    .checked_sub(remaining)
                    .ok_or(Refusal::HoldExceeded)?;
                next.available = next
                    .available
                    .checked_add(remaining)
                    .ok_or(Refusal::Overflow)?;
            }
        }
        assert_eq!(
            next.holds.values().sum::<u64>(),
            next.held,
            "held must equal open holds"
        );
        Ok(next)
    }

    /// True when `balance` reports exactly this state.
    pub fn matches(&self, balance: &Balance) -> bool {
        *balance == Balance::new(self.available, self.held)
    }
}

/// The per-account wallet model.
#[derive(Debug, Clone, Copy, Default)]
pub struct WalletModel;

impl Model for WalletModel {
    type State = WalletState;
    type Input = WalletCall;
    type Output = WalletOutput;

    fn init(&self) -> WalletState {
        WalletState::default()
    }

    fn step(
        &self,
        state: &WalletState,
        call: &WalletCall,
        output: &WalletOutput,
    ) -> Option<WalletState> {
        let next = state.apply(&call.action);
        match (output, next) {
            (WalletOutput::Ok(None), Ok(next)) => Some(next),
            (WalletOutput::Ok(Some(balance)), Ok(next)) => next.matches(balance).then_some(next),
            (
                WalletOutput::InsufficientFunds | WalletOutput::Unknown,
                Err(Refusal::InsufficientFunds),
            ) => Some(state.clone()),
            (WalletOutput::Unknown, Ok(next)) => Some(next),
            _ => None,
        }
    }

    fn partition(
        &self,
        history: Vec<Operation<WalletCall, WalletOutput>>,
    ) -> Vec<Vec<Operation<WalletCall, WalletOutput>>> {
        let mut by_account: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for operation in history {
            by_account
                .entry(operation.input.account.clone())
                .or_default()
                .push(operation);
        }
        by_account.into_values().collect()
    }

    fn describe(&self, operation: &Operation<WalletCall, WalletOutput>) -> String {
        let call = &operation.input;
        let tx = call
            .tx
            .as_deref()
            .map(|tx| format!(" tx {tx}"))
            .unwrap_or_default();
        let result = match operation.output {
            WalletOutput::Ok(Some(balance)) => {
                format!("ok available {} held {}", balance.available, balance.held)
            }
            WalletOutput::Ok(None) => "ok".to_string(),
            WalletOutput::InsufficientFunds => "fail insufficient_funds".to_string(),
            WalletOutput::Unknown => "info".to_string(),
        };
        format!(
            "{} on {} as {:?}{tx} -> {result}",
            call.origin.name(),
            call.account,
            call.action
        )
    }
}
