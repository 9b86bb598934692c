use geowallet_testkit::{
    CheckConfig, HistoryEvent, Verdict, WalletModel, check, parse_history, wallet_operations,
};
use serde_json::{Value, json};

/// One event on account `1/EUR`.
fn event(process: u64, kind: &str, f: &str, value: Value, time_ns: u64) -> HistoryEvent {
    let line = json!({
        "process": process, "type": kind, "f": f, "account": "1/EUR",
        "value": value, "time_ns": time_ns,
    });
    serde_json::from_value(line).expect("valid event")
}

fn bal(available: u64, held: u64) -> Value {
    json!({ "available": available, "held": held })
}

fn verdict(history: &[HistoryEvent]) -> Verdict {
    let operations = wallet_operations(history).expect("well-formed history");
    check(&WalletModel, operations, &CheckConfig::default()).verdict
}

/// credit 100 by process 9 over [1, 2], reporting balance 100.
fn funded() -> Vec<HistoryEvent> {
    vec![
        event(9, "invoke", "credit", json!({"amount": 100, "tx": "c1"}), 1),
        event(9, "ok", "credit", json!({"balance": bal(100, 0)}), 2),
    ]
}

fn read(process: u64, available: u64, from: u64, to: u64) -> [HistoryEvent; 2] {
    [
        event(process, "invoke", "read", json!({}), from),
        event(
            process,
            "ok",
            "read",
            json!({"balance": bal(available, 0)}),
            to,
        ),
    ]
}

// Proves a sequential credit/debit/read history with matching balances is linearizable.
#[test]
fn sequential_history_is_linearizable() {
    let mut history = funded();
    history.push(event(
        1,
        "invoke",
        "debit",
        json!({"amount": 30, "tx": "d1"}),
        3,
    ));
    history.push(event(1, "ok", "debit", json!({"balance": bal(70, 0)}), 4));
    history.extend(read(2, 70, 5, 6));
    assert_eq!(verdict(&history), Verdict::Linearizable);
}

// Proves a read concurrent with a credit may see either side of it.
#[test]
fn concurrent_read_may_see_either_state() {
    for seen in [0, 100] {
        let mut history = vec![event(
            9,
            "invoke",
            "credit",
            json!({"amount": 100, "tx": "c1"}),
            1,
        )];
        history.extend(read(2, seen, 2, 3));
        history.push(event(9, "ok", "credit", json!({"balance": bal(100, 0)}), 4));
        assert_eq!(verdict(&history), Verdict::Linearizable, "read {seen}");
    }
}

// Proves a read that misses a credit acknowledged before it began is caught, naming the read.
#[test]
fn stale_read_is_not_linearizable() {
    let mut history = funded();
    history.extend(read(2, 0, 3, 4));
    let Verdict::NotLinearizable(violation) = verdict(&history) else {
        panic!("stale read accepted");
    };
    assert_eq!(violation.process, 2);
    assert!(
        violation.operation.starts_with("read on 1/EUR"),
        "{violation}"
    );
}

// Proves two concurrent credits that both report the single-credit balance (a lost update) are caught.
#[test]
fn lost_update_is_not_linearizable() {
    let history = vec![
        event(1, "invoke", "credit", json!({"amount": 10, "tx": "a"}), 1),
        event(2, "invoke", "credit", json!({"amount": 10, "tx": "b"}), 2),
        event(1, "ok", "credit", json!({"balance": bal(10, 0)}), 3),
        event(2, "ok", "credit", json!({"balance": bal(10, 0)}), 4),
    ];
    assert!(matches!(verdict(&history), Verdict::NotLinearizable(_)));
}

// Proves a debit whose effect shows up twice in a later read is caught.
#[test]
fn double_applied_debit_is_not_linearizable() {
    let mut history = funded();
    history.push(event(
        1,
        "invoke",
        "debit",
        json!({"amount": 30, "tx": "d1"}),
        3,
    ));
    history.push(event(1, "ok", "debit", json!({"balance": bal(70, 0)}), 4));
    history.extend(read(2, 40, 5, 6));
    assert!(matches!(verdict(&history), Verdict::NotLinearizable(_)));
}

// Proves an indeterminate debit is assumed applied when a later read needs it.
#[test]
fn indeterminate_debit_may_have_happened() {
    let mut history = funded();
    history.push(event(
        1,
        "invoke",
        "debit",
        json!({"amount": 30, "tx": "d1"}),
        3,
    ));
    history.push(event(1, "info", "debit", json!({}), 4));
    history.extend(read(2, 100, 5, 6));
    history.extend(read(2, 70, 7, 8));
    assert_eq!(verdict(&history), Verdict::Linearizable);
    // Two reads cannot both be explained by one debit of 30.
    history.extend(read(2, 40, 9, 10));
    assert!(matches!(verdict(&history), Verdict::NotLinearizable(_)));
}

