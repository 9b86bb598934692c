//! A voter whose data dir was wiped must not come back under its old id.

use std::time::Duration;

use geowallet_client::{Account, CreditKind, Tx};

use crate::cluster::TestCluster;

// A follower restarted on an empty data dir refuses to start (it could vote
// twice in a term), says why, and the group keeps serving; restoring nothing
// else, a brand-new cluster on empty dirs still starts (TestCluster::start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wiped_voter_refuses_to_start() {
    let mut tc = TestCluster::start(1_000_000).await;
    let client = tc.client();
    let a = Account::new(7, "EUR");
    client.open(&Tx::new("wiped-open"), &a).await.unwrap();
    client
        .credit(&Tx::new("wiped-dep"), &a, 100, CreditKind::Deposit)
        .await
        .unwrap();
    let leader = tc
        .cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    let victim = (1..=3).find(|id| *id != leader).unwrap();
    // The victim must have acknowledged the writes (the leader then holds a
    // matched index for it) before its disk is lost.
    tc.wait_all_caught_up_with(leader).await;
    tc.cluster.kill(victim).unwrap();
    std::fs::remove_dir_all(tc.cluster.node(victim).dir.join("data")).unwrap();
    tc.cluster.spawn(victim).unwrap();
    let status = tc
        .cluster
        .wait_exit(victim, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e:#}\n{}", tc.logs()));
    assert!(!status.success());
    let log = std::fs::read_to_string(tc.cluster.node(victim).log_path()).unwrap();
    assert!(log.contains("refusing to start"), "{log}");
    assert!(log.contains("vote twice"), "{log}");
    client
        .credit(&Tx::new("wiped-dep-2"), &a, 5, CreditKind::Deposit)
        .await
        .unwrap();
    assert_eq!(client.balance(&a).await.unwrap().available, 105);
}
