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

/// `f` of `amount` with `tx` by `process` over [from, to], ok reporting `available`.
fn applied(
    process: u64,
    f: &str,
    (amount, tx): (u64, &str),
    available: u64,
    (from, to): (u64, u64),
) -> [HistoryEvent; 2] {
    [
        event(
            process,
            "invoke",
            f,
            json!({"amount": amount, "tx": tx}),
            from,
        ),
        event(process, "ok", f, json!({"balance": bal(available, 0)}), to),
    ]
}

// Proves a duplicate tx answered with the balance stored at its first apply, after other
// writes moved the balance on, is linearizable and changes nothing.
#[test]
fn duplicate_tx_reports_the_stored_balance() {
    let mut history = funded();
    history.extend(applied(1, "debit", (30, "d1"), 70, (3, 4)));
    history.extend(applied(1, "credit", (50, "c2"), 120, (5, 6)));
    history.extend(applied(2, "debit", (30, "d1"), 70, (7, 8)));
    history.extend(read(3, 120, 9, 10));
    assert_eq!(verdict(&history), Verdict::Linearizable);
}

// Proves a duplicate tx whose effect shows twice (in its reply or a later read) is caught.
#[test]
fn duplicate_tx_applied_twice_is_not_linearizable() {
    let mut history = funded();
    history.extend(applied(1, "debit", (30, "d1"), 70, (3, 4)));
    let mut twice = history.clone();
    twice.extend(applied(2, "debit", (30, "d1"), 40, (5, 6)));
    assert!(matches!(verdict(&twice), Verdict::NotLinearizable(_)));
    history.push(event(
        2,
        "invoke",
        "debit",
        json!({"amount": 30, "tx": "d1"}),
        5,
    ));
    history.push(event(2, "ok", "debit", json!({}), 6));
    history.extend(read(3, 40, 7, 8));
    let Verdict::NotLinearizable(violation) = verdict(&history) else {
        panic!("second apply of d1 accepted");
    };
    assert_eq!(violation.process, 3, "{violation}");
}

// Proves an indeterminate original and a concurrent duplicate that reports the original's
// stored balance are linearizable, and that a second apply is still caught.
#[test]
fn indeterminate_original_and_concurrent_duplicate() {
    let with_duplicate = |reported: u64| {
        let mut history = funded();
        history.push(event(
            1,
            "invoke",
            "debit",
            json!({"amount": 30, "tx": "d1"}),
            3,
        ));
        // 120 = 100 - 30 + 50: the original applied before this credit.
        history.extend(applied(3, "credit", (50, "c2"), 120, (4, 5)));
        history.extend(applied(2, "debit", (30, "d1"), reported, (6, 7)));
        history.extend(read(4, 120, 8, 9));
        history.push(event(1, "info", "debit", json!({}), 10));
        verdict(&history)
    };
    assert_eq!(with_duplicate(70), Verdict::Linearizable);
    assert!(matches!(with_duplicate(90), Verdict::NotLinearizable(_)));
}

// Proves a duplicate of a tx refused for funds must be refused again, even once funds arrived.
#[test]
fn duplicate_of_refused_tx_is_refused_again() {
    let with_duplicate = |kind: &str, value: Value| {
        let mut history = funded();
        let debit = json!({"amount": 150, "tx": "d1"});
        let refusal = json!({"reason": "insufficient_funds"});
        history.push(event(1, "invoke", "debit", debit.clone(), 3));
        history.push(event(1, "fail", "debit", refusal, 4));
        history.extend(applied(1, "credit", (100, "c2"), 200, (5, 6)));
        history.push(event(2, "invoke", "debit", debit, 7));
        history.push(event(2, kind, "debit", value, 8));
        verdict(&history)
    };
    let refused_again = with_duplicate("fail", json!({"reason": "insufficient_funds"}));
    assert_eq!(refused_again, Verdict::Linearizable);
    let applied_late = with_duplicate("ok", json!({"balance": bal(50, 0)}));
    assert!(matches!(applied_late, Verdict::NotLinearizable(_)));
}

