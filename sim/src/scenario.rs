//! One simulated run: a cluster, the testkit workload through the client
//! library, the nemesis, then heal, converge and check.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use geowallet_client::{Account, Client, ClientConfig};
use geowallet_harness::{HOLD_TTL_NS, Runner, final_state_in_groups, nothing_in_transit};
use geowallet_raft::Proposal;
use geowallet_storage::SyncMode;
use geowallet_testkit::{FinalState, KeyChoice, Recorder, SplitMix64, Workload, WorkloadConfig};
use openraft::async_runtime::WatchReceiver;

use crate::nemesis::{self, LEADER_WAIT, Nemesis};
use crate::run_dir::RunDir;
use crate::{Shape, SimCluster};

/// Client processes (concurrent callers sharing one client).
const PROCESSES: u64 = 4;
/// Process ids of the calls that re-ask indeterminate writes after healing
/// (above any id a workload process reaches).
const RESOLVE_PROCESS_BASE: u64 = 1_000_000;
/// Calls per process.
const OPS_PER_PROCESS: u64 = 60;

/// What one run did, for the test's assertions and the seed report.
#[derive(Debug, Clone)]
pub struct ScenarioReport {
    pub seed: u64,
    pub calls: usize,
    pub ok: usize,
    pub failed: usize,
    pub indeterminate: usize,
    /// Search steps the linearizability check took.
    pub lin_steps: u64,
    /// Audits (`read_all`) the bank check examined.
    pub audits: usize,
    pub faults: Vec<String>,
    pub final_index: u64,
    /// Hash of the history file's bytes: equal seeds must give equal digests.
    pub history_digest: u64,
    /// Wallet moves completed during the workload (geo runs).
    pub wallet_moves: u32,
    /// Transfers whose two sides were in different groups (geo runs).
    pub transfers_between_groups: u64,
}

/// Why a run failed, with the history kept on disk for a look.
#[derive(Debug, Clone)]
pub struct ScenarioFailure {
    pub message: String,
    pub history: Option<PathBuf>,
}

impl std::fmt::Display for ScenarioFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(path) = &self.history {
            write!(f, "\nhistory kept at {}", path.display())?;
        }
        Ok(())
    }
}

fn workload_config(dice: &mut SplitMix64) -> WorkloadConfig {
    WorkloadConfig {
        players: 6,
        currencies: vec!["EUR".into(), "USD".into()],
        key_choice: if dice.below(2) == 0 {
            KeyChoice::Uniform
        } else {
            KeyChoice::Hot { skew: 1.0 }
        },
        amount_max: 5_000,
        hold_ttl_ns: HOLD_TTL_NS,
        ..WorkloadConfig::default()
    }
}

/// Half the runs give each call a retry budget shorter than a fault, so
/// calls end indeterminate and the checkers must handle them.
fn client_config(dice: &mut SplitMix64) -> ClientConfig {
    let budget_ms = if dice.below(2) == 0 { 1_200 } else { 8_000 };
    ClientConfig {
        rpc_timeout: Duration::from_millis(500),
        retry_budget: Duration::from_millis(budget_ms),
        ..ClientConfig::default()
    }
}

/// Set `SIM_KEEP_HISTORY=1` to keep the history of passing runs too (a
/// failing run's is always kept), `SIM_DUMP_JOURNAL=1` to print the final
/// journals (neither changes the run).
///
/// Three replicas on `disk`; the workload runs while `nemesis` strikes;
/// then everything heals and all checks run: linearizability of every
/// wallet, the bank invariant at every audit, no acknowledged write lost,
/// no tx applied twice, no negative balance, replicas identical.
pub async fn run_scenario(
    nemesis: Nemesis,
    disk: SyncMode,
) -> Result<ScenarioReport, ScenarioFailure> {
    let seed = madsim::runtime::Handle::current().seed();
    let dir = RunDir::create("history", seed).map_err(|e| ScenarioFailure {
        message: format!("no temp dir for the history: {e}"),
        history: None,
    })?;
    let path = dir.path().join("history.jsonl");
    match run(seed, nemesis, disk, &path).await {
        Ok(report) => {
            if std::env::var_os("SIM_KEEP_HISTORY").is_some() {
                eprintln!(
                    "seed {seed}: history kept at {}",
                    dir.keep().join("history.jsonl").display()
                );
            }
            Ok(report)
        }
        Err(message) => {
            let kept = dir.keep();
            Err(ScenarioFailure {
                message,
                history: Some(kept.join("history.jsonl")),
            })
        }
    }
}

/// How long, after the faults healed, moves and transfers between groups
/// may take to finish by themselves (leaders rescan every 10 s).
const TRANSIT_SETTLE_WITHIN: Duration = Duration::from_secs(40);

