//! Transfers between players of different shard groups on real processes:
//! the geo shape (eu and us, one group each), payers in one group and
//! payees in the other, under load and with leaders dying.

use std::collections::BTreeMap;
use std::time::Duration;

use geowallet_client::{
    Account, Client, ClientConfig, CreditKind, Error, JournalCursor, Receipt, Tx,
};
use geowallet_node::local_cluster::{LocalCluster, Topology};

fn client(cluster: &LocalCluster, region: &str) -> Client {
    let config = ClientConfig {
        region: region.into(),
        retry_budget: Duration::from_secs(30),
        ..Default::default()
    };
    cluster.client(config).unwrap()
}

/// Opens `account` from `c`'s region (which places the player there) and
/// deposits `amount`.
async fn funded(c: &Client, account: &Account, amount: u64) {
    let tag = format!("{}-{}", account.player, account.currency);
    c.open(&Tx::new(format!("open-{tag}")), account)
        .await
        .unwrap();
    if amount > 0 {
        c.credit(
            &Tx::new(format!("dep-{tag}")),
            account,
            amount,
            CreditKind::Deposit,
        )
        .await
        .unwrap();
    }
}

/// Each group's books balance on their own (transit counts) and nothing
/// is in transit between them (every transfer settled); returns the
/// players' money over both groups.
async fn players_money(c: &Client) -> i128 {
    let (mut players, mut transit) = (0, 0);
    for group in [1, 2] {
        let audit = c.audit_in_group(group, &[]).await.unwrap();
        let t = audit.totals.get("EUR").copied().unwrap_or_default();
        assert_eq!(t.players + t.system, 0, "group {group}'s books: {t:?}");
        players += t.players;
        transit += t.transit;
    }
    assert_eq!(transit, 0, "money left in transit between the groups");
    players
}

/// How many lines of each (tx id, kind) `account`'s whole journal has.
async fn journal_lines(c: &Client, account: &Account) -> BTreeMap<(String, String), u32> {
    let mut lines = BTreeMap::new();
    let mut from = JournalCursor::START;
    loop {
        let page = c.journal(account, from, 500).await.unwrap();
        for e in page.entries {
            *lines.entry((e.tx_id, e.kind)).or_default() += 1;
        }
        match page.next {
            Some(next) => from = next,
            None => return lines,
        }
    }
}

/// Asks `tx` again until it has a definite outcome.
async fn settled(
    c: &Client,
    tx: &Tx,
    from: &Account,
    to: &Account,
    amount: u64,
) -> Result<Receipt, Error> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match c.transfer(tx, from, to, amount).await {
            Err(
                e
                @ (Error::Indeterminate { .. } | Error::Unavailable { .. } | Error::Moving { .. }),
            ) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "transfer {tx:?} never settled: {e}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => return other,
        }
    }
}

