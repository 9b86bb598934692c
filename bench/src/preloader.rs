//! Before the measured run, through the real client write path: open and
//! fund every wallet, then (with `--preload-tx N`) write N distinct
//! transaction records, so the run meets a ledger with history inside the
//! idempotency window.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use geowallet_client::{Client, CreditKind, DebitKind, Error, Tx};
use tokio::task::JoinSet;

use crate::progress::Progress;
use crate::wallet_set::WalletSet;

/// Each wallet's deposit, in minor units: enough that no run of the
/// debiting workloads can empty a wallet (10^9 = 10^7 EUR; a hot wallet
/// at 10^4 debits/s of at most 100 lasts over 10^3 s).
pub const FUNDING_MINOR: u64 = 1_000_000_000;
/// Wallets opened and funded concurrently.
const WALLET_TASKS_MAX: u64 = 256;
/// Transaction records written concurrently.
const TX_TASKS_MAX: u64 = 1_024;
/// Amount of each preloaded credit or debit, in minor units.
const PRELOAD_TX_AMOUNT: u64 = 1;

#[derive(Clone)]
pub struct Preloader {
    pub client: Client,
    pub wallets: WalletSet,
    pub run_tag: String,
}

impl Preloader {
    /// Opens every wallet (one that exists already is fine) and deposits
    /// [`FUNDING_MINOR`] into it.
    pub async fn wallets(&self) -> anyhow::Result<()> {
        let this = self.clone();
        let count = self.wallets.count();
        for_each_index("preload wallets", count, WALLET_TASKS_MAX, move |w| {
            let this = this.clone();
            async move {
                let account = this.wallets.account(w);
                let open = Tx::new(format!("{}-open-{w}", this.run_tag));
                match this.client.open(&open, &account).await {
                    Ok(_) | Err(Error::AccountExists { .. }) => {}
                    Err(e) => return Err(e).with_context(|| format!("open {account}")),
                }
                let fund = Tx::new(format!("{}-fund-{w}", this.run_tag));
                this.client
                    .credit(&fund, &account, FUNDING_MINOR, CreditKind::Deposit)
                    .await
                    .with_context(|| format!("fund {account}"))?;
                Ok(())
            }
        })
        .await
    }

    /// Writes `n` transactions, each a distinct record: record `k` is a
    /// credit (even `k`) or debit (odd `k`) of [`PRELOAD_TX_AMOUNT`] on wallet
    /// `k % wallets`.
    pub async fn tx_records(&self, n: u64) -> anyhow::Result<()> {
        let this = self.clone();
        for_each_index("preload tx records", n, TX_TASKS_MAX, move |k| {
            let this = this.clone();
            async move {
                let account = this.wallets.account(k % this.wallets.count());
                let tx = Tx::new(format!("{}-pre-{k}", this.run_tag));
                let sent = if k % 2 == 0 {
                    let kind = CreditKind::Bonus;
                    this.client
                        .credit(&tx, &account, PRELOAD_TX_AMOUNT, kind)
                        .await
                } else {
                    let kind = DebitKind::Fee;
                    this.client
                        .debit(&tx, &account, PRELOAD_TX_AMOUNT, kind)
                        .await
                };
                sent.with_context(|| format!("preload tx {} on {account}", tx.id))?;
                Ok(())
            }
        })
        .await
    }
}

/// Runs `f(i)` for every `i` in `0..total`, `tasks_max` at a time (task `s`
/// takes `s, s + tasks, ...`), with progress lines; stops at the first error.
async fn for_each_index<F, Fut>(
    label: &'static str,
    total: u64,
    tasks_max: u64,
    f: F,
) -> anyhow::Result<()>
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let _progress = Progress::start(label, done.clone(), Some(total));
    let tasks = tasks_max.min(total);
    let mut set = JoinSet::new();
    for s in 0..tasks {
        let (f, done) = (f.clone(), done.clone());
        set.spawn(async move {
            let mut i = s;
            while i < total {
                f(i).await?;
                done.fetch_add(1, Ordering::Relaxed);
                i += tasks;
            }
            anyhow::Ok(())
        });
    }
    // Dropping the set on an error aborts the other tasks.
    while let Some(r) = set.join_next().await {
        r.context("preload task")??;
    }
    Ok(())
}
