//! Many shard groups on one set of node processes: each group is its own
//! Raft group and ledger over the node's one RocksDB, addressed by group id.

use std::time::{Duration, Instant};

use geowallet_client::{Account, Client, ClientConfig, Error, Tx};
use geowallet_node::config::GroupConfig;
use geowallet_node::local_cluster::{LocalCluster, Topology};

use crate::cluster::start_topology;
use crate::ctl::{ctl, ctl_at};

/// Nodes 1 and 2 in `eu` (datacenters a and b), node 3 in `us`; groups 1
/// (home eu) and 2 (home us) on every node, group 3 on nodes 2 and 3 only.
fn topology() -> Topology {
    let place = |r: &str, dc: &str| (r.to_string(), dc.to_string());
    let group = |id, home: &str, replicas: &[u64]| GroupConfig {
        id,
        home_region: home.into(),
        replicas: replicas.to_vec(),
        dual_dc: Default::default(),
    };
    Topology {
        nodes: vec![place("eu", "a"), place("eu", "b"), place("us", "a")],
        groups: vec![
            group(1, "eu", &[1, 2, 3]),
            group(2, "us", &[1, 2, 3]),
            group(3, "eu", &[2, 3]),
        ],
    }
}

/// A client of `cluster` (as root) that knows only `seeds`.
fn client_of(cluster: &LocalCluster, seeds: Vec<String>, group: u64, region: &str) -> Client {
    let config = ClientConfig {
        group,
        region: region.into(),
        retry_budget: Duration::from_secs(20),
        ..Default::default()
    };
    Client::connect(seeds, cluster.with_root_tls(config).unwrap()).unwrap()
}

fn client(cluster: &LocalCluster, group: u64, region: &str) -> Client {
    client_of(cluster, cluster.endpoints(), group, region)
}

