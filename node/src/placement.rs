//! Leader placement: each group prefers a leader in its home region's
//! datacenter `a`, then `b`, and never one outside the home region while a
//! home-region voter is healthy. Elections pick whoever is fastest; the
//! leader then hands leadership to a better-placed voter once that voter
//! has been healthy (acknowledging the leader, holding every committed
//! entry, its clock agreeing) for a while, and not more often than every
//! few seconds, so leadership fails back after a datacenter returns without
//! flapping while it catches up.

use std::collections::BTreeMap;
use std::time::Duration;

use geowallet_raft::{ClockQuorum, GroupRaft, NodeInfo, TypeConfig};
use geowallet_storage::{Engine, GroupId};
use openraft::RaftMetrics;
use openraft::async_runtime::WatchReceiver;
// The trait gives tokio's instants `elapsed` here; madsim's have their own.
#[cfg_attr(madsim, allow(unused_imports))]
use openraft::Instant;
use tokio::time::Instant as TokioInstant;

/// How the leader of one group places leadership.
#[derive(Debug, Clone)]
pub struct PlacementPolicy {
    pub home_region: String,
    /// How often the leader looks.
    pub interval: Duration,
    /// A voter must be healthy this long before it takes over.
    pub stable_for: Duration,
    /// A voter that did not acknowledge the leader for this long is not
    /// healthy.
    pub silent_after: Duration,
    /// At most one transfer per this long.
    pub transfer_gap: Duration,
}

/// 0: home region, datacenter `a`; 1: home region, `b`; 2: elsewhere.
pub fn rank(node: &NodeInfo, home_region: &str) -> u8 {
    match (node.region == home_region, node.dc.as_str()) {
        (true, "a") => 0,
        (true, _) => 1,
        (false, _) => 2,
    }
}

/// The placement state of one group's leader.
struct Placer {
    policy: PlacementPolicy,
    /// Since when each better-placed voter has been healthy.
    healthy_since: BTreeMap<u64, TokioInstant>,
    last_transfer: Option<TokioInstant>,
}

impl Placer {
    /// The voter to hand leadership to now, if any.
    fn decide(&mut self, m: &RaftMetrics<TypeConfig>, clocks: &ClockQuorum) -> Option<u64> {
        let now = TokioInstant::now();
        let leading = m.state.is_leader() && m.current_leader == Some(m.id);
        let (Some(replication), true) = (&m.replication, leading) else {
            self.healthy_since.clear();
            return None;
        };
        let membership = m.membership_config.membership();
        let home = &self.policy.home_region;
        let my_rank = membership.get_node(&m.id).map_or(2, |n| rank(n, home));
        let committed = m.local_committed.as_ref().map_or(0, |l| l.index);
        let mut best: Option<(u8, u64)> = None;
        for id in membership.voter_ids().filter(|v| *v != m.id) {
            let Some(node) = membership.get_node(&id) else {
                continue;
            };
            let r = rank(node, home);
            let matched = replication
                .get(&id)
                .and_then(|l| l.as_ref())
                .map_or(0, |l| l.index);
            let acked = m
                .heartbeat
                .as_ref()
                .and_then(|h| h.get(&id).cloned().flatten())
                .is_some_and(|at| at.elapsed() <= self.policy.silent_after);
            let healthy = r < my_rank && acked && matched >= committed && clocks.agrees_with(id);
            if !healthy {
                self.healthy_since.remove(&id);
                continue;
            }
            let since = *self.healthy_since.entry(id).or_insert(now);
            if now.saturating_duration_since(since) >= self.policy.stable_for
                && best.is_none_or(|b| (r, id) < b)
            {
                best = Some((r, id));
            }
        }
        let gap_ok = self
            .last_transfer
            .is_none_or(|t| now.saturating_duration_since(t) >= self.policy.transfer_gap);
        let (_, to) = best.filter(|_| gap_ok)?;
        self.last_transfer = Some(now);
        self.healthy_since.clear();
        Some(to)
    }
}

/// Runs on every replica of `group`; acts only while this node leads it.
pub async fn run<E: Engine>(
    group: GroupId,
    raft: GroupRaft<E>,
    clocks: ClockQuorum,
    policy: PlacementPolicy,
) {
    let mut interval = tokio::time::interval(policy.interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut placer = Placer {
        policy,
        healthy_since: BTreeMap::new(),
        last_transfer: None,
    };
    loop {
        interval.tick().await;
        let to = placer.decide(&raft.metrics().borrow_watched(), &clocks);
        if let Some(to) = to {
            tracing::info!(%group, to, "handing leadership to a better-placed voter");
            if let Err(e) = raft.trigger().transfer_leader(to).await {
                tracing::warn!(%group, to, error = %e, "leadership transfer failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(region: &str, dc: &str) -> NodeInfo {
        NodeInfo {
            addr: String::new(),
            region: region.into(),
            dc: dc.into(),
        }
    }

    // Home region's datacenter a first, then b, then any other region.
    #[test]
    fn ranks_home_a_then_home_b_then_elsewhere() {
        assert_eq!(rank(&node("eu", "a"), "eu"), 0);
        assert_eq!(rank(&node("eu", "b"), "eu"), 1);
        assert_eq!(rank(&node("us", "a"), "eu"), 2);
        assert_eq!(rank(&node("us", "b"), "eu"), 2);
    }
}
