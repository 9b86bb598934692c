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
    cluster.client(config).unwrap()
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
    /// Each acknowledged debit's latency.
    took: Vec<Duration>,
}

async fn debits(c: Client, account: Account, stop: Arc<AtomicBool>) -> Seen {
    let mut seen = Seen::default();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let tx = Tx::new(format!("bet-{n}"));
        let started = std::time::Instant::now();
        match c.debit(&tx, &account, 1, DebitKind::Bet).await {
            Ok(r) => {
                seen.took.push(started.elapsed());
                seen.acked.push((tx, r));
            }
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
    let mut debits = seen.took.clone();
    debits.sort();
    let at = |pct: usize| debits[(debits.len() * pct / 100).min(debits.len() - 1)];
    eprintln!(
        "20 moves: median {:?}, max {:?}; {} debits acknowledged (p50 {:?}, p99 {:?}, max {:?}), {} unknown",
        took[10],
        took[19],
        seen.acked.len(),
        at(50),
        at(99),
        debits[debits.len() - 1],
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
    // The journal: each group holds the lines it wrote; merged by seq
    // they number 1, 2, ... without a gap, every debit once, a move-out and
    // a move-in per move.
    let mut lines = Vec::new();
    for group in [1, 2] {
        let mut from = geowallet_client::JournalCursor::START;
        loop {
            let page = eu
                .journal_in_group(group, &account, from, 1000)
                .await
                .unwrap();
            assert!(page.entries.iter().all(|e| e.group == group));
            lines.extend(page.entries);
            match page.next {
                Some(next) => from = next,
                None => break,
            }
        }
    }
    lines.sort_by_key(|e| e.seq);
    let seqs: Vec<u64> = lines.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=lines.len() as u64).collect::<Vec<_>>());
    let count = |kind: &str| lines.iter().filter(|e| e.kind == kind).count();
    assert_eq!((count("move_out"), count("move_in")), (20, 20));
    let bets: std::collections::BTreeSet<&str> = lines
        .iter()
        .filter(|e| e.tx_id.starts_with("bet-"))
        .map(|e| e.tx_id.as_str())
        .collect();
    assert_eq!(bets.len() as u64, applied);
    assert_eq!(
        lines.iter().filter(|e| e.tx_id.starts_with("bet-")).count() as u64,
        applied,
        "a debit journaled twice"
    );
    // `journal` (what `ctl journal` reads) follows the wallet: pages of 50
    // from where the player is now give the same lines, every group's.
    let mut paged = Vec::new();
    let mut from = geowallet_client::JournalCursor::START;
    loop {
        let page = eu.journal(&account, from, 50).await.unwrap();
        paged.extend(page.entries);
        match page.next {
            Some(next) => from = next,
            None => break,
        }
    }
    assert_eq!(paged, lines, "the journal read through the player's group");
    // The nodes' status counts the moves they drove.
    let mut completed = 0;
    for endpoint in cluster.endpoints() {
        let status = eu.status_of(&endpoint).await.unwrap();
        let moves = status.moves.expect("a geo node reports its moves");
        assert_eq!((moves.in_flight, moves.returned), (0, 0), "{endpoint}");
        completed += moves.completed;
    }
    assert_eq!(completed, 20);
    cluster.stop_all();
}

