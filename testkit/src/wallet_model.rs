//! The wallet of one account as a sequential object: a register with
//! arithmetic, named holds and tx-id deduplication. Histories are
//! partitioned by account.

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
    /// Another call on the same account carries `tx`, so the model must keep
    /// this call's result to answer it. `true` is always sound;
    /// [`WalletModel::partition`] sets the exact value, so that a tx seen
    /// once does not split states the memo would otherwise merge.
    pub tx_repeats: bool,
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

/// What the server stored the first time it ran a tx id on an account, and
/// answers to every later call with that id (which changes nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoredResult {
    /// Applied; the account's balance right after that first apply (for a
    /// transfer's target, the target's balance).
    Ok(Balance),
    /// Refused for lack of available funds.
    InsufficientFunds,
}

impl StoredResult {
    /// True when a later call with the same tx may have returned `output`.
    pub fn answers(&self, output: &WalletOutput) -> bool {
        match (output, self) {
            (WalletOutput::Unknown, _) => true,
            (WalletOutput::Ok(None), StoredResult::Ok(_)) => true,
            (WalletOutput::Ok(Some(reported)), StoredResult::Ok(stored)) => reported == stored,
            (WalletOutput::InsufficientFunds, StoredResult::InsufficientFunds) => true,
            _ => false,
        }
    }
}

/// One account: available and held minor units, open holds by id, and the
/// stored result of every tx id already run here that another call repeats.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct WalletState {
    pub available: u64,
    pub held: u64,
    pub holds: BTreeMap<String, u64>,
    /// Tx id → its stored result, for calls with `tx_repeats` only.
    pub tx_results: BTreeMap<String, StoredResult>,
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

    /// The balance a reply reports for this state.
    pub fn balance(&self) -> Balance {
        Balance::new(self.available, self.held)
    }

    /// True when `balance` reports exactly this state.
    pub fn matches(&self, balance: &Balance) -> bool {
        *balance == self.balance()
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
        let tx = call.tx.as_ref().filter(|_| call.tx_repeats);
        if let Some(stored) = tx.and_then(|tx| state.tx_results.get(tx)) {
            // The server answers a tx it already ran from its store.
            return stored.answers(output).then(|| state.clone());
        }
        let (mut next, stored) = match (output, state.apply(&call.action)) {
            (WalletOutput::Ok(Some(balance)), Ok(next)) if !next.matches(balance) => return None,
            (WalletOutput::Ok(_) | WalletOutput::Unknown, Ok(next)) => {
                let balance = next.balance();
                (next, StoredResult::Ok(balance))
            }
            (
                WalletOutput::InsufficientFunds | WalletOutput::Unknown,
                Err(Refusal::InsufficientFunds),
            ) => (state.clone(), StoredResult::InsufficientFunds),
            // Refused for another reason, an indeterminate call had no effect;
            // a repeat gets that refusal too, a `fail` that is not checked.
            (WalletOutput::Unknown, Err(_)) => return Some(state.clone()),
            _ => return None,
        };
        if let Some(tx) = tx {
            next.tx_results.insert(tx.clone(), stored);
        }
        Some(next)
    }

    /// Splits by account and marks which calls share their tx with another
    /// call on the same account.
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
        let mut partitions: Vec<_> = by_account.into_values().collect();
        for partition in &mut partitions {
            mark_repeated_tx(partition);
        }
        partitions
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

