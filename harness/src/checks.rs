//! The five history checkers, run together over one history and the final
//! state: per-wallet linearizability, the bank invariant at every audit,
//! no acknowledged write lost, no tx applied twice, no negative balance.

use std::path::Path;
use std::time::{Duration, Instant};

use geowallet_testkit::{
    CheckConfig, EventType, FinalState, Verdict, WalletModel, check, check_acknowledged,
    check_bank, check_double_apply, check_no_negative_balance, read_history,
    wallet_operations_returning,
};

/// Findings listed in a failure message at most (the count says how many).
const LISTED_MAX: usize = 5;

/// What a history held, each checker's verdict, and what checking took.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// Completed calls, and of them ok, failed and indeterminate.
    pub calls: usize,
    pub ok: usize,
    pub failed: usize,
    pub indeterminate: usize,
    /// Search steps of the linearizability check, and its wall time.
    pub lin_steps: u64,
    pub lin_time: Duration,
    /// Audits (`read_all`) the bank check examined.
    pub audits: usize,
    /// Each checker by name: `Ok` with what it saw, or `Err` with why it
    /// failed.
    pub verdicts: Vec<(&'static str, Result<String, String>)>,
}

impl Checked {
    pub fn passed(&self) -> bool {
        self.verdicts.iter().all(|(_, v)| v.is_ok())
    }

    /// Every failure, one per line.
    pub fn failures(&self) -> String {
        self.verdicts
            .iter()
            .filter_map(|(name, v)| v.as_ref().err().map(|e| format!("{name}: {e}")))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Runs every checker over the history at `path` (every one runs even after
/// another failed, so the report names everything that went wrong). `Err`
/// only when the history cannot be read.
pub fn check_all(path: &Path, final_state: &FinalState) -> Result<Checked, String> {
    let history = read_history(path).map_err(|e| e.to_string())?;
    let operations = wallet_operations_returning(&history, &final_state.returned_transfers)
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let lin = check(&WalletModel, operations, &CheckConfig::default());
    let lin_time = started.elapsed();
    let mut verdicts = Vec::new();
    verdicts.push((
        "linearizable",
        if lin.verdict == Verdict::Linearizable {
            Ok(format!("{} search steps", lin.steps))
        } else {
            Err(format!("wallet histories: {}", lin.verdict))
        },
    ));
    let bank = check_bank(&history);
    verdicts.push((
        "bank",
        if bank.is_ok() {
            Ok(format!("{} audits balance", bank.reads_checked))
        } else {
            Err(format!("bank invariant broken: {:?}", bank.violations))
        },
    ));
    let acks = check_acknowledged(&history, final_state);
    verdicts.push((
        "no-lost-ack",
        if acks.is_ok() {
            Ok(format!(
                "{} applied tx ids found",
                final_state.applied_tx.len()
            ))
        } else {
            Err(format!(
                "{} acknowledged writes lost, first: {:?}",
                acks.lost.len(),
                &acks.lost[..acks.lost.len().min(LISTED_MAX)]
            ))
        },
    ));
    let double = check_double_apply(final_state);
    verdicts.push((
        "no-double-apply",
        if double.is_ok() {
            Ok(format!(
                "{} (tx, account) journal entries, each once ({} transfers between groups)",
                final_state.journal_tx_counts.len(),
                final_state.transfers_between_groups
            ))
        } else {
            Err(format!(
                "{} transactions applied twice, first: {:?}",
                double.duplicates.len(),
                &double.duplicates[..double.duplicates.len().min(LISTED_MAX)]
            ))
        },
    ));
    let negative = check_no_negative_balance(&history, final_state);
    verdicts.push((
        "no-negative",
        if negative.is_ok() {
            Ok(format!("{} final balances", final_state.balances.len()))
        } else {
            Err(format!("negative balances: {:?}", negative.violations))
        },
    ));
    let completions: Vec<_> = history
        .iter()
        .filter(|e| e.kind != EventType::Invoke)
        .collect();
    let count = |k| completions.iter().filter(|e| e.kind == k).count();
    Ok(Checked {
        calls: completions.len(),
        ok: count(EventType::Ok),
        failed: count(EventType::Fail),
        indeterminate: count(EventType::Info),
        lin_steps: lin.steps,
        lin_time,
        audits: bank.reads_checked,
        verdicts,
    })
}
