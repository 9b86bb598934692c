//! What the bench prints on stdout: the HDR percentile table, counts, the
//! nodes' memory and CPU, the invariant verdict, and the one RESULT line
//! (field order fixed: the first ones match ../shared/peers' loadgen).

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use crate::args::{Args, Mode, Topology};
use crate::invariant::{Invariant, Resolution};
use crate::load_runner::OUTSTANDING_MAX;
use crate::node_monitor::{NodeStats, RSS_SAMPLE_INTERVAL};
use crate::schedule::LATE_AFTER;
use crate::tally::Tally;

/// Percentiles of the table, as (label, quantile).
const PERCENTILES: [(&str, f64); 6] = [
    ("p50", 0.5),
    ("p90", 0.9),
    ("p99", 0.99),
    ("p99.9", 0.999),
    ("p99.99", 0.9999),
    ("p99.999", 0.99999),
];

pub struct Report<'a> {
    pub args: &'a Args,
    pub topology: Topology,
    pub tally: &'a Tally,
    pub elapsed: Duration,
    /// Empty when node pids are unknown (`--endpoints` without `--cluster-json`).
    pub nodes: &'a [NodeStats],
    pub ticks_per_s: (u64, bool),
    pub bench_cpu_pct: Option<f64>,
    /// Every other process of the machine (nodes unknown: included here).
    pub other_cpu_pct: Option<f64>,
    pub resolution: &'a Resolution,
    pub invariant: &'a Invariant,
}

