//! The geo shape on real processes: two regions with two datacenters each
//! and a tiebreaker site, four shard groups and the directory. A whole
//! datacenter is SIGKILLed during a workload over every group.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use geowallet_client::{Account, Client, ClientConfig, CreditKind, Error, Tx};
use geowallet_node::local_cluster::{LocalCluster, Topology};

use crate::cluster::start_topology;

fn client(cluster: &LocalCluster, region: &str) -> Client {
    let config = ClientConfig {
        region: region.into(),
        retry_budget: Duration::from_secs(20),
        ..Default::default()
    };
    cluster.client(config).unwrap()
}

/// What one writer saw: tx ids acknowledged, tx ids whose outcome is
/// unknown, and when its first acknowledgement after `since` came.
#[derive(Default)]
struct Seen {
    acked: Vec<Tx>,
    unknown: Vec<Tx>,
}

async fn writer(c: Client, player: u64, stop: Arc<AtomicBool>) -> Seen {
    let mut seen = Seen::default();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let tx = Tx::new(format!("p{player}-{n}"));
        match c
            .credit(&tx, &Account::new(player, "EUR"), 1, CreditKind::Deposit)
            .await
        {
            Ok(_) => seen.acked.push(tx),
            Err(Error::Indeterminate { .. }) | Err(Error::Unavailable { .. }) => {
                seen.unknown.push(tx)
            }
            Err(e) => panic!("player {player}: {e}"),
        }
    }
    seen
}

// Kill every node of datacenter eu/a at once (SIGKILL) while clients write
// to every group: eu's groups elect a leader in eu/b by themselves (never
// the tiebreaker in ap while eu/b is healthy), us's groups do not notice,
// every acknowledged write is there afterwards and nothing applied twice;
// when eu/a returns and has caught up, leadership fails back to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datacenter_loss_loses_no_acknowledged_write_and_fails_back() {
    let (mut cluster, _dir) = start_topology("geowallet-geo-", &Topology::geo(2));
    let (eu, us) = (client(&cluster, "eu"), client(&cluster, "us"));
    let mut players = Vec::new();
    for p in 1..=6u64 {
        let (c, player) = if p <= 3 { (&eu, p) } else { (&us, 100 + p) };
        c.open(
            &Tx::new(format!("open-{player}")),
            &Account::new(player, "EUR"),
        )
        .await
        .unwrap_or_else(|e| panic!("open {player}: {e}"));
        players.push((player, c.clone()));
    }
    // Home datacenter a leads: eu/a is node 1, us/a node 3.
    let home_a = BTreeMap::from([(1, 1), (2, 1), (3, 3), (4, 3)]);
    cluster
        .wait_group_leaders(&home_a, Duration::from_secs(30))
        .await
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = players
        .iter()
        .map(|(p, c)| tokio::spawn(writer(c.clone(), *p, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.kill(1).unwrap();
    let killed = Instant::now();
    // The first write to an eu player acknowledged after the kill.
    let probe = Tx::new("after-kill");
    eu.credit(&probe, &Account::new(1, "EUR"), 1, CreditKind::Deposit)
        .await
        .unwrap();
    eprintln!(
        "datacenter eu/a SIGKILLed: first acknowledged eu write after {:?}",
        killed.elapsed()
    );
    let eu_b = BTreeMap::from([(1, 2), (2, 2), (3, 3), (4, 3)]);
    cluster
        .wait_group_leaders(&eu_b, Duration::from_secs(30))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    cluster.spawn(1).unwrap();
    cluster
        .wait_group_leaders(&home_a, Duration::from_secs(60))
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    let mut expected: BTreeMap<u64, u64> = BTreeMap::new();
    for (w, (player, c)) in writers.into_iter().zip(&players) {
        let seen = w.await.unwrap();
        let mut applied = seen.acked.len() as u64;
        // Resolve each unknown outcome with its own retry: it applies once.
        for tx in &seen.unknown {
            c.credit(tx, &Account::new(*player, "EUR"), 1, CreditKind::Deposit)
                .await
                .unwrap_or_else(|e| panic!("resolve {}: {e}", tx.id));
            applied += 1;
        }
        assert!(seen.acked.len() > 5, "player {player} made progress");
        expected.insert(*player, applied);
    }
    *expected.get_mut(&1).unwrap() += 1; // the probe
    for (player, c) in &players {
        let b = c.balance(&Account::new(*player, "EUR")).await.unwrap();
        assert_eq!(
            b.available, expected[player],
            "player {player}: every acknowledged deposit, each once"
        );
    }
    cluster.stop_all();
}
