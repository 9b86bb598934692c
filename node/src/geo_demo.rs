//! `geowallet dev --topology geo --demo`: wallets opened from two regions
//! spread over the groups homed there; a writer per wallet deposits and
//! bets while the whole datacenter eu/a is SIGKILLed (`--kills` times):
//! each time, the time from the kill to the first acknowledged write to an
//! eu wallet, the new leaders (in eu/b, never the tiebreaker), and the
//! failback once eu/a returns. Then every unknown outcome is resolved by
//! retrying it with its own tx id, and each wallet's balance must equal
//! exactly what was acknowledged. Last, a traveller: a player whose wallet
//! is in eu bets from us, under a simulated round trip between regions,
//! until its wallet follows it; the bets' latency before and after.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use geowallet_client::{Account, Client, ClientConfig, CreditKind, DebitKind, Error, Tx};

use crate::local_cluster::LocalCluster;

/// Wallets opened from each region.
const PLAYERS_PER_REGION: u64 = 20;
const OPENING_BALANCE: u64 = 1_000_000;
/// The datacenter killed: eu/a is node 1 of `Topology::geo`.
const KILLED_NODE: u64 = 1;
const EU_B_NODE: u64 = 2;
/// The round trip between regions the demo's nodes simulate (see
/// `SIMULATED_RTT_ENV`): about Frankfurt to Virginia.
pub const SIMULATED_RTT_MS: u64 = 80;
/// The traveller's bets on each side of its wallet's move.
const TRAVELLER_BETS: usize = 40;

fn eur(player: u64) -> Account {
    Account::new(player, "EUR")
}

fn client(cluster: &LocalCluster, region: &str) -> anyhow::Result<Client> {
    cluster.client(ClientConfig {
        region: region.into(),
        retry_budget: Duration::from_secs(30),
        ..Default::default()
    })
}

/// One wallet's writer: what was acknowledged (net, in cents) and which
/// operations are still unknown.
#[derive(Default)]
struct Tally {
    net: i64,
    unknown: Vec<(Tx, i64)>,
}

async fn apply(c: &Client, tx: &Tx, player: u64, delta: i64) -> Result<(), Error> {
    let amount = delta.unsigned_abs();
    if delta >= 0 {
        c.credit(tx, &eur(player), amount, CreditKind::Win).await?;
    } else {
        c.debit(tx, &eur(player), amount, DebitKind::Bet).await?;
    }
    Ok(())
}

async fn writer(c: Client, player: u64, stop: Arc<AtomicBool>, ops: Arc<AtomicU64>) -> Tally {
    let mut tally = Tally::default();
    let mut n: i64 = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let delta = if n % 2 == 0 { 7 } else { -5 };
        let tx = Tx::new(format!("geo-{player}-{n}"));
        match apply(&c, &tx, player, delta).await {
            Ok(()) => {
                tally.net += delta;
                ops.fetch_add(1, Ordering::Relaxed);
            }
            Err(Error::Indeterminate { .. } | Error::Unavailable { .. }) => {
                tally.unknown.push((tx, delta))
            }
            Err(e) => tracing::warn!(player, error = %e, "refused"),
        }
    }
    tally
}

/// Waits until every group homed in eu is led by `node`.
async fn wait_eu_leader(
    cluster: &LocalCluster,
    eu_groups: &[u64],
    node: u64,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let want = eu_groups.iter().map(|g| (*g, node)).collect();
    cluster.wait_group_leaders(&want, timeout).await
}