/// Sets `tx_repeats` on each call of one account's operations.
fn mark_repeated_tx(operations: &mut [Operation<WalletCall, WalletOutput>]) {
    let mut calls_per_tx: BTreeMap<String, usize> = BTreeMap::new();
    for tx in operations
        .iter()
        .filter_map(|operation| operation.input.tx.clone())
    {
        *calls_per_tx.entry(tx).or_default() += 1;
    }
    for operation in operations {
        let call = &mut operation.input;
        call.tx_repeats = call.tx.as_ref().is_some_and(|tx| calls_per_tx[tx] > 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(action: WalletAction, tx: &str) -> WalletCall {
        WalletCall {
            account: "1/EUR".to_string(),
            action,
            origin: OpKind::Debit,
            tx: Some(tx.to_string()),
            tx_repeats: true,
        }
    }

    fn funded(available: u64) -> WalletState {
        WalletState {
            available,
            ..WalletState::default()
        }
    }

    // Proves an indeterminate call refused for any reason has no effect and stores nothing.
    #[test]
    fn indeterminate_refused_call_leaves_state_unchanged() {
        let mut state = funded(u64::MAX - 1);
        state.available -= 40;
        state.held = 40;
        state.holds.insert("h1".to_string(), 40);
        let refused = [
            WalletAction::Capture {
                hold: "h9".to_string(),
                amount: None,
            },
            WalletAction::Release {
                hold: "h9".to_string(),
            },
            WalletAction::Hold {
                hold: "h1".to_string(),
                amount: 1,
            },
            WalletAction::Capture {
                hold: "h1".to_string(),
                amount: Some(41),
            },
            WalletAction::Credit(u64::MAX),
        ];
        for action in refused {
            assert!(state.apply(&action).is_err(), "{action:?}");
            let next = WalletModel.step(&state, &call(action.clone(), "x"), &WalletOutput::Unknown);
            assert_eq!(next.as_ref(), Some(&state), "{action:?}");
        }
    }

    // Proves a repeated tx changes nothing and must answer with the stored result.
    #[test]
    fn repeated_tx_answers_from_the_stored_result() {
        let model = WalletModel;
        let debit = call(WalletAction::Debit(30), "d1");
        let applied = WalletOutput::Ok(Some(Balance::new(70, 0)));
        let after = model
            .step(&funded(100), &debit, &applied)
            .expect("debit applies");
        assert_eq!(
            after.tx_results.get("d1"),
            Some(&StoredResult::Ok(Balance::new(70, 0)))
        );
        let credited = model
            .step(
                &after,
                &call(WalletAction::Credit(50), "c2"),
                &WalletOutput::Ok(None),
            )
            .expect("credit applies");
        let answers = [
            (applied, true),
            (WalletOutput::Ok(None), true),
            (WalletOutput::Unknown, true),
            (WalletOutput::Ok(Some(Balance::new(90, 0))), false),
            (WalletOutput::InsufficientFunds, false),
        ];
        for (output, legal) in answers {
            let next = model.step(&credited, &debit, &output);
            assert_eq!(next.as_ref(), legal.then_some(&credited), "{output:?}");
        }
        let refused = model
            .step(
                &credited,
                &call(WalletAction::Debit(500), "d2"),
                &WalletOutput::Unknown,
            )
            .expect("a refusal for funds may happen");
        assert_eq!(
            refused.tx_results.get("d2"),
            Some(&StoredResult::InsufficientFunds)
        );
    }

    // Proves a tx no other call on the account repeats is not stored, so the memo still merges
    // states that differ only in the order of such calls.
    #[test]
    fn unrepeated_tx_is_not_stored() {
        let operation = |account: &str, tx: &str| Operation {
            process: 1,
            input: WalletCall {
                account: account.to_string(),
                ..call(WalletAction::Credit(5), tx)
            },
            output: WalletOutput::Ok(None),
            call_time: 1,
            return_time: Some(2),
        };
        let history = vec![
            operation("1/EUR", "c1"),
            operation("1/EUR", "d1"),
            operation("1/EUR", "d1"),
            operation("2/EUR", "d1"),
        ];
        let repeats: Vec<Vec<bool>> = WalletModel
            .partition(history)
            .iter()
            .map(|part| part.iter().map(|op| op.input.tx_repeats).collect())
            .collect();
        assert_eq!(repeats, [vec![false, true, true], vec![false]]);
        let mut credit = call(WalletAction::Credit(5), "c1");
        credit.tx_repeats = false;
        let next = WalletModel
            .step(&funded(0), &credit, &WalletOutput::Ok(None))
            .expect("credit applies");
        assert_eq!(next, funded(5));
    }
}
