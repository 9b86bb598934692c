//! The verdict after a run: the books balance (every audit call), every
//! bench wallet exists, and the bench wallets' total moved by exactly what
//! the acknowledged operations say (per currency), once operations whose
//! outcome was lost have been sent again with the same `Tx` to learn it.

use geowallet_client::Client;

use crate::auditor::AuditReport;
use crate::op::{Op, Outcome};
use crate::wallet_set::{CURRENCIES, WalletSet};

/// Whether the bench wallets' total matches what the operations did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SumCheck {
    Ok,
    /// Some outcomes stayed unknown, so the expected total is unknown.
    Unknown {
        unresolved: u64,
    },
    Failed,
}

impl SumCheck {
    pub fn name(&self) -> &'static str {
        match self {
            SumCheck::Ok => "ok",
            SumCheck::Unknown { .. } => "unknown",
            SumCheck::Failed => "FAILED",
        }
    }
}

/// Money moved by lost operations once learnt, and how many stayed unknown.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    pub deltas: [i128; CURRENCIES.len()],
    pub resolved: u64,
    pub unresolved: u64,
}

/// Sends every lost operation again with its own `Tx`: the ledger answers
/// the first outcome if it applied, or applies it now; either way it has
/// applied exactly once (or been refused) when this returns `Ok`.
pub async fn resolve_lost(client: &Client, wallets: &WalletSet, lost: &[Op]) -> Resolution {
    let mut r = Resolution::default();
    for op in lost {
        let reply = op.send(client, wallets).await;
        match op.outcome(&reply) {
            Outcome::Applied { currency, delta } => {
                r.deltas[currency] += delta;
                r.resolved += 1;
            }
            Outcome::Insufficient | Outcome::Refused { .. } => r.resolved += 1,
            Outcome::Unknown { .. } => r.unresolved += 1,
        }
    }
    r
}

#[derive(Debug, Clone)]
pub struct Invariant {
    pub books_ok: bool,
    pub sum_check: SumCheck,
    /// One human line per finding, printed under the tables.
    pub lines: Vec<String>,
}

impl Invariant {
    /// `deltas`: money moved by acknowledged operations (lost ones resolved
    /// included); `unresolved`: outcomes still unknown (overflow included).
    pub fn judge(
        before: &AuditReport,
        after: &AuditReport,
        deltas: [i128; CURRENCIES.len()],
        unresolved: u64,
    ) -> Invariant {
        let mut lines: Vec<String> = after.violations.clone();
        if after.wallets_missing > 0 {
            lines.push(format!("{} bench wallets missing", after.wallets_missing));
        }
        let mut sums_match = true;
        for (i, currency) in CURRENCIES.iter().enumerate() {
            let expected = before.wallet_sums[i] + deltas[i];
            let found = after.wallet_sums[i];
            let totals = after.totals.get(*currency);
            sums_match &= expected == found;
            lines.push(format!(
                "{currency}: players {} + system {} = {}; \
                 bench wallets before {} + moved {} = expected {expected}, found {found}",
                totals.map_or(0, |t| t.players),
                totals.map_or(0, |t| t.system),
                totals.map_or(0, |t| t.players + t.system),
                before.wallet_sums[i],
                deltas[i],
            ));
            if totals.is_none() {
                lines.push(format!("{currency}: no totals in the audit"));
            }
        }
        let books_ok = after.books_ok()
            && before.books_ok()
            && CURRENCIES.iter().all(|c| after.totals.contains_key(*c));
        let sum_check = match (unresolved, sums_match) {
            (0, true) => SumCheck::Ok,
            (0, false) => SumCheck::Failed,
            (n, _) => SumCheck::Unknown { unresolved: n },
        };
        Invariant {
            books_ok,
            sum_check,
            lines,
        }
    }

    pub fn ok(&self) -> bool {
        self.books_ok && self.sum_check != SumCheck::Failed
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use geowallet_client::CurrencyTotals;

    use super::*;

    fn audit(sums: [i128; 2], balanced: bool) -> AuditReport {
        let mut totals = BTreeMap::new();
        for (i, c) in CURRENCIES.iter().enumerate() {
            let system = if balanced { -sums[i] } else { 1 - sums[i] };
            totals.insert(
                c.to_string(),
                CurrencyTotals {
                    players: sums[i],
                    system,
                    transit: 0,
                },
            );
        }
        let mut r = AuditReport {
            wallet_sums: sums,
            totals,
            ..AuditReport::default()
        };
        if !balanced {
            r.violations.push("unbalanced".into());
        }
        r
    }

    // Proves the verdict tells apart: all good, a lost debit, unbalanced books, unknown outcomes.
    #[test]
    fn judges_books_and_sums() {
        let before = audit([1_000, 500], true);
        let ok = Invariant::judge(&before, &audit([990, 507], true), [-10, 7], 0);
        assert!(ok.ok() && ok.sum_check == SumCheck::Ok, "{ok:?}");
        let lost = Invariant::judge(&before, &audit([995, 507], true), [-10, 7], 0);
        assert_eq!(lost.sum_check, SumCheck::Failed);
        assert!(!lost.ok());
        let unknown = Invariant::judge(&before, &audit([995, 507], true), [-10, 7], 3);
        assert_eq!(unknown.sum_check, SumCheck::Unknown { unresolved: 3 });
        assert!(unknown.ok(), "unknown outcomes are reported, not a failure");
        let unbalanced = Invariant::judge(&before, &audit([990, 507], false), [-10, 7], 0);
        assert!(!unbalanced.books_ok && !unbalanced.ok());
    }
}
