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
            .all(|pair| pair[0].time_ns <= pair[1].time_ns)
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
