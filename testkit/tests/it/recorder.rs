use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use geowallet_testkit::{
    Balance, CheckConfig, Completion, EventType, HistoryFormat, OpKind, OpValue, Recorder,
    read_history, to_edn,
};

// Proves concurrent recording with a virtual clock yields a readable, paired, checkable history.
#[test]
fn recorder_writes_a_checkable_history() {
    let path =
        std::env::temp_dir().join(format!("geowallet-recorder-{}.jsonl", std::process::id()));
    let clock = Arc::new(AtomicU64::new(0));
    let tick = Arc::clone(&clock);
    let recorder = Arc::new(
        Recorder::create(&path, move || tick.fetch_add(1, Ordering::SeqCst)).expect("create"),
    );
    let threads: Vec<_> = (0..4u64)
        .map(|process| {
            let recorder = Arc::clone(&recorder);
            std::thread::spawn(move || {
                let account = format!("{process}/EUR");
                let value = OpValue {
                    amount: Some(10),
                    tx: Some(format!("tx-{process}")),
                    ..OpValue::default()
                };
                let handle = recorder
                    .invoke(process, OpKind::Credit, Some(&account), value)
                    .expect("invoke");
                let done = OpValue {
                    balance: Some(Balance::new(10, 0)),
                    ..OpValue::default()
                };
                recorder
                    .complete(handle, Completion::Ok(done))
                    .expect("complete");
                let handle = recorder
                    .invoke(process, OpKind::Debit, Some(&account), OpValue::default())
                    .expect("invoke");
                recorder
                    .complete(handle, Completion::Info)
                    .expect("complete");
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("recording thread");
    }
    recorder.flush().expect("flush");
    let history = read_history(&path).expect("read back");
    assert_eq!(history.len(), 16);
    assert!(
        history
            .windows(2)
            .all(|pair| pair[0].time_ns < pair[1].time_ns)
    );
    assert_eq!(
        history.iter().filter(|e| e.kind == EventType::Info).count(),
        4
    );
    assert_eq!(to_edn(&history).lines().count(), 16);
    let error = HistoryFormat::Geowallet.check_file(&path, &CheckConfig::default());
    // The debits were recorded without an amount: the checker refuses, naming the field.
    let message = error.expect_err("debit without amount").to_string();
    assert!(message.contains("missing value.amount"), "{message}");
    std::fs::remove_file(&path).expect("remove temp history");
}

// Proves a process that misses its own acknowledged write is caught even when
// the clock does not move between its calls (virtual time, a coarse clock):
// the recorder's order is kept, so the read cannot be linearized before the
// credit that completed before it was invoked.
#[test]
fn stale_read_of_own_write_is_caught_under_a_stopped_clock() {
    let path = std::env::temp_dir().join(format!(
        "geowallet-recorder-stale-{}.jsonl",
        std::process::id()
    ));
    let recorder = Recorder::create(&path, || 1_000).expect("create");
    let credit = recorder
        .invoke(
            1,
            OpKind::Credit,
            Some("7/EUR"),
            OpValue {
                amount: Some(100),
                tx: Some("c1".into()),
                ..OpValue::default()
            },
        )
        .expect("invoke");
    recorder
        .complete(
            credit,
            Completion::Ok(OpValue {
                balance: Some(Balance::new(100, 0)),
                ..OpValue::default()
            }),
        )
        .expect("complete");
    let read = recorder
        .invoke(1, OpKind::Read, Some("7/EUR"), OpValue::default())
        .expect("invoke");
    recorder
        .complete(
            read,
            Completion::Ok(OpValue {
                balance: Some(Balance::new(0, 0)),
                ..OpValue::default()
            }),
        )
        .expect("complete");
    recorder.flush().expect("flush");
    let history = read_history(&path).expect("read back");
    let times: Vec<u64> = history.iter().map(|e| e.time_ns).collect();
    assert_eq!(times, [1_000, 1_001, 1_002, 1_003]);
    let verdict = HistoryFormat::Geowallet
        .check_file(&path, &CheckConfig::default())
        .expect("checkable");
    assert!(
        verdict.verdict.to_string().starts_with("not linearizable"),
        "the stale own-read must be caught: {}",
        verdict.verdict
    );
    std::fs::remove_file(&path).expect("remove temp history");
}
