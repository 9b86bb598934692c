//! Ledger time bounded by a quorum of clocks. Every Raft reply carries the
//! replying node's wall time; the sender measures the round trip and keeps,
//! per peer, the estimated offset of the peer's clock from its own (peer
//! time minus the midpoint of the round trip, within half the round trip).
//! A leader stamps an entry with its own time only while a majority of the
//! group's voters, itself included, read the same time within the
//! tolerance. A leader whose clock is days ahead therefore never stamps a
//! write: it refuses writes as unavailable, says so in its status, and hands
//! leadership to a voter whose clock agrees with the others (TigerBeetle
//! bounds cluster time the same way, with Marzullo's interval).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// How far apart two clocks may read and still agree, by default.
pub const CLOCK_TOLERANCE_DEFAULT: Duration = Duration::from_millis(1000);
/// A measurement older than this no longer counts (heartbeats refresh it
/// every heartbeat interval while the peer is reachable).
const SAMPLE_AGE_MAX: Duration = Duration::from_secs(5);
/// Leadership is handed only to a voter that replied this recently (alive).
const CANDIDATE_REPLY_AGE_MAX: Duration = Duration::from_secs(1);
/// A leader that disagrees hands leadership away at most this often.
const TRANSFER_INTERVAL_MIN: Duration = Duration::from_secs(1);

/// This node's wall clock: the system's, plus an offset that only the
/// simulator and tests set (to skew one node's clock).
#[derive(Debug, Clone, Default)]
pub struct WallClock {
    offset_ns: Arc<AtomicI64>,
}

impl WallClock {
    /// Nanoseconds since the Unix epoch as this node reads them.
    pub fn now_ns(&self) -> u64 {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        system.saturating_add_signed(self.offset_ns.load(Ordering::Relaxed))
    }

    /// Skews this clock by `offset_ns` from the system's (tests only).
    pub fn set_offset_ns(&self, offset_ns: i64) {
        self.offset_ns.store(offset_ns, Ordering::Relaxed);
    }
}

/// One measurement of a peer's clock: it read `peer_ns` at about the
/// round trip's midpoint. Kept against the monotonic clock, so a jump of this
/// node's own wall clock shows in the very next verdict, before any peer is
/// measured again.
#[derive(Debug, Clone, Copy)]
struct Sample {
    peer_ns: u64,
    midpoint: Instant,
    /// Half the round trip: the estimate is right within this.
    error_ns: u64,
}

impl Sample {
    /// The peer's clock minus ours at monotonic instant `now`, when ours reads `wall_ns`.
    fn offset_ns(&self, now: Instant, wall_ns: u64) -> i64 {
        let since = now.saturating_duration_since(self.midpoint).as_nanos();
        let peer_now = i128::from(self.peer_ns) + since as i128;
        let offset = peer_now - i128::from(wall_ns);
        offset.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}

/// A peer's clock as measured, relative to this node's now.
struct Measured {
    peer: u64,
    offset_ns: i64,
    error_ns: u64,
    /// Replied within `CANDIDATE_REPLY_AGE_MAX`: alive, may take over.
    recent: bool,
}

/// Taken just before a request is sent; completed by [`ClockQuorum::record`].
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    sent: Instant,
}

/// Whether this node may stamp ledger time now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockVerdict {
    /// A majority of voters (this node included) read the same time within
    /// the tolerance: stamp `now_ns`.
    Agreed { now_ns: u64 },
    /// Too few fresh measurements to tell (just elected, peers unreachable).
    Unknown { agreeing: usize, needed: usize },
    /// So many voters' clocks disagree with this node's that no majority can
    /// agree with it. `offsets_ns`: the disagreeing voters' clocks minus
    /// ours. `candidate`: a voter whose clock agrees with enough others to
    /// stamp time, to hand leadership to.
    Disagrees {
        offsets_ns: Vec<(u64, i64)>,
        needed: usize,
        candidate: Option<u64>,
    },
}

impl ClockVerdict {
    pub fn is_agreed(&self) -> bool {
        matches!(self, ClockVerdict::Agreed { .. })
    }
}

impl std::fmt::Display for ClockVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClockVerdict::Agreed { .. } => write!(f, "clock agrees with a quorum"),
            ClockVerdict::Unknown { agreeing, needed } => write!(
                f,
                "clock agreement not measured yet: {agreeing} of the {needed} voters needed \
                 are known to agree (peers unreachable or just elected); retry"
            ),
            ClockVerdict::Disagrees {
                offsets_ns,
                needed,
                candidate,
            } => {
                write!(
                    f,
                    "this leader's clock disagrees with a quorum ({needed} voters needed), so \
                     it stamps no ledger time; peer clocks minus this one:"
                )?;
                for (id, off) in offsets_ns {
                    write!(f, " node {id} {:+.3} s", *off as f64 / 1e9)?;
                }
                match candidate {
                    Some(c) => write!(f, "; handing leadership to node {c}; retry"),
                    None => write!(f, "; fix the clocks (NTP)"),
                }
            }
        }
    }
}