// Proves an indeterminate (never completed) debit may be assumed never applied.
#[test]
fn indeterminate_debit_may_never_have_happened() {
    let mut history = funded();
    history.push(event(
        1,
        "invoke",
        "debit",
        json!({"amount": 30, "tx": "d1"}),
        3,
    ));
    history.extend(read(2, 100, 5, 6));
    history.extend(read(2, 100, 7, 8));
    assert_eq!(verdict(&history), Verdict::Linearizable);
}

// Proves insufficient_funds is an observation: legal only while available < amount.
#[test]
fn insufficient_funds_refusal_observes_the_balance() {
    let refused = |amount: u64| {
        let mut history = funded();
        history.push(event(
            1,
            "invoke",
            "debit",
            json!({"amount": amount, "tx": "d1"}),
            3,
        ));
        history.push(event(
            1,
            "fail",
            "debit",
            json!({"reason": "insufficient_funds"}),
            4,
        ));
        verdict(&history)
    };
    assert_eq!(refused(101), Verdict::Linearizable);
    assert!(matches!(refused(50), Verdict::NotLinearizable(_)));
    // Any other failure means "did not happen" and says nothing about the balance.
    let mut history = funded();
    history.push(event(
        1,
        "invoke",
        "debit",
        json!({"amount": 50, "tx": "d1"}),
        3,
    ));
    history.push(event(
        1,
        "fail",
        "debit",
        json!({"reason": "not_leader"}),
        4,
    ));
    history.extend(read(2, 100, 5, 6));
    assert_eq!(verdict(&history), Verdict::Linearizable);
}

// Proves a transfer is checked as a debit of the source and a credit of the target.
#[test]
fn transfer_projects_onto_both_accounts() {
    let transfer = |to_available: u64| {
        let text = format!(
            "{}\n{}\n{}\n{}",
            r#"{"process":9,"type":"invoke","f":"credit","account":"1/EUR","value":{"amount":100,"tx":"c1"},"time_ns":1}"#,
            r#"{"process":9,"type":"ok","f":"credit","account":"1/EUR","value":{"balance":{"available":100,"held":0}},"time_ns":2}"#,
            r#"{"process":1,"type":"invoke","f":"transfer","account":"1/EUR","value":{"amount":30,"tx":"t1","to":"2/EUR"},"time_ns":3}"#,
            format_args!(
                r#"{{"process":1,"type":"ok","f":"transfer","account":"1/EUR","value":{{"balance":{{"available":70,"held":0}},"to_balance":{{"available":{to_available},"held":0}}}},"time_ns":4}}"#
            ),
        );
        verdict(&parse_history(&text).expect("valid lines"))
    };
    assert_eq!(transfer(30), Verdict::Linearizable);
    let Verdict::NotLinearizable(violation) = transfer(60) else {
        panic!("wrong target balance accepted");
    };
    assert!(violation.operation.contains("2/EUR"), "{violation}");
}

// Proves holds move money between available and held, and capture/release settle them.
#[test]
fn hold_capture_release_track_held_funds() {
    let mut history = funded();
    let steps = [
        (
            "hold",
            json!({"amount": 40, "hold": "h1", "tx": "h"}),
            bal(60, 40),
        ),
        (
            "capture",
            json!({"amount": 10, "hold": "h1", "tx": "c"}),
            bal(60, 30),
        ),
        ("release", json!({"hold": "h1", "tx": "r"}), bal(90, 0)),
    ];
    for (index, (f, value, balance)) in steps.into_iter().enumerate() {
        let time = 10 + 2 * index as u64;
        history.push(event(1, "invoke", f, value, time));
        history.push(event(1, "ok", f, json!({ "balance": balance }), time + 1));
    }
    assert_eq!(verdict(&history), Verdict::Linearizable);
    history.push(event(
        1,
        "invoke",
        "release",
        json!({"hold": "h1", "tx": "r2"}),
        20,
    ));
    history.push(event(
        1,
        "ok",
        "release",
        json!({"balance": bal(90, 0)}),
        21,
    ));
    assert!(
        matches!(verdict(&history), Verdict::NotLinearizable(_)),
        "released twice"
    );
}
