//! Leader placement on real processes: the group's leader settles in its
//! home region's datacenter `a`; when `a` dies the survivors elect a leader
//! and leadership settles in `b`, never on the tiebreaker in another region
//! while `b` is healthy; when `a` returns and has caught up, leadership
//! fails back to it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use geowallet_client::{Account, Client, ClientConfig, CreditKind, Tx};
use geowallet_node::config::GroupConfig;
use geowallet_node::local_cluster::{LocalCluster, Topology};

use crate::cluster::start_topology;

fn topology() -> Topology {
    let place = |r: &str, dc: &str| (r.to_string(), dc.to_string());
    Topology {
        // The tiebreaker (node 1, in us) has the lowest id: it initializes
        // the group and is likely to win the first election.
        nodes: vec![place("us", "a"), place("eu", "b"), place("eu", "a")],
        groups: vec![GroupConfig {
            id: 1,
            home_region: "eu".into(),
            replicas: vec![1, 2, 3],
            dual_dc: Default::default(),
        }],
    }
}

/// Waits until the running nodes agree group 1 is led by `want`.
async fn wait_leader(cluster: &LocalCluster, want: u64, timeout: Duration) {
    let want = BTreeMap::from([(1, want)]);
    cluster.wait_group_leaders(&want, timeout).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_settles_in_home_dc_a_fails_over_to_b_and_back() {
    let (mut cluster, _dir) = start_topology("geowallet-placement-", &topology());
    // eu/a is node 3.
    wait_leader(&cluster, 3, Duration::from_secs(30)).await;
    let c = Client::connect(
        cluster.endpoints(),
        cluster
            .with_root_tls(ClientConfig {
                retry_budget: Duration::from_secs(20),
                ..Default::default()
            })
            .unwrap(),
    )
    .unwrap();
    let account = Account::new(9, "EUR");
    c.open(&Tx::new("open"), &account).await.unwrap();
    let deposit = |n: u32| {
        let c = c.clone();
        let account = account.clone();
        async move {
            c.credit(&Tx::new(format!("d{n}")), &account, 1, CreditKind::Deposit)
                .await
                .map(|r| r.balance.available)
        }
    };
    assert_eq!(deposit(1).await.unwrap(), 1);

    cluster.kill(3).unwrap();
    let killed = Instant::now();
    assert_eq!(deposit(2).await.unwrap(), 2);
    eprintln!(
        "datacenter eu/a killed: first successful write after {:?}",
        killed.elapsed()
    );
    // Never the tiebreaker while eu/b is healthy.
    wait_leader(&cluster, 2, Duration::from_secs(30)).await;
    assert_eq!(deposit(3).await.unwrap(), 3);

    cluster.spawn(3).unwrap();
    wait_leader(&cluster, 3, Duration::from_secs(30)).await;
    assert_eq!(deposit(4).await.unwrap(), 4);
    let b = c.balance(&account).await.unwrap();
    assert_eq!(b.available, 4, "every acknowledged deposit, once");
    cluster.stop_all();
}
