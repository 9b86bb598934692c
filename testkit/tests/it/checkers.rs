use geowallet_testkit::{
    Balance, BalanceSite, FinalState, HistoryEvent, TotalSource, check_acknowledged, check_bank,
    check_double_apply, check_no_negative_balance, parse_history,
};

fn history(lines: &[&str]) -> Vec<HistoryEvent> {
    parse_history(&lines.join("\n")).expect("valid history")
}

fn read_all(eur_a: i64, eur_b: i64, reported: i64) -> Vec<HistoryEvent> {
    let done = format!(
        r#"{{"process":1,"type":"ok","f":"read_all","value":{{"balances":{{"1/EUR":{{"available":{eur_a},"held":5}},"2/EUR":{{"available":{eur_b},"held":0}},"3/USD":{{"available":7,"held":0}}}},"totals":{{"EUR":{reported}}}}},"time_ns":2}}"#
    );
    history(&[
        r#"{"process":1,"type":"invoke","f":"read_all","value":{"expected_totals":{"EUR":100}},"time_ns":1}"#,
        &done,
    ])
}

// Proves the bank check passes a conserved snapshot and catches created or lost money.
#[test]
fn bank_check_catches_unbalanced_totals() {
    let report = check_bank(&read_all(45, 50, 100));
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.reads_checked, 1);
    let report = check_bank(&read_all(45, 60, 100));
    assert_eq!(report.violations.len(), 1);
    assert_eq!(report.violations[0].observed, 110);
    assert_eq!(report.violations[0].source, TotalSource::Balances);
    let report = check_bank(&read_all(45, 50, 90));
    assert_eq!(report.violations[0].source, TotalSource::Reported);
}

fn read_all_with_system(system: Option<i64>) -> Vec<HistoryEvent> {
    let system = system
        .map(|net| format!(r#","system":{{"EUR":{net}}}"#))
        .unwrap_or_default();
    let done = format!(
        r#"{{"process":1,"type":"ok","f":"read_all","value":{{"balances":{{"1/EUR":{{"available":400,"held":100}},"2/EUR":{{"available":200,"held":0}}}}{system}}},"time_ns":2}}"#
    );
    history(&[
        r#"{"process":1,"type":"invoke","f":"read_all","value":{"expected_totals":{"EUR":0}},"time_ns":1}"#,
        &done,
    ])
}

// Proves the bank check adds the system accounts' net position to the players' balances.
#[test]
fn bank_check_counts_system_position() {
    let report = check_bank(&read_all_with_system(Some(-700)));
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.reads_checked, 1);
    let report = check_bank(&read_all_with_system(Some(-650)));
    assert_eq!(report.violations.len(), 1, "{report:?}");
    assert_eq!(report.violations[0].observed, 50);
    assert_eq!(report.violations[0].source, TotalSource::Balances);
    // Without `system` the players' sum alone is compared, as before.
    let report = check_bank(&read_all_with_system(None));
    assert_eq!(report.violations[0].observed, 700);
    let line = serde_json::to_string(&read_all_with_system(None)[1]).expect("serialize");
    assert!(!line.contains("system"), "{line}");
}

// Proves money of accounts a read sums as retired counts like listed money, and must be there.
#[test]
fn bank_check_counts_retired_accounts() {
    let with_retired = |retired: i64| {
        let mut events = read_all_with_system(Some(-1_000));
        let mut sums = std::collections::BTreeMap::new();
        sums.insert("EUR".to_string(), i128::from(retired));
        events[1].value.retired = Some(sums);
        events
    };
    let report = check_bank(&with_retired(300));
    assert!(report.is_ok(), "{report:?}");
    let report = check_bank(&with_retired(250));
    assert_eq!(report.violations.len(), 1, "{report:?}");
    assert_eq!(report.violations[0].observed, -50);
    // Without the retired sum the listed accounts alone fall short.
    let report = check_bank(&read_all_with_system(Some(-1_000)));
    assert_eq!(report.violations[0].observed, -300);
    let line = serde_json::to_string(&with_retired(300)[1]).expect("serialize");
    assert!(line.contains(r#""retired":{"EUR":300}"#), "{line}");
}

fn writes() -> Vec<HistoryEvent> {
    history(&[
        r#"{"process":1,"type":"invoke","f":"credit","account":"1/EUR","value":{"amount":5,"tx":"a"},"time_ns":1}"#,
        r#"{"process":1,"type":"ok","f":"credit","account":"1/EUR","value":{"balance":{"available":5,"held":0}},"time_ns":2}"#,
        r#"{"process":2,"type":"invoke","f":"credit","account":"1/EUR","value":{"amount":5,"tx":"b"},"time_ns":3}"#,
        r#"{"process":2,"type":"info","f":"credit","account":"1/EUR","value":{},"time_ns":4}"#,
    ])
}

fn final_state(applied: &[&str], counts: &[(&str, u32)], available: i128) -> FinalState {
    FinalState {
        applied_tx: applied.iter().map(|tx| tx.to_string()).collect(),
        balances: [("1/EUR".to_string(), Balance { available, held: 0 })].into(),
        journal_tx_counts: counts.iter().map(|(tx, n)| (tx.to_string(), *n)).collect(),
        transfers_between_groups: 0,
        returned_transfers: Default::default(),
    }
}

// Proves an acknowledged tx missing from the journal is reported; an :info one is not required.
#[test]
fn lost_ack_check_catches_missing_acknowledged_tx() {
    let report = check_acknowledged(&writes(), &final_state(&["a"], &[], 5));
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.acknowledged_checked, 1);
    let report = check_acknowledged(&writes(), &final_state(&["b"], &[], 5));
    assert_eq!(report.lost.len(), 1);
    assert_eq!(report.lost[0].tx, "a");
}

// Proves a tx id journalled twice is reported.
#[test]
fn double_apply_check_catches_repeated_tx() {
    let report = check_double_apply(&final_state(&["a", "b"], &[("a", 1), ("b", 1)], 10));
    assert!(report.is_ok());
    let report = check_double_apply(&final_state(&["a", "b"], &[("a", 2), ("b", 1)], 15));
    assert_eq!(report.duplicates.len(), 1);
    assert_eq!(
        (report.duplicates[0].tx.as_str(), report.duplicates[0].count),
        ("a", 2)
    );
}

// Proves negative or wrapped balances are caught in ok events and in the final state.
#[test]
fn negative_balance_check_catches_negative_and_wrapped_values() {
    let report = check_no_negative_balance(&writes(), &final_state(&["a"], &[], 5));
    assert!(report.is_ok());
    assert_eq!(report.balances_checked, 2);
    let report = check_no_negative_balance(&writes(), &final_state(&["a"], &[], -3));
    assert_eq!(report.violations.len(), 1);
    assert_eq!(report.violations[0].site, BalanceSite::Final);
    let wrapped = history(&[
        r#"{"process":1,"type":"invoke","f":"debit","account":"1/EUR","value":{"amount":6,"tx":"d"},"time_ns":1}"#,
        r#"{"process":1,"type":"ok","f":"debit","account":"1/EUR","value":{"balance":{"available":18446744073709551615,"held":0}},"time_ns":2}"#,
    ]);
    let report = check_no_negative_balance(&wrapped, &FinalState::default());
    assert_eq!(report.violations.len(), 1);
    assert!(matches!(
        report.violations[0].site,
        BalanceSite::Event { process: 1, .. }
    ));
}
