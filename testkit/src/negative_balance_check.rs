//! No balance is ever negative (or wrapped around).

use crate::balance::Balance;
use crate::final_state::FinalState;
use crate::history::{EventType, HistoryEvent, completed_calls};

/// Where an implausible balance was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BalanceSite {
    /// Reported by an ok event of `process` at `time_ns`.
    Event { process: u64, time_ns: u64 },
    /// In the final state dump.
    Final,
}

/// A balance with a negative part or a part beyond `i64::MAX` (a wrapped `u64`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegativeBalance {
    pub site: BalanceSite,
    pub account: String,
    pub balance: Balance,
}

/// Result of [`check_no_negative_balance`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NegativeBalanceReport {
    pub balances_checked: usize,
    pub violations: Vec<NegativeBalance>,
}

impl NegativeBalanceReport {
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Checks every balance reported by an ok event (`balance`, `to_balance`,
/// `balances`) and every final balance. Whether the model itself could go
/// below zero is the linearizability check's business (it refuses to).
pub fn check_no_negative_balance(
    history: &[HistoryEvent],
    final_state: &FinalState,
) -> NegativeBalanceReport {
    let mut report = NegativeBalanceReport::default();
    let mut visit = |site: BalanceSite, account: &str, balance: &Balance| {
        report.balances_checked += 1;
        if !balance.is_plausible() {
            report.violations.push(NegativeBalance {
                site,
                account: account.to_string(),
                balance: *balance,
            });
        }
    };
    for call in completed_calls(history) {
        let done = call.completion;
        if done.kind != EventType::Ok {
            continue;
        }
        let site = || BalanceSite::Event {
            process: done.process,
            time_ns: done.time_ns,
        };
        if let (Some(balance), Some(account)) = (&done.value.balance, &call.invoke.account) {
            visit(site(), account, balance);
        }
        if let (Some(balance), Some(account)) = (&done.value.to_balance, &call.invoke.value.to) {
            visit(site(), account, balance);
        }
        for (account, balance) in done.value.balances.iter().flatten() {
            visit(site(), account, balance);
        }
    }
    for (account, balance) in &final_state.balances {
        visit(BalanceSite::Final, account, balance);
    }
    report
}
