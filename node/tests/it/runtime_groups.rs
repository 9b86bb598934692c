//! Shard groups added to and removed from running nodes (`GroupHost`),
//! over real RocksDB and real gRPC servers on loopback.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use geowallet_ledger::{AccountId, Command, Currency, PlayerId, Request, TxId};
use geowallet_node::group_host::{GroupHost, GroupSpec, HostConfig};
use geowallet_proto::raft::raft_service_server::RaftServiceServer;
use geowallet_raft::{ClockQuorum, MessageLimits, NodeInfo, WallClock};
use geowallet_storage::{Db, GroupId};
use openraft::async_runtime::WatchReceiver;

const GROUP: GroupId = GroupId(7);

async fn host(
    id: u64,
    nodes: &BTreeMap<u64, NodeInfo>,
    dir: &std::path::Path,
) -> Arc<GroupHost<geowallet_storage::RocksEngine>> {
    let config = openraft::Config {
        heartbeat_interval: 50,
        election_timeout_min: 300,
        election_timeout_max: 600,
        ..geowallet_raft::base_config()
    };
    let host = GroupHost::new(
        HostConfig {
            node_id: id,
            nodes: nodes.clone(),
            topology: (1..=GROUP.0).map(|g| (GroupId(g), vec![1, 2, 3])).collect(),
            home_regions: (1..=GROUP.0)
                .map(|g| (GroupId(g), "local".into()))
                .collect(),
            move_policy: None,
            raft: Arc::new(config.validate().unwrap()),
            limits: MessageLimits::default(),
            clocks: ClockQuorum::new(id, WallClock::default(), Duration::from_secs(1)),
            snapshot_root: dir.join(format!("snap{id}")),
            dual_dc_wait: Duration::from_secs(1),
            dc_down_after: Duration::from_millis(300),
            placement_interval: Duration::from_millis(150),
            placement_stable_for: Duration::from_millis(600),
            placement_transfer_gap: Duration::from_secs(3),
            dial: None,
        },
        Db::open(&dir.join(format!("db{id}"))).unwrap(),
    );
    let addr = nodes[&id].addr.parse().unwrap();
    let service = RaftServiceServer::new(host.raft_service());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve(addr)
            .await
    });
    host
}

/// Three hosts on loopback (eu/a, eu/b, eu/a), serving Raft, no group yet.
async fn three_hosts(dir: &std::path::Path) -> Vec<Arc<GroupHost<geowallet_storage::RocksEngine>>> {
    let mut ports = geowallet_node::local_cluster::PortPicker::default();
    let nodes: BTreeMap<u64, NodeInfo> = (1..=3)
        .map(|id| {
            let info = NodeInfo {
                addr: format!("127.0.0.1:{}", ports.pick().unwrap()),
                region: "eu".into(),
                dc: if id == 2 { "b" } else { "a" }.into(),
            };
            (id, info)
        })
        .collect();
    drop(ports);
    let mut hosts = Vec::new();
    for id in 1..=3 {
        hosts.push(host(id, &nodes, dir).await);
    }
    hosts
}

fn spec() -> GroupSpec {
    spec_of(GROUP)
}

fn spec_of(id: GroupId) -> GroupSpec {
    GroupSpec {
        id,
        home_region: "eu".into(),
        replicas: vec![1, 2, 3],
        initializer: None,
        dual_dc: Default::default(),
    }
}

fn open(player: u64) -> Request {
    Request {
        tx: TxId::new(format!("open-{player}")).unwrap(),
        created_at_ns: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
        command: Command::OpenAccount {
            account: AccountId {
                player: PlayerId(player),
                currency: Currency::parse("EUR").unwrap(),
            },
        },
    }
}

/// Proposes `request` on whichever host leads group 7, retrying through
/// elections.
async fn propose(hosts: &[Arc<GroupHost<geowallet_storage::RocksEngine>>], request: Request) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for h in hosts {
            if let Some(g) = h.group(GROUP)
                && g.raft.is_leader()
                && let Ok(outcomes) = g.proposer.propose(vec![request.clone()]).await
            {
                assert!(outcomes[0].is_ok(), "{:?}", outcomes[0]);
                return;
            }
        }
        assert!(Instant::now() < deadline, "no leader of group 7 committed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn applied(h: &GroupHost<geowallet_storage::RocksEngine>) -> u64 {
    h.group(GROUP)
        .map(|g| {
            let m = g.raft.metrics();
            let m = m.borrow_watched();
            m.last_applied.as_ref().map_or(0, |l| l.index)
        })
        .unwrap_or(0)
}

// Group 7 is added to three running hosts, elects a leader and commits;
// removed from host 3, host 3 stops serving it while hosts 1 and 2 keep
// committing; added back, host 3 resumes from its rows and catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_added_and_removed_at_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = three_hosts(dir.path()).await;
    for h in &hosts {
        assert!(h.groups().is_empty());
        h.add_group(spec()).await.unwrap();
    }
    assert!(
        hosts[0].add_group(spec()).await.is_err(),
        "a group is added once"
    );
    propose(&hosts, open(1)).await;

    assert!(hosts[2].remove_group(GROUP).await);
    assert!(hosts[2].group(GROUP).is_none());
    propose(&hosts[..2], open(2)).await;
    propose(&hosts[..2], open(3)).await;

    hosts[2].add_group(spec()).await.unwrap();
    let target = applied(&hosts[0]).max(applied(&hosts[1]));
    let deadline = Instant::now() + Duration::from_secs(20);
    while applied(&hosts[2]) < target {
        assert!(Instant::now() < deadline, "host 3 did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for h in &hosts {
        h.shutdown(Duration::from_secs(5)).await;
    }
}

/// (term, leader) of every group on `h`.
fn terms(h: &GroupHost<geowallet_storage::RocksEngine>) -> Vec<(u64, Option<u64>)> {
    h.groups()
        .iter()
        .map(|g| {
            let m = g.raft.metrics();
            let m = m.borrow_watched();
            (m.current_term, m.current_leader)
        })
        .collect()
}

// Seven groups led by one host: the host beats for all of them at once, so
// each peer gets their heartbeats in one call per tick (calls do not grow
// with the number of groups), and those heartbeats alone keep every group's
// leader in place (openraft's own per-group timers are off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_of_all_groups_share_one_call_per_peer() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = three_hosts(dir.path()).await;
    let groups: Vec<GroupId> = (1..=GROUP.0).map(GroupId).collect();
    for h in &hosts {
        for g in &groups {
            h.add_group(GroupSpec {
                initializer: Some(1),
                ..spec_of(*g)
            })
            .await
            .unwrap();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while terms(&hosts[0]).iter().any(|(_, l)| *l != Some(1)) {
        assert!(
            Instant::now() < deadline,
            "host 1 leads every group: {:?}",
            terms(&hosts[0])
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before_terms: Vec<_> = hosts.iter().map(|h| terms(h)).collect();
    let (beats0, calls0) = hosts[0].heartbeat_stats();
    // Idle for five election timeouts: only heartbeats keep the leaders.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (beats, calls) = hosts[0].heartbeat_stats();
    let (beats, calls) = (beats - beats0, calls - calls0);
    assert!(beats > 0, "no heartbeats were sent");
    assert!(
        beats >= 4 * calls,
        "{beats} heartbeats of {} groups took {calls} calls: they are not batched",
        groups.len()
    );
    let after_terms: Vec<_> = hosts.iter().map(|h| terms(h)).collect();
    assert_eq!(
        before_terms, after_terms,
        "an election happened while the leader was beating"
    );
    for h in &hosts {
        h.shutdown(Duration::from_secs(5)).await;
    }
}