// One transfer from a player in eu to one in us: the payer's receipt shows
// both sides, a retry answers the same receipt, each journal has one line
// of it, and the money moved from one group's books to the other's with
// nothing left in transit. A frozen payee and a payee without an account
// in the currency refuse, and the payer gets the money back; a tx id that
// starts with `~` is refused as reserved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_between_groups_applies_once_and_refusals_give_the_money_back() {
    let (mut cluster, _dir) = crate::cluster::start_topology("geowallet-xfer-", &Topology::geo(1));
    let (eu, us) = (client(&cluster, "eu"), client(&cluster, "us"));
    let (payer, payee) = (Account::new(1, "EUR"), Account::new(101, "EUR"));
    funded(&eu, &payer, 1_000).await;
    funded(&us, &payee, 50).await;
    assert_eq!(eu.placement_of(1).await.unwrap().unwrap().group, 1);
    assert_eq!(us.placement_of(101).await.unwrap().unwrap().group, 2);

    let tx = Tx::new("p2p-1");
    let receipt = eu.transfer(&tx, &payer, &payee, 300).await.unwrap();
    assert_eq!(receipt.balance.available, 700);
    assert_eq!(receipt.counterpart.map(|b| b.available), Some(350));
    // The same tx id again, from a client in the other region: same receipt.
    assert_eq!(
        us.transfer(&tx, &payer, &payee, 300).await.unwrap(),
        receipt
    );
    assert_eq!(us.balance(&payee).await.unwrap().available, 350);
    assert_eq!(eu.balance(&payer).await.unwrap().available, 700);
    let out = journal_lines(&eu, &payer).await;
    assert_eq!(out.get(&("p2p-1".into(), "transfer_out".into())), Some(&1));
    let inn = journal_lines(&us, &payee).await;
    assert_eq!(inn.get(&("p2p-1".into(), "transfer_in".into())), Some(&1));
    assert_eq!(players_money(&eu).await, 1_050);

    // A frozen payee refuses; the payer's money comes back.
    us.freeze(&Tx::new("freeze"), &payee).await.unwrap();
    let frozen_tx = Tx::new("p2p-frozen");
    let refused = eu
        .transfer(&frozen_tx, &payer, &payee, 100)
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::Frozen), "{refused}");
    assert_eq!(eu.balance(&payer).await.unwrap().available, 700);
    let lines = journal_lines(&eu, &payer).await;
    assert_eq!(
        lines.get(&("p2p-frozen".into(), "transfer_back".into())),
        Some(&1)
    );
    // Unfrozen, the same id is still refused: the refusal was recorded.
    us.unfreeze(&Tx::new("unfreeze"), &payee).await.unwrap();
    let again = eu
        .transfer(&frozen_tx, &payer, &payee, 100)
        .await
        .unwrap_err();
    assert!(matches!(again, Error::Frozen), "{again}");
    // A payee placed in us without a USD account.
    let (payer_usd, payee_usd) = (Account::new(1, "USD"), Account::new(101, "USD"));
    eu.open(&Tx::new("open-usd"), &payer_usd).await.unwrap();
    eu.credit(&Tx::new("dep-usd"), &payer_usd, 10, CreditKind::Deposit)
        .await
        .unwrap();
    let unknown = eu
        .transfer(&Tx::new("p2p-usd"), &payer_usd, &payee_usd, 5)
        .await
        .unwrap_err();
    assert!(matches!(unknown, Error::UnknownAccount { .. }), "{unknown}");
    assert_eq!(eu.balance(&payer_usd).await.unwrap().available, 10);
    let reserved = eu
        .transfer(&Tx::new("~1/EUR/p2p-1"), &payer, &payee, 1)
        .await
        .unwrap_err();
    assert!(reserved.to_string().contains("reserved"), "{reserved}");
    assert_eq!(players_money(&eu).await, 1_050);

    // Latency, one call at a time (printed, not asserted): transfers to the
    // player in us against transfers to another player in eu.
    let neighbour = Account::new(2, "EUR");
    funded(&eu, &neighbour, 0).await;
    let took = |to: &Account, tag: &str| {
        let (eu, payer, to, tag) = (eu.clone(), payer.clone(), to.clone(), tag.to_string());
        async move {
            let mut all = Vec::new();
            for n in 0..50 {
                let started = std::time::Instant::now();
                eu.transfer(&Tx::new(format!("{tag}-{n}")), &payer, &to, 1)
                    .await
                    .unwrap();
                all.push(started.elapsed());
            }
            all.sort();
            (all[25], all[49])
        }
    };
    let (local_p50, local_max) = took(&neighbour, "local").await;
    let (cross_p50, cross_max) = took(&payee, "cross").await;
    eprintln!(
        "transfer latency, 50 sequential calls each: same group p50 {local_p50:?} max {local_max:?}; \
         between groups p50 {cross_p50:?} max {cross_max:?}"
    );
    assert_eq!(eu.balance(&payer).await.unwrap().available, 600);
    assert_eq!(players_money(&eu).await, 1_050);
    // Status: the nodes began 53 transfers between groups (p2p-1, the
    // frozen and the USD ones, 50 timed; retries do not count), and none
    // is pending.
    let (mut begun, mut pending) = (0, 0);
    for endpoint in cluster.endpoints() {
        let moves = eu.status_of(&endpoint).await.unwrap().moves.unwrap();
        begun += moves.transfers_begun;
        pending += moves.transfers_pending;
    }
    assert_eq!((begun, pending), (53, 0));
    cluster.stop_all();
}

// The leader taking a step of a transfer between groups dies right after
// committing it (abort, as a SIGKILL): the payer's leader after the debit,
// the payee's leader after the credit (before answering), the payer's
// leader after the settle. Each time the transfer completes once (resumed
// by the next leader from the log, or by the client's retry with the same
// tx id): one line on each side, both balances exact, and the money over
// both groups unchanged with nothing left in transit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_dying_at_each_step_of_a_transfer_settles_it_once() {
    let (mut cluster, _dir, crash) =
        crate::cluster::start_geo_with_crash_points("geowallet-xfer-crash-");
    let (eu, us) = (client(&cluster, "eu"), client(&cluster, "us"));
    let points = ["transfer-begun", "transfer-credited", "transfer-settled"];
    for i in 0..points.len() as u64 {
        funded(&eu, &Account::new(10 + i, "EUR"), 1_000).await;
        funded(&us, &Account::new(110 + i, "EUR"), 0).await;
    }
    for (i, point) in points.iter().enumerate() {
        let (payer, payee) = (
            Account::new(10 + i as u64, "EUR"),
            Account::new(110 + i as u64, "EUR"),
        );
        let file = crash.join(format!("{}-{point}", payer.player));
        std::fs::write(&file, b"").unwrap();
        let tx = Tx::new(format!("crash-{point}"));
        // The call may come back either way: a node serving it died.
        let first = eu.transfer(&tx, &payer, &payee, 250).await;
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
        let receipt = settled(&eu, &tx, &payer, &payee, 250)
            .await
            .unwrap_or_else(|e| panic!("{point}: {e} (first answer: {first:?})"));
        if let Ok(first) = first {
            assert_eq!(first, receipt, "{point}");
        }
        assert_eq!(receipt.balance.available, 750, "{point}");
        assert_eq!(
            receipt.counterpart.map(|b| b.available),
            Some(250),
            "{point}"
        );
        assert_eq!(eu.balance(&payer).await.unwrap().available, 750, "{point}");
        assert_eq!(us.balance(&payee).await.unwrap().available, 250, "{point}");
        let name = format!("crash-{point}");
        let out = journal_lines(&eu, &payer).await;
        assert_eq!(
            out.get(&(name.clone(), "transfer_out".into())),
            Some(&1),
            "{point}"
        );
        let inn = journal_lines(&us, &payee).await;
        assert_eq!(inn.get(&(name, "transfer_in".into())), Some(&1), "{point}");
    }
    assert_eq!(players_money(&eu).await, 3_000);
    cluster.stop_all();
}

