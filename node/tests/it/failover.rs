use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use geowallet_client::{Account, Client, CreditKind, Error, JournalCursor, Tx};

use crate::cluster::TestCluster;

const ACCOUNTS: u64 = 20;
const OPENING: u64 = 10_000;
const WORKERS: u64 = 8;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fate {
    Acked,
    Refused,
    Unknown,
}

fn acct(p: u64) -> Account {
    Account::new(p, "EUR")
}

async fn transfers(
    worker: u64,
    client: Client,
    stop: Arc<AtomicBool>,
) -> Vec<(Tx, u64, u64, u64, Fate)> {
    let mut out = Vec::new();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let from = 1 + (worker * 7 + i * 3) % ACCOUNTS;
        let to = 1 + (from + 1 + i % (ACCOUNTS - 1)) % ACCOUNTS;
        let amount = 1 + (i * 37 + worker) % 700;
        let tx = Tx::new(format!("fo-{worker}-{i}"));
        let fate = match client.transfer(&tx, &acct(from), &acct(to), amount).await {
            Ok(_) => Fate::Acked,
            Err(Error::Indeterminate { .. } | Error::Unavailable { .. }) => Fate::Unknown,
            Err(_) => Fate::Refused,
        };
        out.push((tx, from, to, amount, fate));
    }
    out
}

async fn sum(client: &Client) -> u64 {
    let mut total = 0;
    for p in 1..=ACCOUNTS {
        let b = client.balance(&acct(p)).await.unwrap();
        total += b.available + b.held;
    }
    total
}

/// (tx id, journal kind) -> count, over every account's whole journal.
async fn journal_counts(client: &Client) -> BTreeMap<(String, String), u32> {
    let mut counts = BTreeMap::new();
    for p in 1..=ACCOUNTS {
        let mut from = JournalCursor::START;
        loop {
            let page = client.journal(&acct(p), from, 1000).await.unwrap();
            for e in page.entries {
                *counts.entry((e.tx_id, e.kind)).or_insert(0) += 1;
            }
            match page.next {
                Some(n) => from = n,
                None => break,
            }
        }
    }
    counts
}

async fn wait_caught_up(tc: &TestCluster, client: &Client, id: u64) -> geowallet_client::Status {
    let leader = tc
        .cluster
        .wait_for_leader(Duration::from_secs(20))
        .await
        .unwrap();
    let target = client
        .status_of(&tc.cluster.node(leader).endpoint)
        .await
        .unwrap()
        .committed_index;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(s) = client.status_of(&tc.cluster.node(id).endpoint).await
            && s.applied_index >= target
        {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "node {id} did not catch up to {target}\n{}",
            tc.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// SIGKILL of the leader under 8 concurrent clients loses no acknowledged transfer, applies none twice,
// keeps the total unchanged, and the killed node catches up after restart (by snapshot: logs are purged).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_sigkill_under_load_loses_nothing_and_doubles_nothing() {
    let mut tc = TestCluster::start(50).await;
    let client = tc.client();
    for p in 1..=ACCOUNTS {
        client
            .open(&Tx::new(format!("fo-open-{p}")), &acct(p))
            .await
            .unwrap();
        client
            .credit(
                &Tx::new(format!("fo-dep-{p}")),
                &acct(p),
                OPENING,
                CreditKind::Deposit,
            )
            .await
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| tokio::spawn(transfers(w, client.clone(), stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let victim = tc
        .cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    tc.cluster.kill(victim).unwrap();
    let new_leader = tc
        .cluster
        .wait_for_leader(Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", tc.logs()));
    assert_ne!(new_leader, victim);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut ops = Vec::new();
    for w in workers {
        ops.extend(w.await.unwrap());
    }
    // Resolve every unknown outcome by retrying with the same transaction.
    for op in ops.iter_mut().filter(|o| o.4 == Fate::Unknown) {
        op.4 = match client.transfer(&op.0, &acct(op.1), &acct(op.2), op.3).await {
            Ok(_) => Fate::Acked,
            Err(e) if e.is_refusal() => Fate::Refused,
            Err(e) => panic!("still unknown after failover: {e}\n{}", tc.logs()),
        };
    }
    let acked = ops.iter().filter(|o| o.4 == Fate::Acked).count();
    assert!(
        acked > 100,
        "too little progress to prove anything: {acked} acked"
    );
    assert_eq!(sum(&client).await, ACCOUNTS * OPENING);
    let counts = journal_counts(&client).await;
    for (tx, _, _, _, fate) in &ops {
        let out = counts
            .get(&(tx.id.clone(), "transfer_out".into()))
            .copied()
            .unwrap_or(0);
        let inn = counts
            .get(&(tx.id.clone(), "transfer_in".into()))
            .copied()
            .unwrap_or(0);
        match fate {
            Fate::Acked => assert_eq!(
                (out, inn),
                (1, 1),
                "acked transfer {} must be applied exactly once",
                tx.id
            ),
            Fate::Refused => assert_eq!(
                (out, inn),
                (0, 0),
                "refused transfer {} must not be applied",
                tx.id
            ),
            Fate::Unknown => unreachable!(),
        }
    }
    assert!(
        counts.values().all(|c| *c == 1),
        "a journal line appears twice"
    );

    tc.cluster.spawn(victim).unwrap();
    let s = wait_caught_up(&tc, &client, victim).await;
    eprintln!(
        "restarted node {victim}: applied {} snapshot {}",
        s.applied_index, s.snapshot_index
    );
    let log = std::fs::read_to_string(tc.cluster.node(victim).log_path()).unwrap();
    assert!(
        log.contains("received snapshot"),
        "the leader purged its log, so catching up needs a snapshot:\n{log}"
    );
    // Now lose another node: the restarted one must carry the quorum with correct state.
    let leader = tc
        .cluster
        .wait_for_leader(Duration::from_secs(20))
        .await
        .unwrap();
    tc.cluster.kill(leader).unwrap();
    tc.cluster
        .wait_for_leader(Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", tc.logs()));
    assert_eq!(sum(&client).await, ACCOUNTS * OPENING);
    assert_eq!(journal_counts(&client).await, counts);
}