// The leader taking a step of a move dies right after it (abort, as a
// SIGKILL): the source's leader after its Leave, after the target's
// Arrive, after the directory's Repoint; the target's leader after
// committing the Arrive; the directory's leader after committing the
// Repoint. Each time the move completes (resumed by the next leader from
// the log, or by asking again), exactly one group holds the wallet with
// its money and its open hold, the player can move back, and every
// group's books balance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_dying_at_each_step_of_a_move_leaves_one_owner() {
    let (mut cluster, _dir, crash) =
        crate::cluster::start_geo_with_crash_points("geowallet-move-crash-");
    let eu = client(&cluster, "eu", 0);
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let points = ["leave", "arrive", "repoint", "arrived", "repointed"];
    for i in 0..points.len() {
        let account = Account::new(300 + i as u64, "EUR");
        eu.open(&Tx::new(format!("open-{i}")), &account)
            .await
            .unwrap();
        eu.credit(
            &Tx::new(format!("dep-{i}")),
            &account,
            1_000,
            CreditKind::Deposit,
        )
        .await
        .unwrap();
        let until = now_ns + 3_600_000_000_000;
        eu.hold(&Tx::new(format!("hold-{i}")), &account, "h", 100, until)
            .await
            .unwrap();
    }
    let mover = client(&cluster, "us", 0);
    for (i, point) in points.iter().enumerate() {
        let player = 300 + i as u64;
        let account = Account::new(player, "EUR");
        let file = crash.join(format!("{player}-{point}"));
        std::fs::write(&file, b"").unwrap();
        // The call may come back either way: the node serving it died.
        let first = mover.migrate(player, "us").await;
        assert!(!file.exists(), "{point}: no node passed the point");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let dead = loop {
            let gone = cluster.exited().unwrap();
            if !gone.is_empty() || std::time::Instant::now() > deadline {
                break gone;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(dead.len(), 1, "{point}: one node died ({dead:?})");
        cluster.spawn(dead[0]).unwrap();
        // Done by the next leader, or by asking again.
        let deadline = std::time::Instant::now() + Duration::from_secs(40);
        let moved = loop {
            match mover.migrate(player, "us").await {
                Ok(m) => break m,
                Err(e) if std::time::Instant::now() < deadline => {
                    eprintln!("{point}: asking again after: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("{point}: the move never completed: {e} (first: {first:?})"),
            }
        };
        assert_eq!((moved.group, moved.epoch), (2, 2), "{point}");
        // One owner, with the money and the hold.
        let bet = mover
            .debit(&Tx::new(format!("bet-{i}")), &account, 1, DebitKind::Bet)
            .await
            .unwrap_or_else(|e| panic!("{point}: bet after the move: {e}"));
        assert_eq!((bet.balance.available, bet.balance.held), (899, 100));
        let captured = mover
            .capture(
                &Tx::new(format!("cap-{i}")),
                &account,
                "h",
                None,
                DebitKind::Bet,
            )
            .await
            .unwrap();
        assert_eq!(
            (captured.balance.available, captured.balance.held),
            (899, 0)
        );
        // And back.
        // (`moved` may be false: a call retried after the node serving it
        // lost its group finds the move already done; the epoch tells.)
        let back = mover.migrate(player, "eu").await.unwrap();
        assert_eq!((back.group, back.epoch), (1, 3), "{point}");
        let balance = eu.balance(&account).await.unwrap();
        assert_eq!((balance.available, balance.held), (899, 0), "{point}");
    }
    let (players, _) = books(&cluster, "EUR").await;
    assert_eq!(players, 899 * points.len() as i128);
    cluster.stop_all();
}

// The scriptable contract: `ctl migrate --player P --region R` exits 0
// once the move completed and `ctl --json placement --player P` then has
// `group`, `home_region` and `epoch`; a move that cannot happen exits
// non-zero with one line on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_migrate_and_placement_contract() {
    use crate::ctl::ctl;
    let (mut cluster, _dir) = start_topology("geowallet-migrate-ctl-", &Topology::geo(1));
    let w = ["--player", "41", "--currency", "EUR"];
    let open = [&["--region", "eu", "open"][..], &w, &["--tx", "o"]].concat();
    let (code, _, err) = ctl(&cluster, &open);
    assert_eq!(code, 0, "{err}");
    let placement = |cluster: &LocalCluster| {
        let (code, out, err) = ctl(cluster, &["--json", "placement", "--player", "41"]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()
    };
    let p = placement(&cluster);
    assert_eq!(
        (&p["group"], &p["home_region"], &p["epoch"]),
        (&1.into(), &"eu".into(), &1.into())
    );
    // Exit 3 (unavailable: a group between leaders, e.g. while leader
    // placement hands over) means "ask again" by the contract; the move
    // resumes by itself, so asking again must finish it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let (code, out, err) = loop {
        let (code, out, err) = ctl(&cluster, &["migrate", "--player", "41", "--region", "us"]);
        if code != 3 || std::time::Instant::now() > deadline {
            break (code, out, err);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    assert_eq!(code, 0, "{err}");
    // "moved" or, when an earlier ask finished the move, "already".
    assert!(out.contains("group 2"), "{out}");
    let p = placement(&cluster);
    assert_eq!(
        (&p["group"], &p["home_region"], &p["epoch"]),
        (&2.into(), &"us".into(), &2.into())
    );
    let (code, out, err) = ctl(
        &cluster,
        &["--json", "migrate", "--player", "41", "--region", "us"],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!((&v["group"], &v["moved"]), (&2.into(), &false.into()));
    for (args, says) in [
        (
            &["migrate", "--player", "41", "--region", "mars"][..],
            "no_group_in_region",
        ),
        (
            &["migrate", "--player", "999", "--region", "us"][..],
            "unknown_account",
        ),
        (&["migrate", "--player", "41"][..], "needs --region"),
    ] {
        let (code, out, err) = ctl(&cluster, args);
        assert_ne!(code, 0, "{args:?}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    cluster.stop_all();
}

// The policy on real processes: a player whose wallet is in eu plays from
// us; after a window of calls (80% of the last 20 from us) the eu leader
// moves the wallet by itself while the player keeps playing, nothing is
// lost, and the wallet does not go straight back when the player returns
// to eu (the cooldown starts where it lands).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_follows_a_player_who_plays_from_another_region() {
    let (mut cluster, _dir) = start_topology("geowallet-follow-", &Topology::geo(1));
    let eu = client(&cluster, "eu", 0);
    let us = client(&cluster, "us", 0);
    let account = Account::new(51, "EUR");
    eu.open(&Tx::new("open"), &account).await.unwrap();
    eu.credit(&Tx::new("dep"), &account, 1_000, CreditKind::Deposit)
        .await
        .unwrap();
    let bet = |c: &Client, n: u32| {
        let (c, account) = (c.clone(), account.clone());
        async move {
            c.debit(&Tx::new(format!("bet-{n}")), &account, 1, DebitKind::Bet)
                .await
                .unwrap_or_else(|e| panic!("bet {n}: {e}"))
        }
    };
    let mut n = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let placed = loop {
        n += 1;
        bet(&us, n).await;
        let p = us.placement_of(51).await.unwrap().unwrap();
        if p.group == 2 {
            break p;
        }
        assert!(std::time::Instant::now() < deadline, "never moved");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((placed.home_region.as_str(), placed.epoch), ("us", 2));
    // The open and the deposit came from eu: the window of 20 filled with
    // the 18th bet from us (18 of 20, 90%).
    assert!(n >= 18, "moved after {n} bets: before the window filled");
    // Back in eu for a whole window: the wallet stays in us for now.
    for _ in 0..40 {
        n += 1;
        bet(&eu, n).await;
    }
    let p = eu.placement_of(51).await.unwrap().unwrap();
    assert_eq!((p.group, p.epoch), (2, 2), "moved back during the cooldown");
    let balance = us.balance(&account).await.unwrap();
    assert_eq!(balance.available, 1_000 - u64::from(n));
    cluster.stop_all();
}

// A wallet whose rows would not fit one log entry (here: 300 tx records
// under a 64 KiB transport limit) is refused `wallet_too_big` before
// anything moves; it keeps working where it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_too_big_for_one_entry_is_refused_and_stays() {
    let dir = tempfile::Builder::new()
        .prefix("geowallet-move-big-")
        .tempdir()
        .unwrap();
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_geowallet"));
    let tuning = geowallet_node::config::RaftTuning {
        message_bytes_max: geowallet_raft::MESSAGE_BYTES_MIN,
        ..crate::cluster::tuning(100_000)
    };
    let mut cluster =
        LocalCluster::prepare_topology(binary, dir.path(), &Topology::geo(1), tuning).unwrap();
    for id in 1..=5 {
        cluster.spawn(id).unwrap();
    }
    let eu = client(&cluster, "eu", 0);
    let account = Account::new(61, "EUR");
    eu.open(&Tx::new("open"), &account).await.unwrap();
    eu.credit(&Tx::new("dep"), &account, 1_000, CreditKind::Deposit)
        .await
        .unwrap();
    for n in 0..300 {
        eu.debit(&Tx::new(format!("b{n}")), &account, 1, DebitKind::Bet)
            .await
            .unwrap();
    }
    let refused = eu.migrate(61, "us").await.unwrap_err();
    assert_eq!(refused.code(), "wallet_too_big", "{refused}");
    let p = eu.placement_of(61).await.unwrap().unwrap();
    assert_eq!((p.group, p.epoch), (1, 1));
    let after = eu
        .debit(&Tx::new("after"), &account, 1, DebitKind::Bet)
        .await
        .unwrap();
    assert_eq!(after.balance.available, 699);
    cluster.stop_all();
}

// A move to a region whose group has lost its quorum (both us nodes
// SIGKILLed) does not start: the target is probed before the wallet leaves
// its group, so the player keeps playing where it is instead of waiting,
// `moving`, for the target to come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_to_a_group_that_cannot_take_it_does_not_start() {
    let (mut cluster, _dir) = start_topology("geowallet-move-probe-", &Topology::geo(1));
    let eu = client(&cluster, "eu", 0);
    let account = Account::new(71, "EUR");
    eu.open(&Tx::new("open"), &account).await.unwrap();
    eu.credit(&Tx::new("dep"), &account, 100, CreditKind::Deposit)
        .await
        .unwrap();
    // Group 2 is n3, n4 (us) and n5: without both us nodes it has no quorum.
    cluster.kill(3).unwrap();
    cluster.kill(4).unwrap();
    let hasty = Client::connect(
        cluster.endpoints(),
        cluster
            .with_root_tls(ClientConfig {
                region: "us".into(),
                retry_budget: Duration::from_secs(5),
                ..Default::default()
            })
            .unwrap(),
    )
    .unwrap();
    let refused = hasty.migrate(71, "us").await.unwrap_err();
    assert_eq!(refused.code(), "unavailable", "{refused}");
    let p = eu.placement_of(71).await.unwrap().unwrap();
    assert_eq!((p.group, p.epoch), (1, 1));
    let quick = Client::connect(
        cluster.endpoints(),
        cluster
            .with_root_tls(ClientConfig {
                region: "eu".into(),
                retry_budget: Duration::from_secs(2),
                ..Default::default()
            })
            .unwrap(),
    )
    .unwrap();
    let bet = quick
        .debit(&Tx::new("bet"), &account, 1, DebitKind::Bet)
        .await
        .expect("the wallet stayed in eu, not moving");
    assert_eq!(bet.balance.available, 99);
    cluster.stop_all();
}
