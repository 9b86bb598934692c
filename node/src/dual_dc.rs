//! Synchronous dual-datacenter acknowledgement. A committed write is
//! acknowledged to its client only once it is durable (the leader's
//! replication metrics: a follower's matched index is what it fsynced; the
//! leader's own entry is its flushed log) on at least one voter in each
//! datacenter of the group's home region. When a datacenter cannot confirm
//! (all its voters silent, or still behind after `wait`), the group's
//! policy decides: `strict` fails the write as unavailable (the client
//! reports it indeterminate and a retry with the same tx id is answered
//! from the record, again only once durable in both), `available` (the
//! default) acknowledges on the Raft majority and marks the group degraded
//! until that datacenter has caught up.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use geowallet_raft::{GroupRaft, TypeConfig};
use geowallet_storage::Engine;
use openraft::RaftMetrics;
use openraft::async_runtime::WatchReceiver;
// The trait gives tokio's instants `elapsed` here; madsim's have their own.
#[cfg_attr(madsim, allow(unused_imports))]
use openraft::Instant;
use serde::{Deserialize, Serialize};

use crate::proposer::ProposeError;

/// What a group does when a datacenter of its home region cannot confirm
/// a write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DualDcPolicy {
    /// Acknowledge on the Raft majority and flag the group degraded until
    /// the datacenter is back and caught up.
    #[default]
    Available,
    /// Never acknowledge a write that is not durable in both datacenters:
    /// it fails as unavailable instead.
    Strict,
}

impl std::fmt::Display for DualDcPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DualDcPolicy::Available => "available",
            DualDcPolicy::Strict => "strict",
        })
    }
}

/// One group's dual-datacenter acknowledgement.
pub struct DualDc {
    home_region: String,
    policy: DualDcPolicy,
    /// How long a write waits for a live but lagging datacenter.
    wait: Duration,
    /// A datacenter none of whose voters acknowledged the leader for this
    /// long is down (its writes are not waited for).
    down_after: Duration,
    degraded: AtomicBool,
    /// (term, when this node was first seen leading in it): a voter that
    /// has not answered a leader that has led for `down_after` is silent.
    /// Set by `watch_leadership` as soon as the node leads (a write's own
    /// check sets it otherwise), so a datacenter lost with the old leader
    /// is known down `down_after` after the election, not after the first
    /// write plus `down_after`.
    leader_since: Mutex<Option<(u64, tokio::time::Instant)>>,
}

/// Where one index stands, as the leader's metrics tell.
#[derive(Debug, PartialEq, Eq)]
enum Check {
    /// Durable in every datacenter of the home region.
    Durable,
    /// Not (yet) durable in these datacenters; `down` when none of their
    /// voters answered the leader lately.
    Missing { dcs: Vec<String>, down: bool },
    /// This node no longer leads: it cannot tell.
    NotLeader,
}

impl DualDc {
    pub fn new(
        home_region: String,
        policy: DualDcPolicy,
        wait: Duration,
        down_after: Duration,
    ) -> DualDc {
        DualDc {
            home_region,
            policy,
            wait,
            down_after,
            degraded: AtomicBool::new(false),
            leader_since: Mutex::new(None),
        }
    }

    pub fn policy(&self) -> DualDcPolicy {
        self.policy
    }