// Two writers transfer between random players of eu and us, both ways,
// while the leader of each shard group is killed once and restarted. Every
// transfer ends with one outcome (its retries with the same tx id answer
// it); each account's final balance is its deposit plus what the settled
// transfers brought in minus what they took out; the money over both
// groups is unchanged and no transfer is left half-applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_between_groups_under_load_and_leader_kills_keep_the_money() {
    let (mut cluster, _dir) =
        crate::cluster::start_topology("geowallet-xfer-load-", &Topology::geo(1));
    let (eu, us) = (client(&cluster, "eu"), client(&cluster, "us"));
    const PER_GROUP: u64 = 4;
    const DEPOSIT: u64 = 1_000_000;
    let eu_players: Vec<Account> = (0..PER_GROUP)
        .map(|p| Account::new(20 + p, "EUR"))
        .collect();
    let us_players: Vec<Account> = (0..PER_GROUP)
        .map(|p| Account::new(120 + p, "EUR"))
        .collect();
    for a in &eu_players {
        funded(&eu, a, DEPOSIT).await;
    }
    for a in &us_players {
        funded(&us, a, DEPOSIT).await;
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..2u64 {
        let c = if w == 0 { eu.clone() } else { us.clone() };
        let (eu_players, us_players, stop) = (eu_players.clone(), us_players.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut planned = Vec::new();
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let (a, b) = (
                    eu_players[((n * 7 + w) % PER_GROUP) as usize].clone(),
                    us_players[((n * 3 + w) % PER_GROUP) as usize].clone(),
                );
                let (from, to) = if (n + w).is_multiple_of(2) {
                    (a, b)
                } else {
                    (b, a)
                };
                let amount = 1 + (n * 13 + w) % 50;
                let tx = Tx::new(format!("w{w}-{n}"));
                let first = c.transfer(&tx, &from, &to, amount).await;
                planned.push((tx, from, to, amount, first.is_ok()));
            }
            planned
        }));
    }
    let probe = client(&cluster, "eu");
    let mut killed = 0;
    for group in [1, 2] {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let leaders = cluster.group_leaders(&probe).await;
        let leader = leaders.get(&group).copied().unwrap_or(0);
        if leader == 0 {
            continue;
        }
        eprintln!("killing node {leader}, leader of group {group}");
        cluster.kill(leader).unwrap();
        killed += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
        cluster.spawn(leader).unwrap();
    }
    assert_eq!(killed, 2, "each group's leader was killed");
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut planned = Vec::new();
    for w in writers {
        planned.extend(w.await.unwrap());
    }
    // Every transfer's outcome, asked again with its tx id.
    let mut expected: BTreeMap<Account, i128> = eu_players
        .iter()
        .chain(&us_players)
        .map(|a| (a.clone(), DEPOSIT as i128))
        .collect();
    let (mut applied, mut refused, mut acked) = (0, 0, 0);
    for (tx, from, to, amount, ok) in &planned {
        acked += usize::from(*ok);
        match settled(&eu, tx, from, to, *amount).await {
            Ok(_) => {
                applied += 1;
                *expected.get_mut(from).unwrap() -= *amount as i128;
                *expected.get_mut(to).unwrap() += *amount as i128;
            }
            Err(Error::InsufficientFunds { .. }) => {
                assert!(!ok, "{tx:?} acknowledged, then refused");
                refused += 1;
            }
            Err(e) => panic!("{tx:?}: {e}"),
        }
    }
    eprintln!(
        "{} transfers between groups: {applied} applied ({acked} acknowledged at once), {refused} refused",
        planned.len()
    );
    assert!(applied > 50, "too few transfers applied: {applied}");
    for (account, want) in &expected {
        let c = if account.player < 100 { &eu } else { &us };
        let b = c.balance(account).await.unwrap();
        assert_eq!((b.available as i128, b.held), (*want, 0), "{account:?}");
    }
    assert_eq!(players_money(&eu).await, (2 * PER_GROUP * DEPOSIT) as i128);
    cluster.stop_all();
}
