//! When a player's wallet should follow the player: a group leader counts,
//! per player, which region each of the player's last operations came from,
//! and asks for a move when at least `share_pct` of the last `window_ops`
//! came from one region other than the group's home, unless the player
//! moved less than `cooldown_ns` ago (so a player on the border never
//! ping-pongs between two regions). Memory is bounded: at most
//! `players_tracked_max` players, the least recently seen forgotten first.
//! Pure: time comes from the caller, so the rule is the same on every run.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

/// The policy's knobs; see the module comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovePolicyConfig {
    pub window_ops: usize,
    pub share_pct: u32,
    pub cooldown_ns: u64,
    pub players_tracked_max: usize,
}

impl MovePolicyConfig {
    /// Fewer operations than this say too little about where a player is.
    pub const WINDOW_OPS_MIN: usize = 20;
    /// Larger windows cost memory per player (one byte per operation).
    pub const WINDOW_OPS_MAX: usize = 1_000;

    pub fn validate(&self) -> Result<(), String> {
        let (min, max) = (Self::WINDOW_OPS_MIN, Self::WINDOW_OPS_MAX);
        if !(min..=max).contains(&self.window_ops) {
            return Err(format!(
                "move policy: window_ops {} is outside {min}..={max}",
                self.window_ops
            ));
        }
        if !(51..=100).contains(&self.share_pct) {
            return Err(format!(
                "move policy: share_pct {} is outside 51..=100 (a majority of the window)",
                self.share_pct
            ));
        }
        if self.players_tracked_max == 0 {
            return Err("move policy: players_tracked_max must be at least 1".into());
        }
        Ok(())
    }
}

impl Default for MovePolicyConfig {
    /// 80% of the last 20 operations, a 10-minute cooldown, 100,000 players.
    fn default() -> Self {
        MovePolicyConfig {
            window_ops: 20,
            share_pct: 80,
            cooldown_ns: 600_000_000_000,
            players_tracked_max: 100_000,
        }
    }
}

/// One player's recent callers' regions (as indexes into the policy's
/// region names) and when it last moved.
#[derive(Debug, Default)]
struct PlayerStats {
    recent: VecDeque<u8>,
    moved_at_ns: Option<u64>,
    /// Key of this player in `by_last_seen`.
    last_seen: u64,
}

/// Per-player region statistics of one group leader.
#[derive(Debug)]
pub struct MovePolicy {
    config: MovePolicyConfig,
    /// Region names seen, indexed by the bytes in `PlayerStats::recent`.
    regions: Vec<String>,
    players: HashMap<u64, PlayerStats>,
    /// Players by the tick they were last seen at: the oldest is evicted.
    by_last_seen: BTreeMap<u64, u64>,
    tick: u64,
}

impl MovePolicy {
    /// At most this many distinct region names are counted; calls from
    /// further ones count for nothing (a topology has a handful).
    pub const REGIONS_MAX: usize = 255;

    /// # Panics
    /// If `config` fails [`MovePolicyConfig::validate`] (checked at startup).
    pub fn new(config: MovePolicyConfig) -> MovePolicy {
        if let Err(e) = config.validate() {
            panic!("{e}");
        }
        MovePolicy {
            config,
            regions: Vec::new(),
            players: HashMap::new(),
            by_last_seen: BTreeMap::new(),
            tick: 0,
        }
    }

    /// Players tracked now (never above `players_tracked_max`).
    pub fn tracked(&self) -> usize {
        self.players.len()
    }

