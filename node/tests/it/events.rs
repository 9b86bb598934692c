//! The change stream and the tamper-evident journal export, on real
//! processes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use geowallet_client::{Account, Client, CreditKind, Error, GroupEvents, Resume, Tx};

use crate::cluster::TestCluster;
use crate::ctl::ctl_at;

const WRITERS: u64 = 4;

/// Credits of 1 until `stop`: (acknowledged tx ids, unknown-outcome ids).
async fn writer(w: u64, client: Client, stop: Arc<AtomicBool>) -> (Vec<String>, Vec<String>) {
    let (mut acked, mut unknown) = (Vec::new(), Vec::new());
    let account = Account::new(w, "EUR");
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let id = format!("ev-{w}-{i}");
        match client
            .credit(&Tx::new(id.clone()), &account, 1, CreditKind::Win)
            .await
        {
            Ok(_) => acked.push(id),
            Err(Error::Indeterminate { .. } | Error::Unavailable { .. }) => unknown.push(id),
            Err(e) => panic!("credit {id}: {e}"),
        }
    }
    (acked, unknown)
}

/// What the consumer saw: per tx id, how many credit lines; and the log
/// indexes in the order received.
#[derive(Default)]
struct Seen {
    credits: BTreeMap<String, u32>,
    indexes: Vec<u64>,
}

impl Seen {
    fn take(&mut self, e: &GroupEvents) {
        self.indexes.push(e.log_index);
        for l in &e.lines {
            if l.line.kind == "credit:win" {
                *self.credits.entry(l.line.tx_id.clone()).or_default() += 1;
            }
        }
    }
}

// Proves the change stream delivers every committed event exactly once and
// in order while a consumer is killed and restarted from its saved
// position and the group's leader is killed under a write load: every
// acknowledged credit is seen once, none twice (unknown outcomes at most
// once), log indexes strictly increase, and each entry chains from the one
// before (the client checks it, and a break would end the stream).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_event_is_seen_once_across_consumer_and_leader_kills() {
    let mut tc = TestCluster::start(100_000).await;
    let client = tc.client();
    for w in 1..=WRITERS {
        client
            .open(&Tx::new(format!("ev-open-{w}")), &Account::new(w, "EUR"))
            .await
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (1..=WRITERS)
        .map(|w| tokio::spawn(writer(w, tc.client(), stop.clone())))
        .collect();

    let mut seen = Seen::default();
    let mut resume = Resume::START;
    // A consumer that stops after 40 entries, as if killed; its restart
    // resumes from the position it kept.
    for _ in 0..2 {
        let mut stream = client.events(1, resume, None);
        for _ in 0..40 {
            let e = tokio::time::timeout(Duration::from_secs(20), stream.next())
                .await
                .expect("events within 20 s")
                .expect("the stream goes on")
                .unwrap();
            seen.take(&e);
            resume = Resume::after(&e);
        }
        drop(stream);
    }
    // Then the leader dies while the consumer follows.
    let leader = tc
        .cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    // The stream is served by the leader (listed first), so its death
    // also cuts the stream: the consumer must resume on another node.
    let mut endpoints = tc.cluster.endpoints();
    endpoints.sort_by_key(|e| *e != tc.cluster.node(leader).endpoint);
    let leader_first = Client::connect(
        endpoints,
        tc.cluster
            .with_root_tls(geowallet_client::ClientConfig {
                retry_budget: Duration::from_secs(20),
                ..Default::default()
            })
            .unwrap(),
    )
    .unwrap();
    let mut stream = leader_first.events(1, resume, None);
    let killed_at = Instant::now();
    let mut killed = false;
    while killed_at.elapsed() < Duration::from_secs(6) {
        if !killed && killed_at.elapsed() > Duration::from_secs(1) {
            tc.cluster.kill(leader).unwrap();
            killed = true;
        }
        if let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(200), stream.next()).await {
            let e = e.unwrap();
            seen.take(&e);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (mut acked, mut unknown) = (BTreeSet::new(), BTreeSet::new());
    for w in writers {
        let (a, u) = w.await.unwrap();
        acked.extend(a);
        unknown.extend(u);
    }
    assert!(
        acked.len() > 100,
        "only {} writes acknowledged",
        acked.len()
    );
    // Drain until every acknowledged credit was seen.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.iter().any(|id| !seen.credits.contains_key(id)) {
        assert!(Instant::now() < deadline, "acknowledged credits never seen");
        if let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(500), stream.next()).await {
            seen.take(&e.unwrap());
        }
    }
    for (id, n) in &seen.credits {
        assert_eq!(*n, 1, "{id} seen {n} times");
        assert!(
            acked.contains(id) || unknown.contains(id),
            "{id} seen but never written"
        );
    }
    assert!(
        seen.indexes.windows(2).all(|w| w[0] < w[1]),
        "log indexes out of order"
    );
}

fn utc_today() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%F"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

// Proves `ctl journal export` writes a day's journal that `geowallet
// verify` accepts, with every line the cluster applied and the totals
// they sum to; and that an edited amount, a removed line and an edited
// total are each reported with the file's line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_line_in_an_exported_journal_is_reported() {
    let tc = TestCluster::start(100_000).await;
    let client = tc.client();
    let a = Account::new(21, "EUR");
    client.open(&Tx::new("x-open"), &a).await.unwrap();
    for i in 1..=5 {
        client
            .credit(
                &Tx::new(format!("x-dep-{i}")),
                &a,
                100 * i,
                CreditKind::Deposit,
            )
            .await
            .unwrap();
    }
    let day = utc_today();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("journal.csv");
    let eps = tc.cluster.endpoints().join(",");
    let tls = tc.cluster.dir.join("tls");
    let (code, out, err) = ctl_at(
        &eps,
        Some(&tls),
        &[
            "--role",
            "auditor",
            "--group",
            "1",
            "journal",
            "export",
            "--day",
            &day,
            "--out",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("6 lines"), "{err}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains(",credit:deposit,300,600,0,x-dep-3\n"),
        "{text}"
    );
    assert!(
        text.contains("total,,,,,,,EUR,,credit:deposit,1500,,,"),
        "{text}"
    );

    let verify = |path: &std::path::Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_geowallet"))
            .arg("verify")
            .arg(path)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (code, out) = verify(&file);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok: 6 entries, 6 lines"), "{out}");

    let edits: [(&str, String); 3] = [
        (
            "amount",
            text.replace(",300,600,0,x-dep-3", ",3000,600,0,x-dep-3"),
        ),
        (
            "removed line",
            text.lines()
                .filter(|l| !l.ends_with("x-dep-2"))
                .map(|l| format!("{l}\n"))
                .collect(),
        ),
        (
            "total",
            text.replace("credit:deposit,1500,", "credit:deposit,1400,"),
        ),
    ];
    for (what, edited) in edits {
        assert_ne!(edited, text, "{what}: the edit must apply");
        let path = dir.path().join("edited.csv");
        std::fs::write(&path, edited).unwrap();
        let (code, out) = verify(&path);
        assert_eq!(code, 1, "{what} passed: {out}");
        assert!(out.contains("edited.csv: line "), "{what}: {out}");
    }
}