/// How long after `killed` every eu group was led by a node other than the
/// killed one (as the nodes still running report it), polled every 10 ms.
async fn first_new_leaders(
    probe: Client,
    endpoints: Vec<String>,
    eu_groups: Vec<u64>,
    killed: Instant,
) -> Option<Duration> {
    while killed.elapsed() < Duration::from_secs(30) {
        let mut led = BTreeMap::new();
        for e in &endpoints {
            if let Ok(s) = probe.status_of(e).await {
                for g in s.groups.iter().filter(|g| eu_groups.contains(&g.id)) {
                    if g.state == "leader" && g.leader_id != KILLED_NODE {
                        led.insert(g.id, g.leader_id);
                    }
                }
            }
        }
        if led.len() == eu_groups.len() {
            return Some(killed.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

pub async fn run(cluster: &mut LocalCluster, kills: u32) -> anyhow::Result<()> {
    let (eu, us) = (client(cluster, "eu")?, client(cluster, "us")?);
    let probe = cluster.client(ClientConfig::default())?;
    println!(
        "geo demo: opening {PLAYERS_PER_REGION} wallets from eu and {PLAYERS_PER_REGION} from us"
    );
    let mut players = Vec::new();
    let mut by_group: BTreeMap<u64, u64> = BTreeMap::new();
    for i in 1..=2 * PLAYERS_PER_REGION {
        let (c, region) = if i <= PLAYERS_PER_REGION {
            (&eu, "eu")
        } else {
            (&us, "us")
        };
        c.open(&Tx::new(format!("geo-open-{i}")), &eur(i))
            .await
            .with_context(|| format!("open wallet {i} from {region}"))?;
        c.credit(
            &Tx::new(format!("geo-fund-{i}")),
            &eur(i),
            OPENING_BALANCE,
            CreditKind::Deposit,
        )
        .await
        .with_context(|| format!("fund wallet {i}"))?;
        let (group, _) = c
            .placement(i)
            .await?
            .context("an opened wallet is placed")?;
        *by_group.entry(group).or_default() += 1;
        players.push((i, c.clone()));
    }
    println!("geo demo: wallets per group: {by_group:?} (groups 1-2 homed in eu, 3-4 in us)");
    let eu_groups: Vec<u64> = vec![1, 2];
    wait_eu_leader(cluster, &eu_groups, KILLED_NODE, Duration::from_secs(30)).await?;
    println!(
        "geo demo: eu groups led from eu/a (node {KILLED_NODE}); leaders {:?}",
        cluster.group_leaders(&probe).await
    );

    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = players
        .iter()
        .map(|(p, c)| tokio::spawn(writer(c.clone(), *p, stop.clone(), ops.clone())))
        .collect();
    let mut failovers = Vec::new();
    for k in 1..=kills {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let pid = cluster.node(KILLED_NODE).pid().unwrap_or(0);
        cluster.kill(KILLED_NODE)?;
        let killed = Instant::now();
        println!(
            "geo demo: kill {k}/{kills}: SIGKILL datacenter eu/a (node {KILLED_NODE}, pid {pid}); {} ops so far",
            ops.load(Ordering::Relaxed)
        );
        let elected = {
            let (probe, endpoints) = (probe.clone(), cluster.endpoints());
            let eu_groups = eu_groups.clone();
            tokio::spawn(
                async move { first_new_leaders(probe, endpoints, eu_groups, killed).await },
            )
        };
        let tx = Tx::new(format!("geo-probe-{k}"));
        apply(&eu, &tx, 1, 1)
            .await
            .context("first write after the kill")?;
        let first = killed.elapsed();
        if let Ok(Some(e)) = elected.await {
            println!(
                "geo demo:   every eu group had a new leader {} ms after the kill",
                e.as_millis()
            );
        }
        failovers.push(first);
        println!(
            "geo demo:   first acknowledged eu write {} ms after the kill",
            first.as_millis()
        );
        let moved = wait_eu_leader(cluster, &eu_groups, EU_B_NODE, Duration::from_secs(30)).await?;
        println!(
            "geo demo:   eu groups led from eu/b (node {EU_B_NODE}) {} ms later, not from the tiebreaker",
            moved.as_millis()
        );
        cluster.spawn(KILLED_NODE)?;
        let back =
            wait_eu_leader(cluster, &eu_groups, KILLED_NODE, Duration::from_secs(60)).await?;
        println!(
            "geo demo:   eu/a restarted; leadership failed back to it after {} ms (once caught up)",
            back.as_millis()
        );
    }
    stop.store(true, Ordering::Relaxed);
    let mut resolved = 0;
    let mut check = Vec::new();
    for (w, (player, c)) in writers.into_iter().zip(&players) {
        let mut t = w.await?;
        for (tx, delta) in std::mem::take(&mut t.unknown) {
            apply(c, &tx, *player, delta)
                .await
                .with_context(|| format!("resolve {}", tx.id))?;
            t.net += delta;
            resolved += 1;
        }
        check.push((*player, t.net));
    }
    println!("geo demo: resolved {resolved} operations interrupted by the kills (same tx ids)");
    let probes = kills as i64;
    for (player, net) in check {
        let expected = OPENING_BALANCE as i64 + net + if player == 1 { probes } else { 0 };
        let b = eu.balance(&eur(player)).await?;
        if b.available as i64 != expected {
            bail!(
                "wallet {player}: balance {} but {expected} was acknowledged",
                b.available
            );
        }
    }
    failovers.sort();
    let median = failovers[failovers.len() / 2];
    let max = failovers[failovers.len() - 1];
    println!(
        "geo demo: {} ops; datacenter kill to first acknowledged write over {kills} kills: median {} ms, max {} ms",
        ops.load(Ordering::Relaxed),
        median.as_millis(),
        max.as_millis()
    );
    println!("geo demo: every wallet holds exactly what was acknowledged, each operation once. ok");
    traveller(cluster).await?;
    between_groups(cluster).await
}

/// A payout from a player whose wallet is in eu to one in us: one call to
/// the payer's group, which debits the payer into transit, has the payee's
/// group credit the payee, and settles; both groups' books balance and
/// nothing stays in transit.
async fn between_groups(cluster: &LocalCluster) -> anyhow::Result<()> {
    let (payer, payee) = (10_001, 10_002);
    let (eu, us) = (client(cluster, "eu")?, client(cluster, "us")?);
    eu.open(&Tx::new("p2p-open-payer"), &eur(payer)).await?;
    eu.credit(
        &Tx::new("p2p-fund"),
        &eur(payer),
        1_000,
        CreditKind::Deposit,
    )
    .await?;
    us.open(&Tx::new("p2p-open-payee"), &eur(payee)).await?;
    let (from_group, _) = eu.placement(payer).await?.context("placed")?;
    let (to_group, _) = us.placement(payee).await?.context("placed")?;
    let started = Instant::now();
    let receipt = eu
        .transfer(&Tx::new("p2p-prize"), &eur(payer), &eur(payee), 250)
        .await
        .context("transfer between groups")?;
    let took = started.elapsed();
    let paid = receipt.counterpart.map(|b| b.available);
    if receipt.balance.available != 750 || paid != Some(250) {
        bail!(
            "transfer between groups: payer {:?}, payee {paid:?}",
            receipt.balance
        );
    }
    // Moves leave lasting transit positions in their groups (the source's
    // and the target's cancel out): only the sum over every group is 0.
    let groups: Vec<u64> = cluster.group_leaders(&eu).await.into_keys().collect();
    let mut transit = 0;
    for g in groups {
        let audit = eu.audit_in_group(g, &[]).await?;
        let t = audit.totals.get("EUR").copied().unwrap_or_default();
        if t.players + t.system != 0 {
            bail!("group {g}'s books do not balance: {t:?}");
        }
        transit += t.transit;
    }
    if transit != 0 {
        bail!("{transit} left in transit between the groups");
    }
    println!(
        "geo demo: transfer between groups: player {payer} (group {from_group}, eu) paid 250 to player {payee} \
         (group {to_group}, us) in {} ms; both books balance, nothing in transit. ok",
        took.as_millis()
    );
    Ok(())
}

fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    sorted[(sorted.len() * pct / 100).min(sorted.len() - 1)]
}

/// A player whose wallet is in eu flies to us and bets from there: each
/// bet pays the (simulated) round trip to eu until the eu leader sees most
/// of the player's calls come from us and moves the wallet; then the bets
/// are served in us.
async fn traveller(cluster: &LocalCluster) -> anyhow::Result<()> {
    let player = 10_000;
    let (eu, us) = (client(cluster, "eu")?, client(cluster, "us")?);
    eu.open(&Tx::new("trip-open"), &eur(player)).await?;
    eu.credit(
        &Tx::new("trip-fund"),
        &eur(player),
        1_000_000,
        CreditKind::Deposit,
    )
    .await?;
    let (group, _) = eu.placement(player).await?.context("placed")?;
    println!(
        "geo demo: traveller {player}: wallet in group {group} (eu); the player now bets from us \
         (SIMULATED {SIMULATED_RTT_MS} ms round trip between regions: loopback has no distance)"
    );
    let (mut before, mut after) = (Vec::new(), Vec::new());
    let mut moved_after = None;
    let started = Instant::now();
    let mut n = 0;
    while after.len() < TRAVELLER_BETS {
        if started.elapsed() > Duration::from_secs(120) {
            bail!("the traveller's wallet did not follow within 120 s");
        }
        n += 1;
        let t = Instant::now();
        us.debit(
            &Tx::new(format!("trip-bet-{n}")),
            &eur(player),
            1,
            DebitKind::Bet,
        )
        .await
        .with_context(|| format!("traveller bet {n}"))?;
        let took = t.elapsed();
        match moved_after {
            Some(_) => after.push(took),
            None => before.push(took),
        }
        if moved_after.is_none() {
            let (now, _) = us.placement(player).await?.context("placed")?;
            if now != group {
                moved_after = Some(n);
                println!(
                    "geo demo: traveller {player}: wallet moved to group {now} (us) after {n} bets from us, {} ms in",
                    started.elapsed().as_millis()
                );
            }
        }
    }
    before.sort();
    after.sort();
    println!(
        "geo demo: traveller {player}: bet latency from us while the wallet was in eu: p50 {} ms, p99 {} ms ({} bets); \
         after it followed: p50 {} ms, p99 {} ms ({} bets)",
        percentile(&before, 50).as_millis(),
        percentile(&before, 99).as_millis(),
        before.len(),
        percentile(&after, 50).as_millis(),
        percentile(&after, 99).as_millis(),
        after.len()
    );
    let b = us.balance(&eur(player)).await?;
    if b.available != 1_000_000 - n as u64 {
        bail!("traveller: balance {} after {n} bets of 1", b.available);
    }
    println!("geo demo: traveller's wallet exact after the move. ok");
    Ok(())
}
