//! Watches the node processes while the bench runs: resident memory sampled
//! every [`RSS_SAMPLE_INTERVAL`] (the largest value is kept per node), CPU
//! time read at the start and end of the measured run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::cluster_file::ClusterNode;
use crate::proc_fs;

pub const RSS_SAMPLE_INTERVAL: Duration = Duration::from_millis(200);

/// One node's figures, as reported.
#[derive(Debug, Clone)]
pub struct NodeStats {
    pub id: u64,
    pub pid: u32,
    pub rss_kb_at_run_start: Option<u64>,
    /// 0 when never sampled (the process was gone).
    pub rss_kb_max: u64,
    /// CPU during the measured run, in percent of one core.
    pub cpu_pct: Option<f64>,
}

/// CPU time of every watched process at one moment.
#[derive(Debug, Clone)]
pub struct CpuMark {
    at: Instant,
    node_ticks: Vec<Option<u64>>,
    bench_ticks: Option<u64>,
    machine_busy_ticks: Option<u64>,
}

pub struct NodeMonitor {
    nodes: Vec<(u64, u32)>,
    rss_max_kb: Arc<Vec<AtomicU64>>,
    sampler: JoinHandle<()>,
    ticks_per_s: u64,
}

impl NodeMonitor {
    /// Starts sampling the running nodes of `nodes` (stopped ones are skipped).
    pub fn start(nodes: &[ClusterNode], ticks_per_s: u64) -> NodeMonitor {
        let nodes: Vec<(u64, u32)> = nodes.iter().filter_map(|n| Some((n.id, n.pid?))).collect();
        let rss_max_kb: Arc<Vec<AtomicU64>> =
            Arc::new(nodes.iter().map(|_| AtomicU64::new(0)).collect());
        let (pids, maxima) = (
            nodes.iter().map(|n| n.1).collect::<Vec<_>>(),
            rss_max_kb.clone(),
        );
        let sampler = tokio::spawn(async move {
            let mut tick = tokio::time::interval(RSS_SAMPLE_INTERVAL);
            loop {
                tick.tick().await;
                for (pid, max) in pids.iter().zip(maxima.iter()) {
                    if let Some(kb) = proc_fs::rss_kb(&pid.to_string()) {
                        max.fetch_max(kb, Ordering::Relaxed);
                    }
                }
            }
        });
        NodeMonitor {
            nodes,
            rss_max_kb,
            sampler,
            ticks_per_s,
        }
    }

    pub fn cpu_mark(&self) -> CpuMark {
        CpuMark {
            at: Instant::now(),
            node_ticks: self
                .nodes
                .iter()
                .map(|(_, pid)| proc_fs::cpu_ticks(&pid.to_string()))
                .collect(),
            bench_ticks: proc_fs::cpu_ticks("self"),
            machine_busy_ticks: proc_fs::machine_busy_ticks(),
        }
    }

    pub fn rss_now(&self) -> Vec<Option<u64>> {
        self.nodes
            .iter()
            .map(|(_, pid)| proc_fs::rss_kb(&pid.to_string()))
            .collect()
    }

    /// CPU of the bench process itself between two marks, in percent of one core.
    pub fn bench_cpu_pct(&self, start: &CpuMark, end: &CpuMark) -> Option<f64> {
        self.pct(start.bench_ticks?, end.bench_ticks?, end.at - start.at)
    }

    /// CPU of every other process of the machine between two marks (busy
    /// machine time less the nodes' and the bench's), in percent of one core.
    pub fn other_cpu_pct(&self, start: &CpuMark, end: &CpuMark) -> Option<f64> {
        let mut ours = end.bench_ticks?.checked_sub(start.bench_ticks?)?;
        for (a, b) in start.node_ticks.iter().zip(&end.node_ticks) {
            ours += b.as_ref()?.checked_sub(*a.as_ref()?)?;
        }
        let busy = end
            .machine_busy_ticks?
            .checked_sub(start.machine_busy_ticks?)?;
        self.pct(0, busy.saturating_sub(ours), end.at - start.at)
    }

    fn pct(&self, start_ticks: u64, end_ticks: u64, over: Duration) -> Option<f64> {
        let secs = over.as_secs_f64();
        let used = end_ticks.checked_sub(start_ticks)? as f64 / self.ticks_per_s as f64;
        (secs > 0.0).then(|| 100.0 * used / secs)
    }

    /// Stops sampling; per-node figures for the run between `start` and `end`.
    pub fn finish(
        self,
        rss_at_run_start: &[Option<u64>],
        start: &CpuMark,
        end: &CpuMark,
    ) -> Vec<NodeStats> {
        self.sampler.abort();
        let over = end.at - start.at;
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, &(id, pid))| NodeStats {
                id,
                pid,
                rss_kb_at_run_start: rss_at_run_start.get(i).copied().flatten(),
                rss_kb_max: self.rss_max_kb[i].load(Ordering::Relaxed),
                cpu_pct: match (start.node_ticks[i], end.node_ticks[i]) {
                    (Some(a), Some(b)) => self.pct(a, b, over),
                    _ => None,
                },
            })
            .collect()
    }
}

impl Drop for NodeMonitor {
    fn drop(&mut self) {
        self.sampler.abort();
    }
}
