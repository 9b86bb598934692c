//! A progress line on stderr every [`PROGRESS_INTERVAL`] while a phase
//! runs (preloading 10^7 wallets takes a while); stops when dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

pub struct Progress {
    task: JoinHandle<()>,
}

impl Progress {
    /// Reports `done` (out of `total`, if known) for the phase `label`.
    pub fn start(label: &'static str, done: Arc<AtomicU64>, total: Option<u64>) -> Progress {
        let started = Instant::now();
        let task = tokio::spawn(async move {
            let mut tick =
                tokio::time::interval_at((started + PROGRESS_INTERVAL).into(), PROGRESS_INTERVAL);
            loop {
                tick.tick().await;
                let n = done.load(Ordering::Relaxed);
                let secs = started.elapsed().as_secs_f64();
                let of = total.map(|t| format!("/{t}")).unwrap_or_default();
                eprintln!(
                    "{label}: {n}{of} after {secs:.0} s ({:.0}/s)",
                    n as f64 / secs.max(f64::MIN_POSITIVE)
                );
            }
        });
        Progress { task }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
    }
}
