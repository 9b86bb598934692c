//! The Jepsen-style summary of a run.

use std::collections::BTreeMap;
use std::path::Path;

use geowallet_harness::Checked;
use geowallet_testkit::{EventType, HistoryEvent};

use crate::nemesis::Fault;

pub struct Summary<'a> {
    pub seed: u64,
    pub history: &'a [HistoryEvent],
    pub faults: &'a [Fault],
    pub checked: &'a Checked,
    pub replicas: &'a Result<String, String>,
    /// Planned refusals that were applied, tx ids answered expired.
    pub surprises: &'a [String],
    pub history_path: &'a Path,
    pub edn_path: &'a Path,
}

impl Summary<'_> {
    pub fn valid(&self) -> bool {
        self.checked.passed() && self.replicas.is_ok() && self.surprises.is_empty()
    }

    pub fn print(&self) {
        println!();
        println!("ops by function and outcome:");
        let mut by_f: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
        for e in self.history {
            let slot = match e.kind {
                EventType::Invoke => continue,
                EventType::Ok => 0,
                EventType::Fail => 1,
                EventType::Info => 2,
            };
            by_f.entry(e.f.name()).or_default()[slot] += 1;
        }
        println!("  {:<10} {:>7} {:>7} {:>7}", "f", "ok", "fail", "info");
        for (f, [ok, fail, info]) in &by_f {
            println!("  {f:<10} {ok:>7} {fail:>7} {info:>7}");
        }
        let c = self.checked;
        println!(
            "  {:<10} {:>7} {:>7} {:>7}   ({} calls)",
            "total", c.ok, c.failed, c.indeterminate, c.calls
        );
        let mut per_account: BTreeMap<&str, usize> = BTreeMap::new();
        for e in self.history.iter().filter(|e| e.kind == EventType::Invoke) {
            for a in e.account.iter().chain(&e.value.to) {
                *per_account.entry(a.as_str()).or_default() += 1;
            }
        }
        println!(
            "  {} accounts; calls per account at most {} (reads within audits not counted)",
            per_account.len(),
            per_account.values().max().copied().unwrap_or(0)
        );
        println!();
        let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
        for f in self.faults {
            *by_kind.entry(f.kind.name()).or_default() += 1;
        }
        println!("faults struck: {} {:?}", self.faults.len(), by_kind);
        for f in self.faults {
            println!(
                "  {:>6.1} s  {:<9} {} ({:.1} s)",
                f.at.as_secs_f64(),
                f.kind.name(),
                f.what,
                f.held.as_secs_f64()
            );
        }
        println!();
        println!(
            "checkers (seed {}; linearizability search {} steps in {} ms):",
            self.seed,
            c.lin_steps,
            c.lin_time.as_millis()
        );
        let line = |name: &str, v: &Result<String, String>| match v {
            Ok(what) => println!("  {name:<16} ok      {what}"),
            Err(why) => println!("  {name:<16} FAILED  {why}"),
        };
        for (name, v) in &c.verdicts {
            line(name, v);
        }
        line("replicas", self.replicas);
        let surprises = if self.surprises.is_empty() {
            Ok("none".to_string())
        } else {
            Err(format!("{:?}", self.surprises))
        };
        line("surprises", &surprises);
        println!();
        println!("history: {}", self.history_path.display());
        println!("as EDN:  {}", self.edn_path.display());
        println!("valid: {}", self.valid());
    }
}
