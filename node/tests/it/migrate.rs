//! Wallets moving between shard groups on real processes: the geo shape
//! (eu and us, one group each, the directory on all five nodes), moves
//! driven through `Client::migrate` while a writer debits the player.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use geowallet_client::{Account, Client, ClientConfig, CreditKind, DebitKind, Error, Receipt, Tx};
use geowallet_node::local_cluster::{LocalCluster, Topology};

use crate::cluster::start_topology;

fn client(cluster: &LocalCluster, region: &str, group: u64) -> Client {
    let config = ClientConfig {
        region: region.into(),
        group,
        retry_budget: Duration::from_secs(20),
        ..Default::default()
    };
    Client::connect(cluster.endpoints(), config).unwrap()
}

/// Every group's books balance on their own (transit counts), and the
/// players' money over both groups plus the money in transit is what the
/// gateway let in.
async fn books(cluster: &LocalCluster, currency: &str) -> (i128, i128) {
    let mut players = 0;
    let mut transit_and_house = 0;
    for group in [1, 2] {
        let audit = client(cluster, "eu", group).audit(&[]).await.unwrap();
        let t = audit.totals.get(currency).copied().unwrap_or_default();
        assert_eq!(t.players + t.system, 0, "group {group}'s books: {t:?}");
        players += t.players;
        transit_and_house += t.system;
    }
    (players, transit_and_house)
}

/// What the writer saw.
#[derive(Default)]
struct Seen {
    acked: Vec<(Tx, Receipt)>,
    unknown: Vec<Tx>,
}

async fn debits(c: Client, account: Account, stop: Arc<AtomicBool>) -> Seen {
    let mut seen = Seen::default();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let tx = Tx::new(format!("bet-{n}"));
        match c.debit(&tx, &account, 1, DebitKind::Bet).await {
            Ok(r) => seen.acked.push((tx, r)),
            Err(Error::Indeterminate { .. } | Error::Unavailable { .. } | Error::Moving { .. }) => {
                seen.unknown.push(tx)
            }
            Err(e) => panic!("debit {n}: {e}"),
        }
    }
    seen
}

// A player's wallet moves eu → us → eu ... 20 times while a writer debits
// it: every acknowledged debit applied once, the balance exact, a hold
// opened in eu captured in us, a debit acknowledged before the moves
// answers its first receipt after them, and both groups' books balance at
// the end with nothing left in transit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_follows_its_player_back_and_forth_under_debits() {
    let (mut cluster, _dir) = start_topology("geowallet-migrate-", &Topology::geo(1));
    let eu = client(&cluster, "eu", 0);
    let player = 7;
    let account = Account::new(player, "EUR");
    eu.open(&Tx::new("open"), &account).await.unwrap();
    eu.credit(
        &Tx::new("deposit"),
        &account,
        1_000_000,
        CreditKind::Deposit,
    )
    .await
    .unwrap();
    let first = Tx::new("first-bet");
    let first_receipt = eu
        .debit(&first, &account, 10, DebitKind::Bet)
        .await
        .unwrap();
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let hold_until = now_ns + 3_600_000_000_000;
    eu.hold(&Tx::new("hold"), &account, "h1", 500, hold_until)
        .await
        .unwrap();
    let placed = eu.placement_of(player).await.unwrap().unwrap();
    assert_eq!((placed.group, placed.home_region.as_str()), (1, "eu"));

    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(debits(eu.clone(), account.clone(), stop.clone()));
    let mover = client(&cluster, "us", 0);
    let mut epoch = placed.epoch;
    let mut took = Vec::new();
    for n in 0..20 {
        // Let the writer get debits through in each group.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let region = if n % 2 == 0 { "us" } else { "eu" };
        let started = std::time::Instant::now();
        let m = mover
            .migrate(player, region)
            .await
            .unwrap_or_else(|e| panic!("move {n} to {region}: {e}"));
        took.push(started.elapsed());
        assert!(m.moved, "move {n}");
        assert_eq!(m.home_region, region);
        assert_eq!(m.group, if region == "us" { 2 } else { 1 });
        assert_eq!(m.epoch, epoch + 1, "move {n}");
        epoch = m.epoch;
        if n == 0 {
            // Opened in eu, captured in us.
            let captured = mover
                .capture(
                    &Tx::new("capture"),
                    &account,
                    "h1",
                    Some(300),
                    DebitKind::Bet,
                )
                .await
                .unwrap();
            assert_eq!(captured.balance.held, 200);
        }
        // Asking again moves nothing.
        let again = mover.migrate(player, region).await.unwrap();
        assert!(!again.moved);
        assert_eq!(again.epoch, epoch);
    }
    stop.store(true, Ordering::Relaxed);
    let seen = writer.await.unwrap();
    took.sort();
    eprintln!(
        "20 moves: median {:?}, max {:?}; {} debits acknowledged, {} unknown",
        took[10],
        took[19],
        seen.acked.len(),
        seen.unknown.len()
    );
    assert!(
        seen.acked.len() > 20,
        "the writer got {} debits through",
        seen.acked.len()
    );

    // A retry of a debit applied before the moves answers its first receipt.
    let again = eu
        .debit(&first, &account, 10, DebitKind::Bet)
        .await
        .unwrap();
    assert_eq!(again, first_receipt);
    for (tx, receipt) in seen.acked.iter().step_by(7) {
        let again = eu.debit(tx, &account, 1, DebitKind::Bet).await.unwrap();
        assert_eq!(&again, receipt, "retry of {}", tx.id);
    }
    // Unknown outcomes are settled by retrying with the same tx.
    let mut applied = seen.acked.len() as u64;
    for tx in &seen.unknown {
        match eu.debit(tx, &account, 1, DebitKind::Bet).await {
            Ok(_) => applied += 1,
            Err(e) => panic!("settling {}: {e}", tx.id),
        }
    }
    // The rest of the hold is released back in eu.
    let released = eu
        .release(&Tx::new("release"), &account, "h1")
        .await
        .unwrap();
    assert_eq!(released.balance.held, 0);
    let balance = eu.balance(&account).await.unwrap();
    assert_eq!(balance.available, 1_000_000 - 10 - 300 - applied);
    let (players, _) = books(&cluster, "EUR").await;
    assert_eq!(players, i128::from(balance.available));
    let placement = eu.placement_of(player).await.unwrap().unwrap();
    assert_eq!((placement.group, placement.epoch), (1, epoch));
    cluster.stop_all();
}
