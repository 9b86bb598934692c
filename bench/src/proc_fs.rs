//! Reading processes from Linux's /proc: resident memory, CPU time, command
//! line. Every reader returns `None` for a process that is gone or a file
//! it cannot parse; the bench reports such values as absent.

use std::process::Command;

/// Clock ticks per second assumed when `getconf CLK_TCK` cannot be run:
/// Linux's USER_HZ, which is 100 on every mainstream architecture.
pub const CLOCK_TICKS_PER_S_DEFAULT: u64 = 100;

/// `VmRSS` of `/proc/PID/status` (or `self`), in KiB.
pub fn rss_kb(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of `/proc/PID/stat` (or `self`), in clock ticks.
pub fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces:
    // fields are counted from after its closing parenthesis, where field 3
    // (state) is first, so utime (14) and stime (15) are the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Busy clock ticks of the whole machine since boot (all CPUs; idle and
/// iowait excluded), from the first line of /proc/stat.
pub fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .map(|t| t.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let total: u64 = ticks.iter().take(8).sum();
    Some(total - ticks.get(3)? - ticks.get(4)?)
}

/// `/proc/PID/cmdline` with NULs as spaces.
pub fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}

/// Clock ticks per second (`getconf CLK_TCK`), and whether it was measured
/// rather than assumed.
pub fn clock_ticks_per_s() -> (u64, bool) {
    let out = Command::new("getconf").arg("CLK_TCK").output().ok();
    let parsed = out
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<u64>()
                .ok()
        })
        .filter(|t| *t > 0);
    match parsed {
        Some(t) => (t, true),
        None => (CLOCK_TICKS_PER_S_DEFAULT, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves the readers parse this very process's /proc entries.
    #[test]
    fn reads_own_process() {
        assert!(rss_kb("self").is_some_and(|kb| kb > 0));
        assert!(cpu_ticks("self").is_some());
        assert!(cmdline(std::process::id()).is_some_and(|c| !c.is_empty()));
        assert!(clock_ticks_per_s().0 > 0);
        assert!(machine_busy_ticks().is_some());
        assert_eq!(rss_kb("999999999"), None);
    }
}