impl Report<'_> {
    pub fn ops_per_s(&self) -> f64 {
        self.tally.ops as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    pub fn print_tables(&self, svg_path: &Path) {
        let h = &self.tally.histogram;
        let origin = match self.args.mode() {
            Mode::Closed => "from each op's start",
            Mode::Open => "from each op's intended start",
        };
        println!("latency in µs ({origin}; HDR histogram, 3 significant digits):");
        println!("  {:<10} {:>12}", "percentile", "latency_us");
        for (label, q) in PERCENTILES {
            println!("  {label:<10} {:>12}", h.value_at_quantile(q));
        }
        println!("  {:<10} {:>12}", "max", h.max());
        println!("  {:<10} {:>12.0}", "mean", h.mean());
        self.print_counts();
        self.print_nodes();
        let pct = |c: Option<f64>| c.map_or_else(|| "null".to_owned(), |c| format!("{c:.0}%"));
        println!(
            "cpu over the run (% of one core): bench {}, other processes {} \
             (the nodes too when their pids are unknown; near 0 on a quiet machine)",
            pct(self.bench_cpu_pct),
            pct(self.other_cpu_pct)
        );
        println!("latency plot: {}", svg_path.display());
        println!("invariant:");
        for line in &self.invariant.lines {
            println!("  {line}");
        }
        println!(
            "  books {}; bench wallets' sum {} -> {}",
            if self.invariant.books_ok {
                "balance"
            } else {
                "DO NOT BALANCE"
            },
            self.invariant.sum_check.name(),
            if self.invariant.ok() { "ok" } else { "FAILED" }
        );
    }

    fn print_counts(&self) {
        let t = self.tally;
        let kinds: Vec<String> = t
            .ops_by_kind
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        println!(
            "ops: {} in {:.2} s = {:.0}/s ({})",
            t.ops,
            self.elapsed.as_secs_f64(),
            self.ops_per_s(),
            kinds.join(" ")
        );
        let codes: Vec<String> = t
            .errors_by_code
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        println!(
            "refused insufficient_funds: {}; errors: {}{}; \
             lost outcomes resolved after the run: {}, still unknown: {}",
            t.insufficient,
            t.errors,
            if codes.is_empty() {
                String::new()
            } else {
                format!(" ({})", codes.join(" "))
            },
            self.resolution.resolved,
            self.resolution.unresolved + t.unresolved_overflow
        );
        if let Some(rate) = self.args.rate {
            println!(
                "open loop at {rate}/s: dropped {} (due while all {OUTSTANDING_MAX} slots \
                 were busy), late {} (sent > {} ms after the intended start)",
                t.dropped,
                t.late,
                LATE_AFTER.as_millis()
            );
        }
        let per_s: Vec<String> = t.per_second.iter().map(u64::to_string).collect();
        println!("ops per second: {}", per_s.join(" "));
    }

    fn print_nodes(&self) {
        if self.nodes.is_empty() {
            println!("nodes: pids unknown (give --cluster-json); RSS and CPU absent");
            return;
        }
        let (ticks, measured) = self.ticks_per_s;
        let source = if measured {
            "getconf CLK_TCK"
        } else {
            "assumed; getconf failed"
        };
        println!(
            "nodes (RSS sampled every {} ms over preload, run and audit; \
             CPU over the run, % of one core, {ticks} ticks/s {source}):",
            RSS_SAMPLE_INTERVAL.as_millis()
        );
        println!(
            "  {:<5} {:>8} {:>16} {:>11} {:>8}",
            "node", "pid", "rss_kb_run_start", "rss_kb_max", "cpu_pct"
        );
        for n in self.nodes {
            println!(
                "  {:<5} {:>8} {:>16} {:>11} {:>8}",
                n.id,
                n.pid,
                opt(n.rss_kb_at_run_start),
                n.rss_kb_max,
                n.cpu_pct.map_or("null".into(), |c| format!("{c:.0}"))
            );
        }
    }

    /// The RESULT line; absent values are `null`.
    pub fn result_line(&self) -> String {
        let (a, t, h) = (self.args, self.tally, &self.tally.histogram);
        let rss = self
            .nodes
            .iter()
            .map(|n| n.rss_kb_max)
            .max()
            .filter(|kb| *kb > 0);
        let cpus: Option<Vec<f64>> = self.nodes.iter().map(|n| n.cpu_pct).collect();
        let node_cpu = cpus
            .filter(|c| !c.is_empty())
            .map(|c| c.iter().sum::<f64>());
        let pct = |c: Option<f64>| c.map_or_else(|| "null".to_owned(), |c| format!("{c:.0}"));
        let q = |q: f64| h.value_at_quantile(q).to_string();
        // The first sixteen keys are the contract (loadgen's leading keys, then
        // ours); keys may be added at the end, never removed or reordered.
        let fields: [(&str, String); 27] = [
            ("system", "geowallet".to_owned()),
            ("workload", a.workload.name().to_owned()),
            ("ops_per_s", format!("{:.0}", self.ops_per_s())),
            ("p50_us", q(0.5)),
            ("p99_us", q(0.99)),
            ("clients", a.clients.to_string()),
            ("dist", a.dist.name().to_owned()),
            ("p90_us", q(0.9)),
            ("p999_us", q(0.999)),
            ("max_us", h.max().to_string()),
            ("errors", t.errors.to_string()),
            ("rss_kb_max", opt(rss)),
            ("wallets", a.wallets.to_string()),
            ("preload_tx", a.preload_tx.to_string()),
            ("mode", a.mode().name().to_owned()),
            (
                "invariant",
                (if self.invariant.ok() { "ok" } else { "FAILED" }).to_owned(),
            ),
            ("insufficient", t.insufficient.to_string()),
            ("dropped", t.dropped.to_string()),
            ("late", t.late.to_string()),
            ("rate", opt(a.rate)),
            ("ops", t.ops.to_string()),
            ("elapsed_ms", self.elapsed.as_millis().to_string()),
            ("node_cpu_pct", pct(node_cpu)),
            ("bench_cpu_pct", pct(self.bench_cpu_pct)),
            ("sum_check", self.invariant.sum_check.name().to_owned()),
            ("other_cpu_pct", pct(self.other_cpu_pct)),
            ("topology", self.topology.name().to_owned()),
        ];
        let mut line = String::from("RESULT");
        for (key, value) in fields {
            let _ = write!(line, " {key}={value}");
        }
        line
    }
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "null".to_owned(), |v| v.to_string())
}