async fn run(
    seed: u64,
    nemesis: Nemesis,
    disk: SyncMode,
    path: &std::path::Path,
) -> Result<ScenarioReport, String> {
    // Every harness choice comes from madsim's seeded RNG, through one stream.
    let mut dice = SplitMix64::new(madsim::rand::random::<u64>());
    let geo = nemesis == Nemesis::Geo;
    let shape = if geo { Shape::Geo } else { Shape::Single(3) };
    let cluster = SimCluster::start_shape(shape, disk);
    let config = workload_config(&mut dice);
    let config_players = config.players;
    let universe: Vec<Account> = config
        .currencies
        .iter()
        .flat_map(|c| (0..config.players).map(move |p| Account::new(p, c.clone())))
        .collect();
    let start = tokio::time::Instant::now();
    let recorder = Recorder::create(path, move || start.elapsed().as_nanos() as u64)
        .map_err(|e| e.to_string())?;
    let mut client_config = client_config(&mut dice);
    if geo {
        // Wallets opened from eu land in group 1, whose replicas the checks
        // compare; group 2 (us) and the directory run beside it.
        client_config.region = "eu".into();
    }
    let client = Client::connect(cluster.endpoints(), client_config).map_err(|e| e.to_string())?;
    let runner = Arc::new(Runner {
        client: client.clone(),
        workload: Arc::new(Mutex::new(Workload::new(config, dice.next_u64()))),
        recorder: Arc::new(recorder),
        universe: universe.clone(),
        created_at: Arc::new(Mutex::new(HashMap::new())),
        surprises: Arc::new(Mutex::new(Vec::new())),
        unresolved: Arc::new(Mutex::new(Vec::new())),
        rotation: None,
        // Wallets move between the groups while the workload runs: each
        // audit reads one group's own view, which balances by itself.
        audit_groups: if geo { vec![1, 2] } else { Vec::new() },
        audits_made: Default::default(),
    });
    let done = Arc::new(AtomicBool::new(false));
    let host = cluster.client_host();
    let work = {
        let (runner, done) = (runner.clone(), done.clone());
        host.spawn(async move {
            let tasks: Vec<_> = (0..PROCESSES)
                .map(|p| {
                    let runner = runner.clone();
                    tokio::spawn(async move { runner.run(p, PROCESSES, OPS_PER_PROCESS).await })
                })
                .collect();
            let mut result = Ok(());
            for t in tasks {
                let r = t.await.map_err(|e| format!("a client process died: {e}"));
                result = result.and(r.and_then(|r| r));
            }
            done.store(true, Ordering::SeqCst);
            result
        })
    };
    let mover = geo.then(|| {
        let (client, done) = (client.clone(), done.clone());
        let (players, seed) = (config_players, dice.next_u64());
        host.spawn(async move { move_wallets(client, players, seed, done).await })
    });
    let faults = nemesis::run(&cluster, nemesis, &mut dice, || done.load(Ordering::SeqCst)).await?;
    work.await
        .map_err(|e| format!("the client host died: {e}"))??;
    let moves = match mover {
        Some(m) => m.await.map_err(|e| format!("the mover died: {e}"))?,
        None => MoveTally::default(),
    };
    converge(&cluster).await?;
    // Every write that ended indeterminate is asked again, with its tx id:
    // the stored first outcome settles it for the checker.
    let resolver = runner.clone();
    host.spawn(async move { resolver.resolve_indeterminate(RESOLVE_PROCESS_BASE).await })
        .await
        .map_err(|e| format!("the client host died: {e}"))??;
    runner.recorder.flush().map_err(|e| e.to_string())?;
    let final_index = converge(&cluster).await?;
    let final_state = host
        .spawn(async move {
            // Wallets moved: each one's journal lines are in both groups.
            let groups: &[u64] = if geo { &[1, 2] } else { &[] };
            if geo {
                // Every move and transfer between the groups finished.
                nothing_in_transit(&client, groups, TRANSIT_SETTLE_WITHIN).await?;
            }
            final_state_in_groups(&client, &universe, groups).await
        })
        .await
        .map_err(|e| format!("the client host died: {e}"))??;
    let with_faults =
        |e: String| format!("{e}\nfaults struck, in order: {faults:?}\nwallet moves: {moves:?}");
    let surprises = runner
        .surprises
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if !surprises.is_empty() {
        return Err(with_faults(format!(
            "refusals expected but applied, or tx ids answered expired: {surprises:?}"
        )));
    }
    let mut report = check_all(path, &final_state).map_err(with_faults)?;
    check_replicas(&cluster).map_err(with_faults)?;
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the history back: {e}"))?;
    let mut hasher = DefaultHasher::new();
    hasher.write(&bytes);
    report.seed = seed;
    report.faults = faults;
    report.final_index = final_index;
    report.history_digest = hasher.finish();
    report.wallet_moves = moves.moved;
    report.transfers_between_groups = final_state.transfers_between_groups;
    Ok(report)
}