    /// True while writes are acknowledged without a datacenter of the home
    /// region (policy `available` only).
    pub fn degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    /// Returns once log index `index` (committed) may be acknowledged.
    pub async fn wait_durable<E: Engine>(
        &self,
        raft: &GroupRaft<E>,
        index: u64,
    ) -> Result<(), ProposeError> {
        let mut rx = raft.metrics();
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            let check = self.check(&rx.borrow_watched(), index);
            match check {
                Check::Durable => {
                    if self.degraded.swap(false, Ordering::Relaxed) {
                        tracing::info!(index, "both datacenters confirm writes again");
                    }
                    return Ok(());
                }
                Check::NotLeader => {
                    return Err(ProposeError::Unavailable(format!(
                        "leadership changed before index {index} was confirmed durable in both \
                         datacenters of {}; retry with the same tx id",
                        self.home_region
                    )));
                }
                Check::Missing { dcs, down } => {
                    let late = tokio::time::Instant::now() >= deadline;
                    if down || late || self.degraded() {
                        return self.without(&dcs, index, down);
                    }
                }
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            // A metrics change (a replica's progress), or soon enough to
            // notice a datacenter going silent (that changes no metric).
            let wait = left.min(self.down_after / 4);
            if let Ok(Err(_)) = tokio::time::timeout(wait, rx.changed()).await {
                // Raft stopped: no metrics will ever change again.
                return Err(ProposeError::Unavailable(
                    "the group is shutting down".into(),
                ));
            }
        }
    }

    /// A datacenter did not confirm `index`: the policy decides.
    fn without(&self, dcs: &[String], index: u64, down: bool) -> Result<(), ProposeError> {
        let why = if down {
            "its voters are unreachable"
        } else {
            "its voters are behind"
        };
        let which = dcs.join(", ");
        match self.policy {
            DualDcPolicy::Available => {
                if !self.degraded.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        index,
                        datacenters = %which,
                        region = %self.home_region,
                        "acknowledging on the majority without datacenter(s) {which} ({why}); \
                         the group is degraded until they catch up"
                    );
                }
                Ok(())
            }
            DualDcPolicy::Strict => Err(ProposeError::Unavailable(format!(
                "index {index} is committed but not confirmed durable in datacenter {which} of \
                 {} ({why}); policy strict refuses to acknowledge it: retry with the same tx \
                 id once the datacenter is back",
                self.home_region
            ))),
        }
    }

    /// Notes that this node leads in `term` (the first time it is seen);
    /// true when it has led for longer than `down_after`.
    fn led_long(&self, term: u64) -> bool {
        let mut since = self.leader_since.lock().unwrap_or_else(|p| p.into_inner());
        match *since {
            Some((t, at)) if t == term => at.elapsed() > self.down_after,
            _ => {
                *since = Some((term, tokio::time::Instant::now()));
                false
            }
        }
    }

    /// Follows `raft`'s metrics and notes each term this node starts to
    /// lead in, until Raft stops.
    pub async fn watch_leadership<E: Engine>(&self, raft: GroupRaft<E>) {
        let mut rx = raft.metrics();
        loop {
            {
                let m = rx.borrow_watched();
                if m.state.is_leader() {
                    self.led_long(m.current_term);
                }
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    fn check(&self, m: &RaftMetrics<TypeConfig>, index: u64) -> Check {
        let (Some(replication), true) = (&m.replication, m.state.is_leader()) else {
            return Check::NotLeader;
        };
        let led_long = self.led_long(m.current_term);
        let membership = m.membership_config.membership();
        // Home-region voters by datacenter.
        let mut dcs: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for id in membership.voter_ids() {
            if let Some(n) = membership.get_node(&id)
                && n.region == self.home_region
            {
                dcs.entry(n.dc.as_str()).or_default().push(id);
            }
        }
        let matched = |id: &u64| {
            replication
                .get(id)
                .and_then(|l| l.as_ref())
                .map_or(0, |l| l.index)
        };
        let mut missing = Vec::new();
        let mut down = false;
        for (dc, voters) in &dcs {
            if voters.iter().any(|v| matched(v) >= index) {
                continue;
            }
            missing.push(dc.to_string());
            let silent = voters.iter().all(|v| {
                let acked = m
                    .heartbeat
                    .as_ref()
                    .and_then(|h| h.get(v).cloned().flatten());
                *v != m.id
                    && match acked {
                        Some(at) => at.elapsed() > self.down_after,
                        None => led_long,
                    }
            });
            down |= silent;
        }
        if missing.is_empty() {
            Check::Durable
        } else {
            Check::Missing { dcs: missing, down }
        }
    }
}