    /// Counts one operation of `player` from `caller_region` on a group
    /// homed in `home_region` at `now_ns`; returns the region the wallet
    /// should move to, if the rule says so now.
    pub fn observe(
        &mut self,
        player: u64,
        caller_region: &str,
        home_region: &str,
        now_ns: u64,
    ) -> Option<String> {
        let region = self.region_index(caller_region)?;
        let MovePolicyConfig {
            window_ops,
            share_pct,
            cooldown_ns,
            ..
        } = self.config;
        let stats = self.touch(player);
        stats.recent.push_back(region);
        if stats.recent.len() > window_ops {
            stats.recent.pop_front();
        }
        if stats.recent.len() < window_ops {
            return None;
        }
        let cooling = stats
            .moved_at_ns
            .is_some_and(|t| now_ns.saturating_sub(t) < cooldown_ns);
        if cooling {
            return None;
        }
        let mut counts = [0usize; Self::REGIONS_MAX];
        for r in &stats.recent {
            counts[usize::from(*r)] += 1;
        }
        let (top, count) = counts.iter().enumerate().max_by_key(|(_, c)| **c)?;
        let share_ok = count * 100 >= share_pct as usize * window_ops;
        let target = &self.regions[top];
        (share_ok && target != home_region).then(|| target.clone())
    }

    /// Records that `player`'s wallet moved (or arrived) at `now_ns`: the
    /// window starts over and the cooldown runs from now.
    pub fn moved(&mut self, player: u64, now_ns: u64) {
        let stats = self.touch(player);
        stats.recent.clear();
        stats.moved_at_ns = Some(now_ns);
    }

    /// `player`'s statistics, tracked from now on if they were not (the
    /// least recently seen player forgotten to make room), marked seen now.
    fn touch(&mut self, player: u64) -> &mut PlayerStats {
        self.tick += 1;
        let tick = self.tick;
        if !self.players.contains_key(&player)
            && self.players.len() == self.config.players_tracked_max
        {
            self.evict_oldest();
        }
        let stats = self.players.entry(player).or_default();
        self.by_last_seen.remove(&stats.last_seen);
        stats.last_seen = tick;
        self.by_last_seen.insert(tick, player);
        stats
    }

    fn region_index(&mut self, region: &str) -> Option<u8> {
        if let Some(i) = self.regions.iter().position(|r| r == region) {
            return u8::try_from(i).ok();
        }
        if self.regions.len() == Self::REGIONS_MAX {
            return None;
        }
        self.regions.push(region.to_string());
        u8::try_from(self.regions.len() - 1).ok()
    }

    fn evict_oldest(&mut self) {
        if let Some((_, player)) = self.by_last_seen.pop_first() {
            self.players.remove(&player);
        }
    }
}

/// The move policy of every group one node leads, shared by the client
/// API (which counts each call's region) and the move service (a wallet
/// arriving here starts its cooldown too, so the target does not send it
/// straight back). Statistics live in the leader's memory only: a new
/// leader starts counting afresh.
pub struct AutoMoves {
    config: MovePolicyConfig,
    groups: Mutex<HashMap<u64, MovePolicy>>,
    started: tokio::time::Instant,
}

