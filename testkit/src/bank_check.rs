//! The bank invariant: money is conserved per currency, counting the
//! system accounts' net position when a read reports it.

use std::collections::BTreeMap;

use crate::history::{EventType, HistoryEvent, OpKind, OpValue, account_currency, completed_calls};

/// Where an observed total came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotalSource {
    /// Sum of available + held over the accounts the read returned, plus
    /// the system accounts' reported net position (`system`), if any.
    Balances,
    /// The total the system itself reported in `totals`.
    Reported,
}

/// A `read_all` whose total for a currency differs from the expected one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankViolation {
    pub process: u64,
    pub time_ns: u64,
    pub currency: String,
    pub expected: i128,
    pub observed: i128,
    pub source: TotalSource,
}

/// Result of [`check_bank`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BankReport {
    pub reads_checked: usize,
    pub violations: Vec<BankViolation>,
}

impl BankReport {
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// For each ok `read_all` whose invoke carries `expected_totals`: for each
/// currency listed there, the sum of available + held over the returned
/// accounts of that currency plus the `system` entry (0 if absent), and the
/// reported `totals` entry if present, must equal the expected total.
/// Currencies not listed are not checked.
pub fn check_bank(history: &[HistoryEvent]) -> BankReport {
    let mut report = BankReport::default();
    for call in completed_calls(history) {
        if call.invoke.f != OpKind::ReadAll || call.completion.kind != EventType::Ok {
            continue;
        }
        let Some(expected_totals) = &call.invoke.value.expected_totals else {
            continue;
        };
        report.reads_checked += 1;
        let done = call.completion;
        let mut sums: BTreeMap<&str, i128> = BTreeMap::new();
        for (account, balance) in done.value.balances.iter().flatten() {
            *sums.entry(account_currency(account)).or_default() += balance.total();
        }
        for (currency, expected) in expected_totals {
            let expected = i128::from(*expected);
            let summed = balances_total(&done.value, &sums, currency);
            let reported = done
                .value
                .totals
                .as_ref()
                .and_then(|totals| totals.get(currency));
            let observations = [
                (Some(summed), TotalSource::Balances),
                (reported.copied(), TotalSource::Reported),
            ];
            for (observed, source) in observations {
                match observed {
                    Some(observed) if observed != expected => {
                        report.violations.push(BankViolation {
                            process: done.process,
                            time_ns: done.time_ns,
                            currency: currency.clone(),
                            expected,
                            observed,
                            source,
                        })
                    }
                    _ => {}
                }
            }
        }
    }
    report
}

/// The players' balances of `currency` summed in `sums`, plus the retired
/// accounts' sum and the system accounts' net position in that currency
/// (each 0 when not reported).
fn balances_total(value: &OpValue, sums: &BTreeMap<&str, i128>, currency: &str) -> i128 {
    let players = sums.get(currency).copied().unwrap_or(0);
    let entry = |map: &Option<BTreeMap<String, i128>>| {
        map.as_ref()
            .and_then(|map| map.get(currency))
            .copied()
            .unwrap_or(0)
    };
    // Saturating: an absurd observation must be reported, not panic.
    players
        .saturating_add(entry(&value.retired))
        .saturating_add(entry(&value.system))
}
