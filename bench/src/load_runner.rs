//! The measured run: closed loop (each client one operation in flight) or
//! open loop (operations started on a fixed schedule, at most
//! [`OUTSTANDING_MAX`] in flight).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use geowallet_client::Client;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::key_picker::KeyPicker;
use crate::op::OpRecord;
use crate::schedule::{Schedule, is_late};
use crate::tally::Tally;
use crate::wallet_set::WalletSet;
use crate::workload::{ScriptGen, Workload};

/// Open loop: operations in flight at most; an operation due while all
/// slots are busy is dropped (counted), not queued.
pub const OUTSTANDING_MAX: usize = 4_096;
/// Open loop: the stream number of the dispatcher's transaction ids.
const DISPATCHER_STREAM: u64 = u64::MAX;

/// What every operation of the run shares.
pub struct LoadRunner {
    pub client: Client,
    pub wallets: WalletSet,
    pub picker: KeyPicker,
    pub workload: Workload,
    pub seed: u64,
    pub run_tag: String,
    /// Completed operations, for progress lines.
    pub completed: Arc<AtomicU64>,
}

impl LoadRunner {
    fn script_gen(&self, stream: u64) -> ScriptGen {
        ScriptGen::new(self.workload, self.picker, self.seed, &self.run_tag, stream)
    }

    /// Each of `clients` tasks runs one script at a time until `duration`
    /// has passed; returns the merged tally.
    pub async fn closed_loop(self: Arc<Self>, clients: u64, duration: Duration) -> Tally {
        let origin = Instant::now();
        let deadline = origin + duration;
        let mut tasks = JoinSet::new();
        for stream in 0..clients {
            let runner = self.clone();
            tasks.spawn(async move {
                let mut scripts = runner.script_gen(stream);
                let mut tally = Tally::new(origin);
                while Instant::now() < deadline {
                    let script = scripts.next_script();
                    let records = script
                        .run(&runner.client, &runner.wallets, Instant::now())
                        .await;
                    runner.add(&mut tally, records);
                }
                tally
            });
        }
        let mut total = Tally::new(origin);
        while let Some(done) = tasks.join_next().await {
            total.merge(done.expect("load task does not panic"));
        }
        total
    }

    /// Starts script `k` at `start + k / rate` for `duration`; latency of a
    /// script's first operation counts from its intended start.
    pub async fn open_loop(self: Arc<Self>, rate_per_s: u64, duration: Duration) -> Tally {
        let origin = Instant::now();
        let schedule = Schedule::new(origin, rate_per_s);
        let slots = Arc::new(Semaphore::new(OUTSTANDING_MAX));
        let mut scripts = self.script_gen(DISPATCHER_STREAM);
        let mut tally = Tally::new(origin);
        let mut tasks: JoinSet<(bool, Vec<OpRecord>)> = JoinSet::new();
        for k in 0..schedule.due_within(duration) {
            let intended = schedule.intended_start(k);
            tokio::time::sleep_until(intended.into()).await;
            let script = scripts.next_script();
            match slots.clone().try_acquire_owned() {
                Ok(permit) => {
                    let runner = self.clone();
                    tasks.spawn(async move {
                        let late = is_late(intended, Instant::now());
                        let records = script.run(&runner.client, &runner.wallets, intended).await;
                        drop(permit);
                        (late, records)
                    });
                }
                Err(_) => tally.dropped += 1,
            }
            while let Some(done) = tasks.try_join_next() {
                self.add_open(&mut tally, done.expect("load task does not panic"));
            }
        }
        while let Some(done) = tasks.join_next().await {
            self.add_open(&mut tally, done.expect("load task does not panic"));
        }
        tally
    }

    fn add_open(&self, tally: &mut Tally, (late, records): (bool, Vec<OpRecord>)) {
        tally.late += u64::from(late);
        self.add(tally, records);
    }

    fn add(&self, tally: &mut Tally, records: Vec<OpRecord>) {
        self.completed
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        for r in records {
            tally.record(r);
        }
    }
}
