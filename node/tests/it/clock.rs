//! Ledger time is bounded by a quorum of clocks: a real node process whose
//! clock reads three days ahead (Debian's libfaketime) never stamps ledger
//! time, even as leader.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use geowallet_client::{Account, Client, ClientConfig, CreditKind, Error, Tx};
use geowallet_node::local_cluster::LocalCluster;

use crate::cluster::tuning;

/// libfaketime from Debian's `faketime` package (scripts/setup.sh installs it).
fn libfaketime() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|d| d.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.exists());
    found.expect(
        "libfaketime.so.1 not found under /usr/lib/*/faketime: install Debian's faketime \
         package (scripts/setup.sh does)",
    )
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn logs(cluster: &LocalCluster) -> String {
    cluster
        .nodes
        .iter()
        .map(|n| {
            let text = std::fs::read_to_string(n.log_path()).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            format!("--- node {} ---\n{}\n", n.id, tail.join("\n"))
        })
        .collect()
}

async fn state_of(client: &Client, endpoint: &str) -> Option<geowallet_client::Status> {
    client.status_of(endpoint).await.ok()
}

// Node 1's clock reads +3 days and its elections time out first, so it
// leads whenever the leader is lost. As leader it refuses writes (as
// unavailable, shown in its status) instead of stamping its time; once the
// group can see a majority of clocks disagree with it, it hands leadership
// over and writes go on. A hold opened for ten minutes is still held, and
// every write succeeds (none answered tx_id_expired).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_days_ahead_never_stamps_ledger_time() {
    let dir = tempfile::Builder::new()
        .prefix("geowallet-it-clock-")
        .tempdir()
        .unwrap();
    let mut cluster = LocalCluster::prepare(
        Path::new(env!("CARGO_BIN_EXE_geowallet")),
        dir.path(),
        3,
        tuning(1_000_000),
    )
    .unwrap();
    cluster.node_mut(1).env = vec![
        ("LD_PRELOAD".into(), libfaketime().display().to_string()),
        ("FAKETIME".into(), "+3d".into()),
    ];
    for id in 1..=3 {
        let (min, max) = if id == 1 { (300, 350) } else { (1500, 2500) };
        cluster
            .edit_config(id, |c| {
                c.raft.election_timeout_ms_min = min;
                c.raft.election_timeout_ms_max = max;
            })
            .unwrap();
    }
    for id in 1..=3 {
        cluster.spawn(id).unwrap();
    }
    cluster
        .wait_for_leader(Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&cluster)));
    let client = cluster
        .client(ClientConfig {
            retry_budget: Duration::from_secs(30),
            ..Default::default()
        })
        .unwrap();
    let a = Account::new(1, "EUR");
    client.open(&Tx::new("clock-open"), &a).await.unwrap();
    client
        .credit(&Tx::new("clock-dep"), &a, 1_000, CreditKind::Deposit)
        .await
        .unwrap();
    let ten_minutes = 600 * 1_000_000_000;
    client
        .hold(
            &Tx::new("clock-hold"),
            &a,
            "h1",
            400,
            now_ns() + ten_minutes,
        )
        .await
        .unwrap();

    // Lose the leader (a node whose clock agrees): node 1 takes over.
    let deadline = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        let l = cluster.wait_for_leader(Duration::from_secs(10)).await;
        match l {
            Ok(l) if l != 1 => break l,
            _ => assert!(Instant::now() < deadline, "{}", logs(&cluster)),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    cluster.kill(leader).unwrap();
    let live: Vec<String> = [1, 2, 3]
        .into_iter()
        .filter(|id| *id != leader)
        .map(|id| cluster.node(id).endpoint.clone())
        .collect();
    // Node 1 takes over; it either hands leadership on at once (it still
    // has a recent measurement of the lost node) or keeps it. Either way,
    // with one voter lost and one clock three days off, no majority of
    // clocks agrees: whoever leads refuses writes, and says so.
    let deadline = Instant::now() + Duration::from_secs(30);
    let refusing = 'found: loop {
        for endpoint in &live {
            if let Some(s) = state_of(&client, endpoint).await
                && s.state == "leader"
                && s.clock_refusing_writes
            {
                break 'found s;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no leader refused writes\n{}",
            logs(&cluster)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(refusing.clock_detail.contains("clock"), "{refusing:?}");
    let n1 = state_of(&client, &cluster.node(1).endpoint).await.unwrap();
    let survivor = 6 - 1 - leader;
    let offset = n1
        .clock_offsets_ns
        .iter()
        .find(|(id, _)| *id == survivor)
        .map(|(_, off)| *off)
        .unwrap_or_else(|| panic!("node 1 never measured node {survivor}: {n1:?}"));
    assert!(
        offset < -2 * 86_400 * 1_000_000_000,
        "node {survivor}'s clock measured {offset} ns from node 1's"
    );
    let quick = Client::connect(
        live.clone(),
        cluster
            .with_root_tls(ClientConfig {
                retry_budget: Duration::from_secs(2),
                ..Default::default()
            })
            .unwrap(),
    )
    .unwrap();
    match quick
        .credit(&Tx::new("clock-refused"), &a, 1, CreditKind::Deposit)
        .await
    {
        Err(Error::Unavailable { .. } | Error::Indeterminate { .. }) => {}
        other => panic!(
            "a group without a quorum of agreeing clocks answered {other:?}\n{}",
            logs(&cluster)
        ),
    }

    // The other voter returns: a majority of clocks now visibly disagrees
    // with node 1's, and it hands leadership to one that agrees.
    cluster.spawn(leader).unwrap();
    client
        .credit(&Tx::new("clock-dep-2"), &a, 5, CreditKind::Deposit)
        .await
        .unwrap_or_else(|e| panic!("writes did not resume: {e}\n{}", logs(&cluster)));
    let new_leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    assert_ne!(new_leader, 1);
    let log1 = std::fs::read_to_string(cluster.node(1).log_path()).unwrap();
    assert!(
        log1.contains("clock out of quorum: transferring leadership"),
        "{log1}"
    );
    // After more entries stamped by the new leader (its ticks), the hold is
    // still open, and the write refused above never applied.
    let endpoint = cluster.node(new_leader).endpoint.clone();
    let applied = |s: Option<geowallet_client::Status>| s.map_or(0, |s| s.applied_index);
    let from = applied(state_of(&client, &endpoint).await);
    let deadline = Instant::now() + Duration::from_secs(20);
    while applied(state_of(&client, &endpoint).await) < from + 2 {
        assert!(
            Instant::now() < deadline,
            "no tick applied\n{}",
            logs(&cluster)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let b = client.balance(&a).await.unwrap();
    assert_eq!((b.available, b.held), (605, 400), "{b:?}");
}
