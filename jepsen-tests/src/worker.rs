//! A client host: runs inside its own namespace (`geowallet-jepsen worker`,
//! started by the run with `ip netns exec`), drives the testkit workload
//! through the real client library and records every call with the
//! machine's monotonic clock, which every process of the machine shares, so
//! the histories of all client hosts merge into one real order.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use geowallet_client::{Account, Client, ClientConfig, ClientTls};
use geowallet_harness::{HOLD_TTL_NS, Rotation, Runner};
use geowallet_testkit::{KeyChoice, Recorder, Workload, WorkloadConfig};
use tokio::io::AsyncBufReadExt;

/// What a worker prints when its workload is over; it then waits for a
/// line on stdin saying the cluster is healed.
pub const WORKLOAD_DONE: &str = "workload done";
/// Players of the workload (x 2 currencies = the accounts every host uses).
pub const PLAYERS: u64 = 6;
/// Process ids of the re-asked writes, above the host's workload ids.
const RESOLVE_PROCESS_OFFSET: u64 = 500_000_000;

#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    #[arg(long, value_delimiter = ',', required = true)]
    pub endpoints: Vec<String>,
    /// The cluster's CA and the `root` client certificate (mutual TLS).
    #[arg(long)]
    pub tls_dir: Option<PathBuf>,
    /// History file to write (JSON lines).
    #[arg(long)]
    pub history: PathBuf,
    /// Where to write the calls that surprised the workload (JSON).
    #[arg(long)]
    pub surprises: PathBuf,
    #[arg(long)]
    pub seed: u64,
    /// Process ids start here (each host gets its own range).
    #[arg(long)]
    pub process_base: u64,
    #[arg(long, default_value_t = 4)]
    pub processes: u64,
    #[arg(long)]
    pub time_limit_s: u64,
    #[arg(long, default_value_t = PLAYERS)]
    pub players: u64,
    /// Moves the workload to fresh players every this many seconds of the
    /// monotonic clock from `--rotate-base-ns` (0: never).
    #[arg(long, default_value_t = 0)]
    pub rotate_s: u64,
    /// CLOCK_MONOTONIC of the run's start, the same for every host.
    #[arg(long, default_value_t = 0)]
    pub rotate_base_ns: u64,
    /// The region this host calls from: wallets it opens are homed there
    /// (geo topology).
    #[arg(long)]
    pub region: Option<String>,
    /// Each call's retry budget: shorter than most faults, so calls end
    /// indeterminate and the checkers must cope.
    #[arg(long, default_value_t = 2_000)]
    pub retry_budget_ms: u64,
    /// Move a random player's wallet to a random region every this many
    /// milliseconds (0: never); audits then read each of `--groups` in
    /// its own view, in turn.
    #[arg(long, default_value_t = 0)]
    pub move_every_ms: u64,
    #[arg(long, value_delimiter = ',')]
    pub groups: Vec<u64>,
}

/// The regions wallets move between (the geo topology's home regions).
const MOVE_REGIONS: [&str; 2] = ["eu", "us"];
/// One move call's bound: a move cut short by a fault finishes by itself.
const MOVE_CALL_MAX: Duration = Duration::from_secs(5);

/// Moves a random player of the current generation to a random region
/// every `every` until `deadline`; returns the moves completed and the
/// calls that ended otherwise.
async fn move_wallets(
    runner: Arc<Runner>,
    config: WorkloadConfig,
    every: Duration,
    seed: u64,
    deadline: Instant,
) -> (u64, u64) {
    let mut dice = geowallet_testkit::SplitMix64::new(seed);
    let (mut moved, mut other) = (0, 0);
    while Instant::now() + every < deadline {
        tokio::time::sleep(every).await;
        let generation = runner.rotation.map_or(0, |r| r.generation(monotonic_ns()));
        let accounts = config.generation_accounts(generation);
        if accounts.is_empty() {
            continue;
        }
        let player = accounts[dice.below(accounts.len() as u64) as usize].0;
        let region = MOVE_REGIONS[dice.below(2) as usize];
        let call = runner.client.migrate(player, region);
        match tokio::time::timeout(MOVE_CALL_MAX, call).await {
            Ok(Ok(m)) if m.moved => moved += 1,
            _ => other += 1,
        }
    }
    (moved, other)
}