/// Waits until every group serves a linearizable read.
async fn wait_for_groups(cluster: &LocalCluster, groups: &[u64], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    for g in groups {
        let c = client(cluster, *g, "eu");
        loop {
            match c.balance(&Account::new(0, "EUR")).await {
                Ok(_) | Err(Error::UnknownAccount { .. }) => break,
                Err(e) if Instant::now() > deadline => panic!("group {g} has no leader: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

async fn credit(c: &Client, player: u64, tx: &str, amount: u64) -> u64 {
    credit_tx(c, player, &Tx::new(tx), amount).await
}

async fn credit_tx(c: &Client, player: u64, tx: &Tx, amount: u64) -> u64 {
    let r = c
        .credit(
            tx,
            &Account::new(player, "EUR"),
            amount,
            geowallet_client::CreditKind::Deposit,
        )
        .await
        .unwrap_or_else(|e| panic!("credit {}: {e}", tx.id));
    r.balance.available
}

fn placement_of(cluster: &LocalCluster, player: u64) -> u64 {
    let (code, out, err) = ctl(
        cluster,
        &["--json", "placement", "--player", &player.to_string()],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["placed"], true, "{v}");
    assert_eq!(v["epoch"], 1, "{v}");
    v["group"].as_u64().unwrap()
}

// Proves a transfer to a player of another group applies (the payer's
// group coordinates it with the payee's), and leaves the payer's route
// alone: an audit of both players and the payer's next debit go straight
// to their groups. (A refusal naming the payee's group once poisoned the
// payer's cached route; cross-group transfers were then refused
// `cross_group` until issue #10 made them two-phase transfers.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_across_groups_applies_and_leaves_routes_alone() {
    let (cluster, _dir) = start_topology("geowallet-cross-", &topology());
    wait_for_groups(&cluster, &[1, 2, 3], Duration::from_secs(30)).await;
    let eu = client(&cluster, 0, "eu");
    let us = client(&cluster, 0, "us");
    let (payer, payee) = (Account::new(7, "EUR"), Account::new(8, "EUR"));
    eu.open(&Tx::new("open-7"), &payer).await.expect("open 7");
    us.open(&Tx::new("open-8"), &payee).await.expect("open 8");
    assert_ne!(
        eu.placement_of(7).await.unwrap().unwrap().group,
        us.placement_of(8).await.unwrap().unwrap().group
    );
    assert_eq!(credit(&eu, 7, "dep-7", 100).await, 100);
    let moved = eu
        .transfer(&Tx::new("x-7-8"), &payer, &payee, 40)
        .await
        .expect("a transfer across groups");
    assert_eq!(moved.balance.available, 60);
    assert_eq!(moved.counterpart.map(|b| b.available), Some(40));
    let audit = eu
        .audit(&[payer.clone(), payee.clone()])
        .await
        .expect("audit");
    let available: Vec<Option<u64>> = audit
        .balances
        .iter()
        .map(|(_, b)| b.map(|b| b.available))
        .collect();
    assert_eq!(available, vec![Some(60), Some(40)]);
    let debited = eu
        .debit(
            &Tx::new("bet-7"),
            &payer,
            30,
            geowallet_client::DebitKind::Bet,
        )
        .await
        .expect("debit");
    assert_eq!(debited.balance.available, 30);
}

// Three shard groups and the directory over three node processes: opening
// a wallet places the player in a group homed in the caller's region
// (spread over that region's groups), every later command is routed to it;
// a command sent to another group is redirected (`wrong_group`) and applies
// once; a node that does not host a group redirects to one that does;
// `ctl status` reports nodes with their region and datacenter and each
// group with its leader and replicas; a killed node is reported down while
// the groups keep taking writes, and after a restart it catches up in every
// group it hosts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_are_placed_by_region_and_routed_to_their_group() {
    let (mut cluster, _dir) = start_topology("geowallet-groups-", &topology());
    wait_for_groups(&cluster, &[1, 2, 3], Duration::from_secs(30)).await;

    let eu = client(&cluster, 0, "eu");
    let us = client(&cluster, 0, "us");
    let mut eu_groups = std::collections::BTreeSet::new();
    for player in 1..=30u64 {
        let (c, region) = if player <= 20 {
            (&eu, "eu")
        } else {
            (&us, "us")
        };
        c.open(
            &Tx::new(format!("open-{player}")),
            &Account::new(player, "EUR"),
        )
        .await
        .unwrap_or_else(|e| panic!("open {player} from {region}: {e}"));
        let group = placement_of(&cluster, player);
        if region == "eu" {
            assert!(
                group == 1 || group == 3,
                "eu player {player} in group {group}"
            );
            eu_groups.insert(group);
        } else {
            assert_eq!(group, 2, "us player {player}");
        }
        assert_eq!(
            credit(c, player, &format!("dep-{player}"), player).await,
            player
        );
    }
    assert_eq!(eu_groups.len(), 2, "eu players spread over both eu groups");
    for player in 1..=30u64 {
        let b = eu.balance(&Account::new(player, "EUR")).await.unwrap();
        assert_eq!(b.available, player, "player {player}");
    }

    // Sent to group 2 explicitly, an eu player's deposit is redirected to
    // its group and applies there, once.
    let wrong = client(&cluster, 2, "eu");
    let tx = Tx::new("dep-1-b");
    assert_eq!(credit_tx(&wrong, 1, &tx, 100).await, 101);
    assert_eq!(
        credit_tx(&wrong, 1, &tx, 100).await,
        101,
        "a retry changes nothing"
    );
    let (code, out, err) = ctl(
        &cluster,
        &[
            "--group",
            "2",
            "--json",
            "balance",
            "--player",
            "1",
            "--currency",
            "EUR",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"available\":101"), "{out}");
    // A wallet never opened is placed nowhere: refused, not created.
    let (code, _, err) = ctl(
        &cluster,
        &[
            "--group",
            "1",
            "credit",
            "--player",
            "999",
            "--currency",
            "EUR",
            "--amount",
            "5",
            "--tx",
            "ghost",
            "--kind",
            "deposit",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("unknown_account"), "{err}");

    // Node 1 does not host group 3: asked alone, it redirects to a replica.
    let in_3 = (1..=20u64)
        .find(|p| placement_of(&cluster, *p) == 3)
        .unwrap();
    let only_node_1 = client_of(&cluster, vec![cluster.node(1).endpoint.clone()], 0, "eu");
    let b = only_node_1
        .balance(&Account::new(in_3, "EUR"))
        .await
        .unwrap();
    assert!(b.available >= in_3);

    let (code, out, err) = ctl(&cluster, &["--json", "status"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "{v}");
    for (n, (region, dc)) in nodes.iter().zip(topology().nodes) {
        assert_eq!(
            (n["region"].as_str(), n["dc"].as_str()),
            (Some(&*region), Some(&*dc))
        );
        assert_eq!(n["up"], true);
    }
    let groups = v["groups"].as_array().unwrap();
    let ids: Vec<u64> = groups.iter().map(|g| g["id"].as_u64().unwrap()).collect();
    assert_eq!(
        ids,
        vec![0, 1, 2, 3],
        "the directory and three shard groups: {v}"
    );
    assert_eq!(groups[2]["home_region"], "us");
    for g in groups {
        assert!(g["leader"].as_u64().unwrap() > 0, "{g}");
        assert!(g["commit_index"].as_u64().unwrap() > 0, "{g}");
    }
    let replicas: Vec<u64> = groups[3]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert_eq!(replicas, vec![2, 3]);
    assert_eq!(groups[3]["replicas"][0]["dc"], "b");

    // An operator hands group 3 to node 3 (the tiebreaker-ranked voter:
    // placement will later hand it back to node 2); node 1 is no voter of it.
    let (code, out, err) = ctl(
        &cluster,
        &["--group", "3", "--json", "transfer-leader", "--node", "3"],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (v["group"].as_u64(), v["leader"].as_u64()),
        (Some(3), Some(3)),
        "{v}"
    );
    let (code, _, err) = ctl(
        &cluster,
        &["--group", "3", "transfer-leader", "--node", "1"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("not a voter of group 3"), "{err}");

    // Kill node 1: every group still has a majority and takes writes.
    cluster.kill(1).unwrap();
    for player in [1u64, 2, 21] {
        let c = if player > 20 { &us } else { &eu };
        let before = c
            .balance(&Account::new(player, "EUR"))
            .await
            .unwrap()
            .available;
        let after = credit(c, player, &format!("dep2-{player}"), 1).await;
        assert_eq!(after, before + 1, "player {player} after node 1 died");
    }
    let (code, out, _) = ctl(&cluster, &["--json", "status"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["nodes"][0]["up"], false, "{v}");
    assert_eq!(v["nodes"][0]["region"], "eu", "{v}");

    // Restarted, node 1 catches up in every group it hosts.
    cluster.spawn(1).unwrap();
    let probe = cluster.client(ClientConfig::default()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let committed = |s: &geowallet_client::Status, g: u64| {
            s.groups
                .iter()
                .find(|x| x.id == g)
                .map(|x| x.committed_index)
        };
        let other = probe.status_of(&cluster.node(2).endpoint).await;
        let mine = probe.status_of(&cluster.node(1).endpoint).await;
        let caught_up = match (other, mine) {
            (Ok(other), Ok(mine)) => [0, 1, 2].iter().all(|g| {
                let applied = mine
                    .groups
                    .iter()
                    .find(|x| x.id == *g)
                    .map(|x| x.applied_index);
                applied.is_some() && applied >= committed(&other, *g)
            }),
            _ => false,
        };
        if caught_up {
            break;
        }
        assert!(Instant::now() < deadline, "node 1 did not catch up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.stop_all();
}
// `ctl status` exits 3 (unavailable) when no node answers.
#[test]
fn ctl_status_exits_3_when_no_node_answers() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, _, err) = ctl_at(&format!("127.0.0.1:{port}"), None, &["status"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no node answered"), "{err}");
}

// A write to a node nothing listens on was never sent: the client says
// `unavailable` (nothing changed), not `indeterminate`; decided from the
// connect error's kind on a real socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_never_sent() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = Client::connect(
        [format!("127.0.0.1:{port}")],
        ClientConfig {
            group: 1,
            retry_budget: Duration::from_millis(300),
            ..Default::default()
        },
    )
    .unwrap();
    let r = c
        .credit(
            &Tx::new("nowhere"),
            &Account::new(1, "EUR"),
            1,
            geowallet_client::CreditKind::Deposit,
        )
        .await;
    assert!(matches!(r, Err(Error::Unavailable { .. })), "{r:?}");
}

// A node that hosts only the directory (no shard group) restarts: its
// directory log is what tells it apart from a wiped node (it was refused
// as wiped, having no shard-group log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_only_node_restarts() {
    let place = |r: &str, dc: &str| (r.to_string(), dc.to_string());
    let topology = Topology {
        nodes: vec![
            place("eu", "a"),
            place("eu", "b"),
            place("us", "a"),
            place("us", "b"),
        ],
        groups: vec![GroupConfig {
            id: 1,
            home_region: "eu".into(),
            replicas: vec![1, 2, 3],
            dual_dc: Default::default(),
        }],
    };
    let (mut cluster, _dir) = start_topology("geowallet-dironly-", &topology);
    let eu = client(&cluster, 0, "eu");
    eu.open(&Tx::new("open-1"), &Account::new(1, "EUR"))
        .await
        .unwrap();
    let probe = cluster.client(ClientConfig::default()).unwrap();
    let directory_applied = |s: &geowallet_client::Status| {
        s.groups
            .iter()
            .find(|g| g.id == 0)
            .map_or(0, |g| g.applied_index)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while probe
        .status_of(&cluster.node(4).endpoint)
        .await
        .map_or(0, |s| directory_applied(&s))
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "node 4 never applied the directory"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.kill(4).unwrap();
    cluster.spawn(4).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(s) = probe.status_of(&cluster.node(4).endpoint).await
            && directory_applied(&s) > 0
        {
            break;
        }
        let exited = cluster.wait_exit(4, Duration::from_millis(1)).is_ok();
        assert!(
            !exited,
            "node 4 refused to restart: {}",
            std::fs::read_to_string(cluster.node(4).log_path()).unwrap_or_default()
        );
        assert!(Instant::now() < deadline, "node 4 did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.stop_all();
}