// Proves a duplicated transfer answers both accounts from their stored balances.
#[test]
fn duplicate_transfer_reports_stored_balances_of_both_accounts() {
    let duplicate = |to_available: u64| {
        let transfer = r#"{"process":1,"type":"invoke","f":"transfer","account":"1/EUR","value":{"amount":30,"tx":"t1","to":"2/EUR"},"time_ns":3}"#;
        let text = [
            r#"{"process":9,"type":"invoke","f":"credit","account":"1/EUR","value":{"amount":100,"tx":"c1"},"time_ns":1}"#,
            r#"{"process":9,"type":"ok","f":"credit","account":"1/EUR","value":{"balance":{"available":100,"held":0}},"time_ns":2}"#,
            transfer,
            r#"{"process":1,"type":"ok","f":"transfer","account":"1/EUR","value":{"balance":{"available":70,"held":0},"to_balance":{"available":30,"held":0}},"time_ns":4}"#,
            r#"{"process":2,"type":"invoke","f":"credit","account":"2/EUR","value":{"amount":5,"tx":"c2"},"time_ns":5}"#,
            r#"{"process":2,"type":"ok","f":"credit","account":"2/EUR","value":{"balance":{"available":35,"held":0}},"time_ns":6}"#,
            &transfer.replace("time_ns\":3", "time_ns\":7"),
            &format!(
                r#"{{"process":1,"type":"ok","f":"transfer","account":"1/EUR","value":{{"balance":{{"available":70,"held":0}},"to_balance":{{"available":{to_available},"held":0}}}},"time_ns":8}}"#
            ),
        ]
        .join("\n");
        verdict(&parse_history(&text).expect("valid lines"))
    };
    assert_eq!(duplicate(30), Verdict::Linearizable);
    let Verdict::NotLinearizable(violation) = duplicate(35) else {
        panic!("target credited twice accepted");
    };
    assert!(violation.operation.contains("2/EUR"), "{violation}");
}

// Proves an indeterminate capture of a hold the account never had is linearizable.
#[test]
fn indeterminate_capture_of_unknown_hold_is_linearizable() {
    let mut history = funded();
    history.push(event(
        1,
        "invoke",
        "capture",
        json!({"hold": "h9", "tx": "k1"}),
        3,
    ));
    history.push(event(1, "info", "capture", json!({}), 4));
    history.extend(read(2, 100, 5, 6));
    assert_eq!(verdict(&history), Verdict::Linearizable);
}

// Proves a transfer between groups that its payee refused after the payer
// was debited (the money came back: its tx id is among the returned ones)
// explains a read that saw the money gone in between, over two calls of
// the tx (one indeterminate, the retry refused); without that knowledge
// the same history is not linearizable.
#[test]
fn a_returned_transfer_explains_the_money_gone_in_between() {
    let mut history = funded();
    let transfer = json!({"amount": 40, "tx": "x1", "to": "2/EUR"});
    history.push(event(1, "invoke", "transfer", transfer.clone(), 3));
    history.push(event(1, "info", "transfer", json!({}), 6));
    history.extend(read(2, 60, 4, 5));
    history.push(event(3, "invoke", "transfer", transfer, 7));
    history.push(event(
        3,
        "fail",
        "transfer",
        json!({"reason": "unknown_account"}),
        9,
    ));
    history.extend(read(2, 100, 10, 11));
    assert_ne!(verdict(&history), Verdict::Linearizable);
    let returned = ["x1".to_string()].into_iter().collect();
    let operations =
        geowallet_testkit::wallet_operations_returning(&history, &returned).expect("well-formed");
    let checked = check(&WalletModel, operations, &CheckConfig::default());
    assert_eq!(checked.verdict, Verdict::Linearizable);
    // The money must still come back: a later read without it is caught.
    let mut lost = history.clone();
    lost.extend(read(2, 60, 12, 13));
    let operations = geowallet_testkit::wallet_operations_returning(&lost, &returned).unwrap();
    let checked = check(&WalletModel, operations, &CheckConfig::default());
    assert_ne!(checked.verdict, Verdict::Linearizable);
}