/// The workload every host runs (the same accounts, so hosts contend).
pub fn workload_config(players: u64) -> WorkloadConfig {
    WorkloadConfig {
        players,
        currencies: vec!["EUR".into(), "USD".into()],
        key_choice: KeyChoice::Uniform,
        amount_max: 5_000,
        hold_ttl_ns: HOLD_TTL_NS,
        ..WorkloadConfig::default()
    }
}

/// Every account the workload may touch.
pub fn universe(config: &WorkloadConfig) -> Vec<Account> {
    config
        .currencies
        .iter()
        .flat_map(|c| (0..config.players).map(move |p| Account::new(p, c.clone())))
        .collect()
}

/// CLOCK_MONOTONIC in ns: one clock for every process of the machine.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let config = workload_config(args.players);
    let universe = universe(&config);
    let recorder = Recorder::create(&args.history, monotonic_ns)
        .with_context(|| format!("create {}", args.history.display()))?;
    let client = Client::connect(
        args.endpoints.clone(),
        ClientConfig {
            rpc_timeout: Duration::from_millis(1_000),
            retry_budget: Duration::from_millis(args.retry_budget_ms),
            region: args.region.clone().unwrap_or_default(),
            tls: args
                .tls_dir
                .as_deref()
                .map(|d| ClientTls::from_dir(d, "root"))
                .transpose()?,
            ..ClientConfig::default()
        },
    )?;
    let runner = Arc::new(Runner {
        client,
        workload: Arc::new(Mutex::new(Workload::new(config, args.seed))),
        recorder: Arc::new(recorder),
        universe,
        created_at: Arc::new(Mutex::new(HashMap::new())),
        surprises: Arc::new(Mutex::new(Vec::new())),
        unresolved: Arc::new(Mutex::new(Vec::new())),
        rotation: (args.rotate_s > 0).then(|| Rotation {
            base_ns: args.rotate_base_ns,
            period_ns: args.rotate_s * 1_000_000_000,
        }),
        audit_groups: if args.move_every_ms > 0 {
            args.groups.clone()
        } else {
            Vec::new()
        },
        audits_made: Default::default(),
    });
    let deadline = Instant::now() + Duration::from_secs(args.time_limit_s);
    let mover = (args.move_every_ms > 0).then(|| {
        tokio::spawn(move_wallets(
            runner.clone(),
            workload_config(args.players),
            Duration::from_millis(args.move_every_ms),
            args.seed ^ 0x6d6f_7665,
            deadline,
        ))
    });
    let tasks: Vec<_> = (0..args.processes)
        .map(|p| {
            let runner = runner.clone();
            let process = args.process_base + p;
            let stride = args.processes;
            tokio::spawn(async move {
                runner
                    .run_while(process, stride, || Instant::now() < deadline)
                    .await
            })
        })
        .collect();
    let mut result = Ok(());
    for t in tasks {
        let r = t.await.map_err(|e| format!("a client process died: {e}"));
        result = result.and(r.and_then(|r| r));
    }
    if let Some(mover) = mover {
        let (moved, other) = mover.await.context("the wallet mover died")?;
        eprintln!("geowallet-jepsen worker: {moved} wallet moves ({other} calls ended otherwise)");
    }
    // Tell the run, wait until it has healed the cluster, then ask again
    // every write that ended indeterminate (its stored first outcome
    // settles it for the checker).
    println!("{WORKLOAD_DONE}");
    let mut line = String::new();
    tokio::io::BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await
        .context("wait for the run to heal the cluster")?;
    let open = runner
        .resolve_indeterminate(args.process_base + RESOLVE_PROCESS_OFFSET)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    if open > 0 {
        eprintln!("geowallet-jepsen worker: {open} writes still indeterminate after healing");
    }
    runner.recorder.flush()?;
    let surprises = runner
        .surprises
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    std::fs::write(&args.surprises, serde_json::to_string(&surprises)?)
        .with_context(|| format!("write {}", args.surprises.display()))?;
    result.map_err(|e| anyhow::anyhow!(e))
}
