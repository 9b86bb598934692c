use std::time::Duration;

use geowallet_client::{Account, CreditKind, Tx};
use geowallet_storage::{Db, GroupId};

use crate::cluster::TestCluster;

// A log entry damaged on disk is caught by its crc32 when the node restarts: the node refuses to run
// on it and says why, instead of serving or replicating bad data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_log_entry_is_detected_by_checksum() {
    let mut tc = TestCluster::start(100_000).await;
    let client = tc.client();
    let a = Account::new(1, "EUR");
    client.open(&Tx::new("c-open"), &a).await.unwrap();
    let mut last_index = 0;
    for i in 0..20 {
        let tx = Tx::new(format!("c-dep-{i}"));
        last_index = client
            .credit(&tx, &a, 10, CreditKind::Deposit)
            .await
            .unwrap()
            .log_index;
    }
    let leader = tc
        .cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    let victim = if leader == 3 { 2 } else { 3 };
    // A majority acknowledgement does not need the victim: wait until it has the writes too.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while client
        .status_of(&tc.cluster.node(victim).endpoint)
        .await
        .map_or(0, |s| s.applied_index)
        < last_index
    {
        assert!(
            std::time::Instant::now() < deadline,
            "node {victim} never caught up\n{}",
            tc.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tc.cluster.kill(victim).unwrap();
    {
        let db = Db::open(&tc.cluster.node(victim).dir.join("data").join("db")).unwrap();
        let log = db.log_store(GroupId(1));
        let (last, _) = log.last().unwrap().expect("the follower has log entries");
        assert!(db.corrupt_log_entry_for_test(GroupId(1), last).unwrap());
        assert!(log.read_range(last, last + 1).unwrap_err().is_corruption());
    }
    tc.cluster.spawn(victim).unwrap();
    let status = tc
        .cluster
        .wait_exit(victim, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e:#}\n{}", tc.logs()));
    assert!(!status.success(), "a node with a damaged log must not run");
    let log = std::fs::read_to_string(tc.cluster.node(victim).log_path()).unwrap();
    assert!(
        log.contains("checksum mismatch"),
        "the node must say the log is damaged:\n{log}"
    );
    // The other two keep serving.
    assert_eq!(client.balance(&a).await.unwrap().available, 200);
}
