//! `geowallet load`: a simple closed-loop debit load (C concurrent clients,
//! one operation each at a time) with an HDR histogram. The benchmark crate
//! will replace it; until then it gives the figures in the README.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use geowallet_client::{Account, Client, ClientConfig, CreditKind, DebitKind, Error, Tx};
use hdrhistogram::Histogram;
use tokio::sync::Mutex;

#[derive(Debug, Args)]
pub struct LoadArgs {
    #[arg(long, value_delimiter = ',', required = true)]
    pub endpoints: Vec<String>,
    /// Concurrent clients, each with one debit in flight.
    #[arg(short, long, default_value_t = 64)]
    pub clients: u64,
    #[arg(short, long, default_value_t = 10)]
    pub duration_s: u64,
    #[arg(short = 'n', long, default_value_t = 10_000)]
    pub accounts: u64,
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let client = Client::connect(args.endpoints.clone(), ClientConfig::default())?;
    let run_id = std::process::id();
    let preload = Instant::now();
    let mut tasks = Vec::new();
    for chunk in 0..args.clients.min(args.accounts) {
        let client = client.clone();
        let (accounts, clients) = (args.accounts, args.clients.min(args.accounts));
        tasks.push(tokio::spawn(async move {
            let mut p = chunk;
            while p < accounts {
                let a = Account::new(1_000_000 + p, "EUR");
                match client.open(&Tx::new(format!("load-open-{run_id}-{p}")), &a).await {
                    Ok(_) | Err(Error::AccountExists { .. }) => {}
                    Err(e) => return Err(e),
                }
                client
                    .credit(
                        &Tx::new(format!("load-fund-{run_id}-{p}")),
                        &a,
                        1_000_000_000,
                        CreditKind::Deposit,
                    )
                    .await?;
                p += clients;
            }
            Ok::<_, Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    println!(
        "load: {} accounts ready in {:.1}s",
        args.accounts,
        preload.elapsed().as_secs_f64()
    );
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let deadline = Instant::now() + Duration::from_secs(args.duration_s);
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..args.clients {
        let (client, hist) = (client.clone(), hist.clone());
        let accounts = args.accounts;
        workers.push(tokio::spawn(async move {
            let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
                .expect("valid histogram bounds");
            let (mut i, mut errors) = (0u64, 0u64);
            while Instant::now() < deadline {
                i += 1;
                let p = (w.wrapping_mul(7919) + i.wrapping_mul(104_729)) % accounts;
                let t = Instant::now();
                let r = client
                    .debit(
                        &Tx::new(format!("load-{run_id}-{w}-{i}")),
                        &Account::new(1_000_000 + p, "EUR"),
                        1,
                        DebitKind::Bet,
                    )
                    .await;
                if r.is_err() {
                    errors += 1;
                }
                let _ = local.record(t.elapsed().as_micros().max(1) as u64);
            }
            hist.lock()
                .await
                .add(&local)
                .expect("same histogram bounds");
            errors
        }));
    }
    let mut errors = 0;
    for w in workers {
        errors += w.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let h = hist.lock().await;
    let ops = h.len();
    println!(
        "RESULT system=geowallet workload=debit ops_per_s={:.0} p50_us={} p99_us={} p999_us={} max_us={} clients={} errors={errors}",
        ops as f64 / elapsed,
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max(),
        args.clients
    );
    Ok(())
}
