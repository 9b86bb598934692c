//! The geowallet history format (see `HISTORY_FORMAT.md`): one JSON event per line.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::balance::Balance;
use crate::error::TestkitError;

/// Which half of a call an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// The wallet operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Open,
    Credit,
    Debit,
    Transfer,
    Hold,
    Capture,
    Release,
    Read,
    ReadAll,
}

impl OpKind {
    /// The name used on the wire and in EDN.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Open => "open",
            OpKind::Credit => "credit",
            OpKind::Debit => "debit",
            OpKind::Transfer => "transfer",
            OpKind::Hold => "hold",
            OpKind::Capture => "capture",
            OpKind::Release => "release",
            OpKind::Read => "read",
            OpKind::ReadAll => "read_all",
        }
    }
}

/// Arguments (on invoke) and results (on completion); absent fields are omitted.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpValue {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx: Option<String>,
    /// Target account of a transfer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
    /// On ok: the resulting balance of `account` (a read's result).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance: Option<Balance>,
    /// On ok transfer: the resulting balance of `to`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_balance: Option<Balance>,
    /// On fail: why, e.g. `insufficient_funds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// On ok read_all: every account's balance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balances: Option<BTreeMap<String, Balance>>,
    /// On ok read_all: per-currency totals as the system reports them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totals: Option<BTreeMap<String, i128>>,
    /// On ok read_all: the system accounts' net position per currency;
    /// negative of what players hold in total.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<BTreeMap<String, i128>>,
    /// On ok read_all: per currency, available + held summed over accounts
    /// the read covered but does not list (players of generations the
    /// workload retired), so the bank check still counts every account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired: Option<BTreeMap<String, i128>>,
    /// On invoke read_all: per-currency total the workload expects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_totals: Option<BTreeMap<String, u64>>,
}

/// One line of a geowallet history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryEvent {
    pub process: u64,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub f: OpKind,
    /// `"<account number>/<currency>"`; absent for `read_all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default)]
    pub value: OpValue,
    pub time_ns: u64,
}

/// The currency part of an account id `"<number>/<currency>"`.
pub fn account_currency(account: &str) -> &str {
    account
        .rsplit_once('/')
        .map_or("", |(_, currency)| currency)
}

/// An invocation and its completion (`ok`, `fail` or `info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedCall<'a> {
    pub invoke: &'a HistoryEvent,
    pub completion: &'a HistoryEvent,
}

/// Pairs each completion with its process's open invocation; unpaired events
/// are ignored here (the linearizability check reports malformed histories).
pub fn completed_calls(events: &[HistoryEvent]) -> Vec<CompletedCall<'_>> {
    let mut open = std::collections::HashMap::new();
    let mut calls = Vec::new();
    for event in events {
        if event.kind == EventType::Invoke {
            open.insert(event.process, event);
        } else if let Some(invoke) = open.remove(&event.process) {
            calls.push(CompletedCall {
                invoke,
                completion: event,
            });
        }
    }
    calls
}

/// Parses a history from text, one JSON object per non-blank line.
pub fn parse_history(text: &str) -> Result<Vec<HistoryEvent>, TestkitError> {
    let mut events = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let event = serde_json::from_str(line)
            .map_err(|error| TestkitError::parse("geowallet", index + 1, error.to_string()))?;
        events.push(event);
    }
    Ok(events)
}

/// Reads a history file written by [`crate::Recorder`].
pub fn read_history(path: &Path) -> Result<Vec<HistoryEvent>, TestkitError> {
    let text = std::fs::read_to_string(path).map_err(|source| TestkitError::Io {
        action: "read history",
        path: path.to_path_buf(),
        source,
    })?;
    parse_history(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves a line round-trips and negative or wrapped balances still parse.
    #[test]
    fn parses_observed_balances_of_any_sign() {
        let line = r#"{"process":3,"type":"ok","f":"debit","account":"42/EUR","value":{"amount":5,"tx":"t1","balance":{"available":-1,"held":18446744073709551615}},"time_ns":9}"#;
        let events = parse_history(line).unwrap();
        let balance = events[0].value.balance.unwrap();
        assert_eq!(balance.available, -1);
        assert_eq!(balance.held, i128::from(u64::MAX));
        let again = serde_json::to_string(&events[0]).unwrap();
        assert_eq!(parse_history(&again).unwrap(), events);
        assert_eq!(account_currency("42/EUR"), "EUR");
    }
}
