//! Synchronous dual-datacenter acknowledgement on real processes: a write
//! is acknowledged only once durable in both datacenters of its group's
//! home region; with one datacenter down, `available` groups acknowledge on
//! the majority and report degraded, `strict` groups never acknowledge.

use std::time::{Duration, Instant};

use geowallet_client::{Account, Client, ClientConfig, CreditKind, Error, Tx};
use geowallet_node::config::GroupConfig;
use geowallet_node::dual_dc::DualDcPolicy;
use geowallet_node::local_cluster::{LocalCluster, Topology};

use crate::cluster::start_topology;
use crate::ctl::ctl;

/// Node 1 in eu/a, node 2 in eu/b, node 3 the tiebreaker in us/a (1+1+1).
/// Group 1 (home eu) is `available`, group 2 (home eu) `strict`.
fn topology() -> Topology {
    let place = |r: &str, dc: &str| (r.to_string(), dc.to_string());
    let group = |id, dual_dc| GroupConfig {
        id,
        home_region: "eu".into(),
        replicas: vec![1, 2, 3],
        dual_dc,
    };
    Topology {
        nodes: vec![place("eu", "a"), place("eu", "b"), place("us", "a")],
        groups: vec![
            group(1, DualDcPolicy::Available),
            group(2, DualDcPolicy::Strict),
        ],
    }
}

fn client(cluster: &LocalCluster, budget: Duration) -> Client {
    let config = ClientConfig {
        region: "eu".into(),
        retry_budget: budget,
        ..Default::default()
    };
    cluster.client(config).unwrap()
}

async fn deposit(c: &Client, player: u64, tx: &Tx, amount: u64) -> Result<u64, Error> {
    c.credit(
        tx,
        &Account::new(player, "EUR"),
        amount,
        CreditKind::Deposit,
    )
    .await
    .map(|r| r.balance.available)
}

/// A player the directory places in `group` (both groups are homed in eu).
async fn player_in(c: &Client, group: u64) -> u64 {
    for player in 1..1000 {
        if c.place(player, "eu").await.unwrap().0 == group {
            c.open(
                &Tx::new(format!("open-{player}")),
                &Account::new(player, "EUR"),
            )
            .await
            .unwrap();
            return player;
        }
    }
    panic!("no player placed in group {group}")
}

/// Group `id` as `ctl --json status` reports it.
fn group_status(cluster: &LocalCluster, id: u64) -> serde_json::Value {
    let (code, out, err) = ctl(cluster, &["--json", "status"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("group {id} missing: {v}"))
}

/// Polls until group `id`'s leader reports `degraded == want`, writing
/// to `player` meanwhile (a write is what checks both datacenters).
async fn wait_degraded(cluster: &LocalCluster, c: &Client, player: u64, id: u64, want: bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    loop {
        let g = group_status(cluster, id);
        if g["reported_by_leader"] == true && g["degraded"] == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "group {id} never reported degraded={want}: {g}"
        );
        n += 1;
        let _ = deposit(c, player, &Tx::new(format!("probe-{id}-{want}-{n}")), 1).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// Kill datacenter eu/b (node 2): the available group keeps acknowledging
// and says it is degraded, the strict group acknowledges nothing (the
// client reports indeterminate); once eu/b returns and catches up, the
// available group is no longer degraded and the strict group's retry with
// the same tx id is acknowledged, applied once. Then a strict write
// acknowledged just before datacenter eu/a dies is there afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_wait_for_both_datacenters_or_follow_the_policy() {
    let (mut cluster, _dir) = start_topology("geowallet-dualdc-", &topology());
    let c = client(&cluster, Duration::from_secs(20));
    let (pa, ps) = (player_in(&c, 1).await, player_in(&c, 2).await);
    for p in [pa, ps] {
        assert_eq!(
            deposit(&c, p, &Tx::new(format!("d1-{p}")), 100)
                .await
                .unwrap(),
            100
        );
    }
    assert_eq!(group_status(&cluster, 1)["degraded"], false);
    assert_eq!(group_status(&cluster, 2)["dual_dc"], "strict");

    cluster.kill(2).unwrap();
    let before = c.balance(&Account::new(pa, "EUR")).await.unwrap().available;
    assert_eq!(
        deposit(&c, pa, &Tx::new("d2"), 10).await.unwrap(),
        before + 10
    );
    wait_degraded(&cluster, &c, pa, 1, true).await;

    let short = client(&cluster, Duration::from_secs(3));
    let refused = Tx::new("s-while-down");
    match deposit(&short, ps, &refused, 7).await {
        Err(Error::Indeterminate { .. }) => {}
        other => panic!("strict group acknowledged with eu/b down: {other:?}"),
    }

    cluster.spawn(2).unwrap();
    wait_degraded(&cluster, &c, pa, 1, false).await;
    // The retry is answered from the stored record: applied once.
    let again = deposit(&c, ps, &refused, 7).await.unwrap();
    assert_eq!(again, 107);
    let b = c.balance(&Account::new(ps, "EUR")).await.unwrap();
    assert_eq!(b.available, 107, "applied exactly once");

    // Acknowledged in strict mode, then datacenter eu/a dies at once.
    assert_eq!(deposit(&c, ps, &Tx::new("s-last"), 1).await.unwrap(), 108);
    cluster.kill(1).unwrap();
    let b = c.balance(&Account::new(ps, "EUR")).await.unwrap();
    assert_eq!(b.available, 108, "the acknowledged write survived eu/a");
    cluster.stop_all();
}