impl AutoMoves {
    pub fn new(config: MovePolicyConfig) -> Result<AutoMoves, String> {
        config.validate()?;
        Ok(AutoMoves {
            config,
            groups: Mutex::new(HashMap::new()),
            started: tokio::time::Instant::now(),
        })
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Counts one call from `caller_region` on each of `players` in
    /// `group` (homed in `home_region`); returns the players to move now,
    /// with their region. A player is returned once: its cooldown starts
    /// here, before the move runs.
    pub fn observe(
        &self,
        group: u64,
        players: &[u64],
        caller_region: &str,
        home_region: &str,
    ) -> Vec<(u64, String)> {
        let now = self.now_ns();
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        let policy = groups
            .entry(group)
            .or_insert_with(|| MovePolicy::new(self.config.clone()));
        let mut due = Vec::new();
        for player in players {
            if let Some(region) = policy.observe(*player, caller_region, home_region, now) {
                policy.moved(*player, now);
                due.push((*player, region));
            }
        }
        due
    }

    /// `player`'s wallet arrived in `group`: no move away for a cooldown.
    pub fn arrived(&self, group: u64, player: u64) {
        let now = self.now_ns();
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        groups
            .entry(group)
            .or_insert_with(|| MovePolicy::new(self.config.clone()))
            .moved(player, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE_NS: u64 = 60_000_000_000;

    fn policy() -> MovePolicy {
        MovePolicy::new(MovePolicyConfig::default())
    }

    /// Feeds `n` operations of player 1 from `region` to a group homed in
    /// eu; returns the last answer.
    fn feed(p: &mut MovePolicy, region: &str, n: usize, now_ns: u64) -> Option<String> {
        (0..n).fold(None, |_, _| p.observe(1, region, "eu", now_ns))
    }

    // Proves a move is asked for once 80% of the last 20 operations came
    // from one other region, not before, and never for the home region.
    #[test]
    fn asks_once_most_of_the_window_comes_from_elsewhere() {
        let mut p = policy();
        assert_eq!(feed(&mut p, "eu", 20, 0), None, "home traffic");
        assert_eq!(feed(&mut p, "ap", 15, 0), None, "15 of 20");
        assert_eq!(feed(&mut p, "ap", 1, 0), Some("ap".into()), "16 of 20");
        let mut mixed = policy();
        for n in 0..100 {
            let region = if n % 10 < 7 { "us" } else { "eu" };
            assert_eq!(mixed.observe(1, region, "eu", 0), None, "70% is not enough");
        }
    }

    // Proves a player that just moved is not moved back before the
    // cooldown, however its traffic looks, and is once it passed.
    #[test]
    fn a_cooldown_stops_ping_pong() {
        let mut p = policy();
        assert_eq!(feed(&mut p, "us", 20, 0), Some("us".into()));
        p.moved(1, 0);
        // Now homed in us; the player plays from eu again at once.
        let back = |p: &mut MovePolicy, now_ns| {
            (0..20).fold(None, |_, _| p.observe(1, "eu", "us", now_ns))
        };
        assert_eq!(back(&mut p, 5 * MINUTE_NS), None, "cooling down");
        assert_eq!(back(&mut p, 11 * MINUTE_NS), Some("eu".into()));
    }

    // Proves a wallet that arrived is not sent straight back by the group
    // it arrived in, even though that group never counted the player.
    #[test]
    fn an_arrival_starts_the_cooldown_where_it_lands() {
        let mut p = policy();
        p.moved(1, 0);
        assert_eq!(feed(&mut p, "ap", 20, MINUTE_NS), None, "cooling down");
        assert_eq!(feed(&mut p, "ap", 20, 11 * MINUTE_NS), Some("ap".into()));
    }

    // Proves memory stays bounded: tracking a player beyond the maximum
    // forgets the least recently seen one, whose window starts over.
    #[test]
    fn memory_is_bounded_by_players_tracked_max() {
        let mut p = MovePolicy::new(MovePolicyConfig {
            players_tracked_max: 3,
            ..MovePolicyConfig::default()
        });
        for _ in 0..19 {
            p.observe(1, "us", "eu", 0);
        }
        for player in [2, 3, 1, 4] {
            p.observe(player, "us", "eu", 0);
        }
        assert_eq!(p.tracked(), 3);
        // Player 1 was seen last before 4 arrived, so 2 was forgotten.
        assert_eq!(p.observe(2, "us", "eu", 0), None);
        assert_eq!(p.tracked(), 3);
        assert!(p.players.contains_key(&4) && !p.players.contains_key(&3));
    }

    // Proves the configuration's bounds are enforced.
    #[test]
    fn config_bounds() {
        assert!(MovePolicyConfig::default().validate().is_ok());
        for broken in [
            MovePolicyConfig {
                window_ops: 19,
                ..MovePolicyConfig::default()
            },
            MovePolicyConfig {
                share_pct: 50,
                ..MovePolicyConfig::default()
            },
            MovePolicyConfig {
                players_tracked_max: 0,
                ..MovePolicyConfig::default()
            },
        ] {
            assert!(broken.validate().is_err(), "{broken:?}");
        }
    }
}
