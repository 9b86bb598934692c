//! Messages between nodes stay under the transport's limit, however far
//! behind a follower is and however big the entries are.

use std::time::{Duration, Instant};

use geowallet_client::{Account, CreditKind, Tx};
use geowallet_node::config::RaftTuning;

use crate::cluster::{TestCluster, tuning};

/// Transport limit for this test: small, so a modest lag is many times it.
const MESSAGE_BYTES_MAX: usize = 64 << 10;
const WRITERS: u64 = 32;
const WRITES_PER_WRITER: u64 = 150;

// A follower that missed ~5,000 requests in entries of up to 256 requests
// (many times the 64 KiB transport limit in all) catches up by log
// replication: AppendEntries carry the prefix of entries that fits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_follower_catches_up_over_large_entries() {
    let mut tc = TestCluster::start_tuned(RaftTuning {
        message_bytes_max: MESSAGE_BYTES_MAX,
        ..tuning(1_000_000)
    })
    .await;
    let client = tc.client();
    let leader = tc
        .cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    let lagging = (1..=3).find(|id| *id != leader).unwrap();
    tc.cluster.kill(lagging).unwrap();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let client = client.clone();
            tokio::spawn(async move {
                let a = Account::new(1_000 + w, "EUR");
                let id = |n: u64| format!("bounded-{w}-{n}-{}", "x".repeat(40));
                client.open(&Tx::new(id(0)), &a).await.unwrap();
                for n in 1..=WRITES_PER_WRITER {
                    client
                        .credit(&Tx::new(id(n)), &a, 1, CreditKind::Win)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let target = tc.applied_index(leader).await;
    tc.cluster.spawn(lagging).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let applied = tc.applied_index(lagging).await;
        if applied >= target {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node {lagging} stuck at {applied} of {target}\n{}",
            tc.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let snapshots = tc.cluster.node(lagging).dir.join("data/snapshots");
    let installed = std::fs::read_dir(&snapshots)
        .map(|d| {
            d.flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "snap"))
        })
        .unwrap_or(false);
    assert!(!installed, "caught up by log, not by snapshot");
}
