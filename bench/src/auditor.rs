//! Reads the books through the client's `audit` (linearizable, one applied
//! index per call, at most [`AUDIT_ACCOUNTS_MAX`] accounts per call) and
//! checks them: every currency's `players + system == 0`, no player total
//! negative, every bench wallet present. Balances are unsigned on the wire,
//! so a negative balance would show as a negative players total or a
//! failed audit; the ledger itself refuses any move below zero.

use std::collections::BTreeMap;

use anyhow::Context;
use geowallet_client::{Client, CurrencyTotals};

use crate::wallet_set::{CURRENCIES, WalletSet};

/// Accounts per audit call: the server's limit (`ACCOUNTS_PER_AUDIT_MAX`
/// in node/src/wallet_service.rs).
pub const AUDIT_ACCOUNTS_MAX: u64 = 10_000;

/// What one pass over the bench's wallets found.
#[derive(Debug, Clone, Default)]
pub struct AuditReport {
    /// available + held over the bench's wallets, per currency of [`CURRENCIES`].
    pub wallet_sums: [i128; CURRENCIES.len()],
    /// Every currency's totals as of the last call.
    pub totals: BTreeMap<String, CurrencyTotals>,
    pub wallets_missing: u64,
    /// Descriptions of every books violation seen (empty when they balance).
    pub violations: Vec<String>,
    pub calls: u64,
}

impl AuditReport {
    pub fn books_ok(&self) -> bool {
        self.violations.is_empty() && self.wallets_missing == 0
    }
}

/// Audits every wallet of `wallets`, in chunks, checking the books at every call.
pub async fn audit_all(client: &Client, wallets: &WalletSet) -> anyhow::Result<AuditReport> {
    let mut report = AuditReport::default();
    let mut first = 0;
    while first < wallets.count() {
        let end = (first + AUDIT_ACCOUNTS_MAX).min(wallets.count());
        let accounts: Vec<_> = (first..end).map(|w| wallets.account(w)).collect();
        let audit = client
            .audit(&accounts)
            .await
            .with_context(|| format!("audit wallets {first}..{end}"))?;
        report.calls += 1;
        for (account, balance) in &audit.balances {
            let wallet = wallets
                .wallet_of(account)
                .with_context(|| format!("audit answered for {account}, not asked"))?;
            match balance {
                Some(b) => {
                    let sum = &mut report.wallet_sums[WalletSet::currency_index(wallet)];
                    *sum += i128::from(b.available) + i128::from(b.held);
                }
                None => report.wallets_missing += 1,
            }
        }
        check_totals(&audit.totals, audit.read_index, &mut report.violations);
        report.totals = audit.totals;
        first = end;
    }
    Ok(report)
}

fn check_totals(
    totals: &BTreeMap<String, CurrencyTotals>,
    read_index: u64,
    violations: &mut Vec<String>,
) {
    for (currency, t) in totals {
        if t.players + t.system != 0 {
            violations.push(format!(
                "{currency} at index {read_index}: players {} + system {} != 0",
                t.players, t.system
            ));
        }
        if t.players < 0 {
            violations.push(format!(
                "{currency} at index {read_index}: players total {} is negative",
                t.players
            ));
        }
    }
}
