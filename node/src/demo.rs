//! `geowallet dev --demo`: a short mixed workload against the local cluster
//! that kills the leader with SIGKILL midway, shows the failover, restarts
//! the killed node, and proves every acknowledged operation is there exactly
//! once by checking that the balances add up.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use geowallet_client::{Account, Client, ClientConfig, CreditKind, DebitKind, Error, Tx};

use crate::local_cluster::LocalCluster;

const PLAYERS: u64 = 100;
const OPENING_BALANCE: u64 = 100_000;
const WORKERS: u64 = 16;
const RUN_FOR: Duration = Duration::from_secs(8);
const KILL_AFTER: Duration = Duration::from_secs(3);

#[derive(Default)]
struct Counters {
    ok: AtomicU64,
    refused: AtomicU64,
    indeterminate: AtomicU64,
}

/// One worker's acknowledged money movements (and what is still unknown).
#[derive(Default)]
struct Tally {
    credited: u64,
    debited: u64,
    unresolved: Vec<(Tx, Op)>,
}

#[derive(Clone, Copy)]
enum Op {
    Transfer { from: u64, to: u64, amount: u64 },
    Bet { player: u64, amount: u64 },
    Win { player: u64, amount: u64 },
}

fn eur(player: u64) -> Account {
    Account::new(player, "EUR")
}

/// A small deterministic generator (the demo needs no cryptographic randomness).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

async fn run_op(client: &Client, tx: &Tx, op: Op) -> Result<(), Error> {
    match op {
        Op::Transfer { from, to, amount } => client
            .transfer(tx, &eur(from), &eur(to), amount)
            .await
            .map(drop),
        Op::Bet { player, amount } => client
            .debit(tx, &eur(player), amount, DebitKind::Bet)
            .await
            .map(drop),
        Op::Win { player, amount } => client
            .credit(tx, &eur(player), amount, CreditKind::Win)
            .await
            .map(drop),
    }
}

fn account_for(tally: &mut Tally, op: Op) {
    match op {
        Op::Bet { amount, .. } => tally.debited += amount,
        Op::Win { amount, .. } => tally.credited += amount,
        Op::Transfer { .. } => {}
    }
}

async fn worker(id: u64, client: Client, stop: Arc<AtomicBool>, counters: Arc<Counters>) -> Tally {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ (id + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut tally = Tally::default();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let a = 1 + rng.next(PLAYERS);
        let op = match rng.next(100) {
            0..70 => Op::Transfer {
                from: a,
                to: 1 + (a + rng.next(PLAYERS - 1)) % PLAYERS,
                amount: 1 + rng.next(500),
            },
            70..85 => Op::Bet {
                player: a,
                amount: 1 + rng.next(200),
            },
            _ => Op::Win {
                player: a,
                amount: 1 + rng.next(200),
            },
        };
        let tx = Tx::new(format!("demo-w{id}-{seq}"));
        match run_op(&client, &tx, op).await {
            Ok(()) => {
                counters.ok.fetch_add(1, Ordering::Relaxed);
                account_for(&mut tally, op);
            }
            Err(Error::Indeterminate { .. } | Error::Unavailable { .. }) => {
                counters.indeterminate.fetch_add(1, Ordering::Relaxed);
                tally.unresolved.push((tx, op));
            }
            Err(_) => {
                counters.refused.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    tally
}

async fn setup(client: &Client) -> anyhow::Result<()> {
    let mut tasks = Vec::new();
    for p in 1..=PLAYERS {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            match client
                .open(&Tx::new(format!("demo-open-{p}")), &eur(p))
                .await
            {
                Ok(_) | Err(Error::AccountExists { .. }) => {}
                Err(e) => return Err(e),
            }
            client
                .credit(
                    &Tx::new(format!("demo-deposit-{p}")),
                    &eur(p),
                    OPENING_BALANCE,
                    CreditKind::Deposit,
                )
                .await
                .map(drop)
        }));
    }
    for t in tasks {
        t.await?.context("open and fund a demo wallet")?;
    }
    Ok(())
}