/// This node's measurements of its peers' clocks (shared by all its groups)
/// and the quorum rule.
#[derive(Debug, Clone)]
pub struct ClockQuorum {
    node_id: u64,
    clock: WallClock,
    tolerance_ns: u64,
    samples: Arc<Mutex<HashMap<u64, Sample>>>,
    last_transfer: Arc<Mutex<Option<Instant>>>,
}

impl ClockQuorum {
    pub fn new(node_id: u64, clock: WallClock, tolerance: Duration) -> ClockQuorum {
        ClockQuorum {
            node_id,
            clock,
            tolerance_ns: tolerance.as_nanos().min(u64::MAX as u128) as u64,
            samples: Arc::default(),
            last_transfer: Arc::default(),
        }
    }

    pub fn clock(&self) -> &WallClock {
        &self.clock
    }

    /// Call just before sending a request whose reply carries the peer's time.
    pub fn probe(&self) -> Probe {
        Probe {
            sent: Instant::now(),
        }
    }

    /// Records `peer`'s time `peer_ns` from the reply to the request `probe`
    /// was taken for.
    pub fn record(&self, peer: u64, probe: Probe, peer_ns: u64) {
        let rtt = probe.sent.elapsed();
        let sample = Sample {
            peer_ns,
            midpoint: probe.sent + rtt / 2,
            error_ns: (rtt / 2).as_nanos().min(u64::MAX as u128) as u64,
        };
        self.lock().insert(peer, sample);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Sample>> {
        self.samples.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fresh, precise enough measurements of these peers, as offsets from
    /// this node's clock reading `wall_ns` now.
    fn fresh(&self, peers: impl Iterator<Item = u64>, wall_ns: u64) -> Vec<Measured> {
        let now = Instant::now();
        let samples = self.lock();
        peers
            .filter_map(|p| samples.get(&p).map(|s| (p, *s)))
            .filter(|(_, s)| s.error_ns <= self.tolerance_ns)
            .filter_map(|(peer, s)| {
                let age = now.saturating_duration_since(s.midpoint);
                (age <= SAMPLE_AGE_MAX).then(|| Measured {
                    peer,
                    offset_ns: s.offset_ns(now, wall_ns),
                    error_ns: s.error_ns,
                    recent: age <= CANDIDATE_REPLY_AGE_MAX,
                })
            })
            .collect()
    }

    /// Each measured peer's clock minus this node's, now.
    pub fn offsets_ns(&self) -> BTreeMap<u64, i64> {
        let (now, wall_ns) = (Instant::now(), self.clock.now_ns());
        self.lock()
            .iter()
            .map(|(p, s)| (*p, s.offset_ns(now, wall_ns)))
            .collect()
    }

    /// Whether `peer`'s clock was measured lately and agrees with this
    /// node's within the tolerance (a peer never measured does not).
    pub fn agrees_with(&self, peer: u64) -> bool {
        if peer == self.node_id {
            return true;
        }
        let now_ns = self.clock.now_ns();
        let tol = self.tolerance_ns;
        self.fresh(std::iter::once(peer), now_ns)
            .iter()
            .any(|m| m.offset_ns.unsigned_abs() <= tol)
    }

    /// May this node stamp ledger time for a group with these voters?
    pub fn verdict(&self, voters: impl IntoIterator<Item = u64>) -> ClockVerdict {
        let voters: Vec<u64> = voters.into_iter().collect();
        let needed = voters.len() / 2 + 1;
        let now_ns = self.clock.now_ns();
        if !voters.contains(&self.node_id) {
            return ClockVerdict::Unknown {
                agreeing: 0,
                needed,
            };
        }
        let peers = self.fresh(
            voters.iter().copied().filter(|v| *v != self.node_id),
            now_ns,
        );
        let tol = self.tolerance_ns;
        let agreeing = 1 + peers
            .iter()
            .filter(|m| m.offset_ns.unsigned_abs() <= tol)
            .count();
        if agreeing >= needed {
            return ClockVerdict::Agreed { now_ns };
        }
        let disagreeing: Vec<&Measured> = peers
            .iter()
            .filter(|m| m.offset_ns.unsigned_abs() > tol.saturating_add(m.error_ns))
            .collect();
        // Even if every voter not known to disagree agreed, no majority.
        if voters.len() - disagreeing.len() >= needed {
            return ClockVerdict::Unknown { agreeing, needed };
        }
        // A live disagreeing voter that, with the others it agrees with,
        // makes a majority without this node.
        let candidate = disagreeing
            .iter()
            .filter(|a| a.recent)
            .filter(|a| {
                let together = peers
                    .iter()
                    .filter(|b| a.offset_ns.abs_diff(b.offset_ns) <= tol)
                    .count();
                together >= needed
            })
            .map(|a| a.peer)
            .min();
        ClockVerdict::Disagrees {
            offsets_ns: disagreeing.iter().map(|m| (m.peer, m.offset_ns)).collect(),
            needed,
            candidate,
        }
    }

    /// True at most once per `TRANSFER_INTERVAL_MIN`: whether a leader that
    /// disagrees should hand leadership away now.
    pub fn transfer_due(&self) -> bool {
        let mut last = self.last_transfer.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < TRANSFER_INTERVAL_MIN) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_NS: u64 = 86_400 * 1_000_000_000;

    fn quorum(node_id: u64) -> ClockQuorum {
        ClockQuorum::new(node_id, WallClock::default(), CLOCK_TOLERANCE_DEFAULT)
    }

    /// Records a reply from `peer` whose clock reads ours plus `offset_ns`.
    fn reply_from(q: &ClockQuorum, peer: u64, offset_ns: i64) {
        let probe = q.probe();
        q.record(
            peer,
            probe,
            q.clock().now_ns().saturating_add_signed(offset_ns),
        );
    }

    #[tokio::test]
    async fn a_single_voter_always_agrees_with_itself() {
        assert!(quorum(1).verdict([1]).is_agreed());
    }

    #[tokio::test]
    async fn a_leader_needs_fresh_measurements_before_it_stamps() {
        let q = quorum(1);
        assert_eq!(
            q.verdict([1, 2, 3]),
            ClockVerdict::Unknown {
                agreeing: 1,
                needed: 2
            }
        );
        reply_from(&q, 2, 3_000_000);
        assert!(q.verdict([1, 2, 3]).is_agreed());
    }

    #[tokio::test]
    async fn one_follower_days_off_does_not_stop_a_good_leader() {
        let q = quorum(1);
        reply_from(&q, 2, 3 * DAY_NS as i64);
        reply_from(&q, 3, -2_000_000);
        assert!(q.verdict([1, 2, 3]).is_agreed());
    }

    #[tokio::test]
    async fn a_leader_days_ahead_disagrees_and_names_a_good_successor() {
        let q = quorum(1);
        reply_from(&q, 2, -(3 * DAY_NS as i64));
        reply_from(&q, 3, -(3 * DAY_NS as i64) + 5_000_000);
        match q.verdict([1, 2, 3]) {
            ClockVerdict::Disagrees {
                candidate, needed, ..
            } => {
                assert_eq!(candidate, Some(2));
                assert_eq!(needed, 2);
            }
            other => panic!("expected disagreement, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn one_disagreeing_peer_of_three_is_not_yet_a_verdict() {
        let q = quorum(1);
        reply_from(&q, 2, 3 * DAY_NS as i64);
        assert!(matches!(q.verdict([1, 2, 3]), ClockVerdict::Unknown { .. }));
    }

    #[tokio::test(start_paused = true)]
    async fn old_measurements_stop_counting() {
        let q = quorum(1);
        reply_from(&q, 2, 0);
        assert!(q.verdict([1, 2, 3]).is_agreed());
        tokio::time::advance(SAMPLE_AGE_MAX + Duration::from_secs(1)).await;
        assert!(!q.verdict([1, 2, 3]).is_agreed());
    }

    #[tokio::test]
    async fn a_jump_of_its_own_clock_counts_before_peers_are_measured_again() {
        let q = quorum(1);
        reply_from(&q, 2, 0);
        reply_from(&q, 3, 0);
        assert!(q.verdict([1, 2, 3]).is_agreed());
        q.clock().set_offset_ns(30_000_000_000);
        assert!(matches!(
            q.verdict([1, 2, 3]),
            ClockVerdict::Disagrees {
                candidate: Some(2),
                ..
            }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn leadership_goes_only_to_a_voter_that_replied_lately() {
        // Paused time moves the monotonic clock only: a tolerance wide
        // enough that the two peers still agree with each other.
        let q = ClockQuorum::new(1, WallClock::default(), Duration::from_secs(5));
        reply_from(&q, 2, -(3 * DAY_NS as i64));
        tokio::time::advance(CANDIDATE_REPLY_AGE_MAX * 2).await;
        reply_from(&q, 3, -(3 * DAY_NS as i64));
        assert!(matches!(
            q.verdict([1, 2, 3]),
            ClockVerdict::Disagrees {
                candidate: Some(3),
                ..
            }
        ));
    }

    #[tokio::test]
    async fn no_candidate_when_the_peers_disagree_with_each_other_too() {
        let q = quorum(1);
        reply_from(&q, 2, DAY_NS as i64);
        reply_from(&q, 3, -(DAY_NS as i64));
        assert!(matches!(
            q.verdict([1, 2, 3]),
            ClockVerdict::Disagrees {
                candidate: None,
                ..
            }
        ));
    }
}