/// What the mover did: moves completed, and calls that ended otherwise
/// (refused, unavailable under a fault; each resumes or is harmless).
#[derive(Debug, Default, Clone, Copy)]
struct MoveTally {
    moved: u32,
    other: u32,
}

/// Moves random players' wallets between eu and us until the workload is
/// done, a few hundred milliseconds apart, while the nemesis strikes.
async fn move_wallets(client: Client, players: u64, seed: u64, done: Arc<AtomicBool>) -> MoveTally {
    let mut dice = SplitMix64::new(seed);
    let mut tally = MoveTally::default();
    while !done.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(100 + dice.below(400))).await;
        let player = dice.below(players);
        let region = if dice.below(2) == 0 { "eu" } else { "us" };
        // Bounded: a move cut short by a fault finishes by itself.
        let call = tokio::time::timeout(Duration::from_secs(5), client.migrate(player, region));
        match call.await {
            Ok(Ok(m)) if m.moved => tally.moved += 1,
            _ => tally.other += 1,
        }
    }
    tally
}

/// The five history checkers, as the seed report counts them.
fn check_all(path: &std::path::Path, final_state: &FinalState) -> Result<ScenarioReport, String> {
    let c = geowallet_harness::check_all(path, final_state)?;
    if !c.passed() {
        return Err(c.failures());
    }
    Ok(ScenarioReport {
        seed: 0,
        calls: c.calls,
        ok: c.ok,
        failed: c.failed,
        indeterminate: c.indeterminate,
        lin_steps: c.lin_steps,
        audits: c.audits,
        faults: Vec::new(),
        final_index: 0,
        history_digest: 0,
        wallet_moves: 0,
        transfers_between_groups: 0,
    })
}

/// The simulation's true wall time (no node's skew applies).
fn true_time_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Waits until every replica has applied everything the leader committed.
async fn converge(cluster: &SimCluster) -> Result<u64, String> {
    let mut attempts = 0;
    let leader = loop {
        let (_, leader) = cluster
            .leader(LEADER_WAIT)
            .await
            .ok_or("no leader after healing")?;
        let empty = Proposal::ledger(true_time_ns(), Vec::new());
        match leader.client_write(empty).await {
            Ok(_) => break leader,
            Err(e) if attempts == 20 => {
                return Err(format!("no leader can commit after healing: {e}"));
            }
            Err(_) => attempts += 1,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let target = leader
        .metrics()
        .borrow_watched()
        .last_log_index
        .unwrap_or(0);
    for (id, (raft, _)) in cluster.replicas() {
        raft.wait(Some(Duration::from_secs(30)))
            .applied_index_at_least(Some(target), "converge")
            .await
            .map_err(|e| format!("node {id} did not apply up to {target}: {e}"))?;
    }
    Ok(target)
}

/// Every replica keeps the ledger's invariants, balances its books per
/// currency, and holds the same accounts.
fn check_replicas(cluster: &SimCluster) -> Result<(), String> {
    let mut states = Vec::new();
    for (id, (_, store)) in cluster.replicas() {
        let rows = store
            .dump()
            .map_err(|e| format!("node {id}: read its ledger rows: {e}"))?;
        rows.check_invariants();
        let unbalanced: BTreeMap<_, _> = rows
            .currency_totals()
            .into_iter()
            .filter(|(_, t)| *t != 0)
            .collect();
        if !unbalanced.is_empty() {
            return Err(format!("node {id}: books do not balance: {unbalanced:?}"));
        }
        // Ledger time comes from a quorum of clocks: one skewed clock, even
        // the leader's, never moves it beyond the true time's tolerance.
        let ahead_ns = rows.meta.leader_time_ns.saturating_sub(true_time_ns());
        if ahead_ns > geowallet_raft::CLOCK_TOLERANCE_DEFAULT.as_nanos() as u64 {
            return Err(format!(
                "node {id}: ledger time is {:.3} s ahead of the true time",
                ahead_ns as f64 / 1e9
            ));
        }
        states.push((id, (rows.accounts, rows.holds, rows.tx_records)));
    }
    if states.len() != 3 {
        return Err(format!("only {} replicas running at the end", states.len()));
    }
    if states.windows(2).any(|w| w[0].1 != w[1].1) {
        return Err(format!("replicas disagree: {states:?}"));
    }
    Ok(())
}