async fn total(client: &Client) -> anyhow::Result<u64> {
    let mut sum = 0u64;
    for p in 1..=PLAYERS {
        let b = client
            .balance(&eur(p))
            .await
            .with_context(|| format!("read the balance of player {p}"))?;
        sum += b.available + b.held;
    }
    Ok(sum)
}

/// Runs the demo against `cluster`; returns an error if anything does not add up.
pub async fn run(cluster: &mut LocalCluster) -> anyhow::Result<()> {
    let client = cluster.client(ClientConfig::default())?;
    println!("demo: opening {PLAYERS} wallets with {OPENING_BALANCE} EUR cents each");
    setup(&client).await?;
    let before = total(&client).await?;
    println!("demo: total before = {before}");

    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let workers: Vec<_> = (0..WORKERS)
        .map(|id| tokio::spawn(worker(id, client.clone(), stop.clone(), counters.clone())))
        .collect();
    let started = Instant::now();
    let mut killed = None;
    while started.elapsed() < RUN_FOR {
        tokio::time::sleep(Duration::from_secs(1)).await;
        println!(
            "demo: t={:>2}s ok={} refused={} unresolved={}",
            started.elapsed().as_secs(),
            counters.ok.load(Ordering::Relaxed),
            counters.refused.load(Ordering::Relaxed),
            counters.indeterminate.load(Ordering::Relaxed)
        );
        if killed.is_none() && started.elapsed() >= KILL_AFTER {
            killed = Some(kill_leader(cluster).await?);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut tallies = Vec::new();
    for w in workers {
        tallies.push(w.await?);
    }
    let (credited, debited) = resolve(&client, tallies).await?;
    if let Some(id) = killed {
        restart_and_catch_up(cluster, &client, id).await?;
    }
    let after = total(&client).await?;
    let expected = before + credited - debited;
    println!(
        "demo: total after = {after}, expected {before} + {credited} won - {debited} bet = {expected}"
    );
    if after != expected {
        bail!("balances do not add up: {after} != {expected}");
    }
    println!("demo: every acknowledged operation is applied exactly once; balances add up. ok");
    Ok(())
}

async fn kill_leader(cluster: &mut LocalCluster) -> anyhow::Result<u64> {
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await?;
    let pid = cluster.node(leader).pid().unwrap_or(0);
    cluster.kill(leader)?;
    let t = Instant::now();
    println!("demo: SIGKILL leader node {leader} (pid {pid})");
    let new_leader = cluster.wait_for_leader(Duration::from_secs(15)).await?;
    println!(
        "demo: node {new_leader} is the new leader after {} ms",
        t.elapsed().as_millis()
    );
    Ok(leader)
}

/// Retries every unresolved operation with its original transaction until it
/// is determinate; returns the total credited and debited.
async fn resolve(client: &Client, tallies: Vec<Tally>) -> anyhow::Result<(u64, u64)> {
    let (mut credited, mut debited, mut retried) = (0, 0, 0);
    for mut t in tallies {
        for (tx, op) in std::mem::take(&mut t.unresolved) {
            retried += 1;
            match run_op(client, &tx, op).await {
                Ok(()) => account_for(&mut t, op),
                Err(e @ (Error::Indeterminate { .. } | Error::Unavailable { .. })) => {
                    bail!("transaction {} is still unresolved: {e}", tx.id)
                }
                Err(_) => {}
            }
        }
        credited += t.credited;
        debited += t.debited;
    }
    println!(
        "demo: resolved {retried} operations interrupted by the failover (same tx ids, never applied twice)"
    );
    Ok((credited, debited))
}

async fn restart_and_catch_up(
    cluster: &mut LocalCluster,
    client: &Client,
    id: u64,
) -> anyhow::Result<()> {
    cluster.spawn(id)?;
    let endpoint = cluster.node(id).endpoint.clone();
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await?;
    let target = client
        .status_of(&cluster.node(leader).endpoint)
        .await?
        .committed_index;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(s) = client.status_of(&endpoint).await
            && s.applied_index >= target
        {
            println!(
                "demo: restarted node {id} caught up to log index {}",
                s.applied_index
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("restarted node {id} did not catch up to {target} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
