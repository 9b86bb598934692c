use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `node.toml`: one server of the cluster and the cluster's topology.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub node_id: u64,
    /// Address the client API listens on.
    pub listen: SocketAddr,
    /// Address the node-to-node listener (Raft and move steps) listens on;
    /// only the cluster's nodes may call it. Required with `[tls]`; without
    /// it (plaintext only) node-to-node calls share `listen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft_listen: Option<SocketAddr>,
    /// Address the Prometheus metrics endpoint (plain HTTP, `GET /metrics`)
    /// listens on; none when unset. It serves counters and gauges only, no
    /// balances or player data; bind it where only the monitoring reaches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// The cluster's CA and this node's certificate and key. Every
    /// connection to the node, and every one it makes to a peer, is mutual
    /// TLS with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::tls::TlsConfig>,
    /// No TLS and no peer checks anywhere: anyone who reaches a port can
    /// call anything. Only for tests on a closed network; must be set
    /// explicitly when there is no `[tls]`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_plaintext: bool,
    pub data_dir: PathBuf,
    /// Every node of the cluster, this one included, with its region and
    /// datacenter (this node's place is its own entry).
    pub peers: Vec<PeerConfig>,
    /// The shard groups and their replicas. Empty (older configs): one group
    /// (id 1) replicated on every peer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupConfig>,
    /// Node ids of the directory's replicas (group 0: topology and player
    /// placement). A cluster with `groups` always has a directory; empty
    /// means every peer. Without `groups` there is none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directory: Vec<u64>,
    #[serde(default)]
    pub raft: RaftTuning,
    /// Wallets following their players between regions.
    #[serde(default)]
    pub moves: MovesConfig,
}

/// `[moves]`: when a leader moves a wallet by itself. A wallet moves to a
/// region once `share_pct` of its player's last `window_ops` calls came
/// from there (calls name their region), and not again for `cooldown_s`.
/// Explicit moves (`ctl migrate`, `Client::migrate`) work either way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MovesConfig {
    #[serde(default = "default_auto")]
    pub auto: bool,
    #[serde(default = "default_window_ops")]
    pub window_ops: usize,
    #[serde(default = "default_share_pct")]
    pub share_pct: u32,
    #[serde(default = "default_cooldown_s")]
    pub cooldown_s: u64,
}

impl Default for MovesConfig {
    fn default() -> Self {
        MovesConfig {
            auto: default_auto(),
            window_ops: default_window_ops(),
            share_pct: default_share_pct(),
            cooldown_s: default_cooldown_s(),
        }
    }
}

fn default_auto() -> bool {
    true
}

fn default_window_ops() -> usize {
    crate::move_policy::MovePolicyConfig::default().window_ops
}

fn default_share_pct() -> u32 {
    crate::move_policy::MovePolicyConfig::default().share_pct
}

fn default_cooldown_s() -> u64 {
    crate::move_policy::MovePolicyConfig::default().cooldown_ns / 1_000_000_000
}

impl MovesConfig {
    /// The policy, or `None` when automatic moves are off.
    pub fn policy(&self) -> Option<crate::move_policy::MovePolicyConfig> {
        self.auto.then(|| crate::move_policy::MovePolicyConfig {
            window_ops: self.window_ops,
            share_pct: self.share_pct,
            cooldown_ns: self.cooldown_s.saturating_mul(1_000_000_000),
            ..crate::move_policy::MovePolicyConfig::default()
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub id: u64,
    /// `host:port` clients reach this peer's client API at.
    pub endpoint: String,
    /// `host:port` other nodes reach this peer's node-to-node listener at
    /// (required with `[tls]`; without it, `endpoint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft_endpoint: Option<String>,
    /// Region name (`[a-z0-9-]`, e.g. `eu`); older configs without it are
    /// in region `local`.
    #[serde(default = "default_region")]
    pub region: String,
    /// Datacenter within the region: `a` or `b` (default `a`).
    #[serde(default = "default_dc")]
    pub dc: String,
}

/// One shard group of the topology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// Group id, at least 1 (0 is the directory's).
    pub id: u64,
    /// The region whose players this group serves; its leader is preferred
    /// there.
    pub home_region: String,
    /// Node ids of its voters. Empty: the default replica set (see
    /// [`default_replicas`]).
    #[serde(default)]
    pub replicas: Vec<u64>,
    /// `available` (default): while a datacenter of the home region is
    /// down, acknowledge on the majority and report the group degraded;
    /// `strict`: refuse to acknowledge instead.
    #[serde(default)]
    pub dual_dc: crate::dual_dc::DualDcPolicy,
}

/// The region of nodes whose config names none.
pub const DEFAULT_REGION: &str = "local";

fn default_region() -> String {
    DEFAULT_REGION.to_string()
}

fn default_dc() -> String {
    "a".to_string()
}

/// The default replica set of a group homed in `home`: two voters in each
/// datacenter of the home region and a tiebreaker in another region (2+2+1)
/// when the home datacenters have two nodes each, else one in each (1+1+1).
/// The tiebreaker is the lowest-id node of a region that is not the home
/// region, preferring regions with a single datacenter (tiebreaker sites).
/// Lowest ids first everywhere, so every node computes the same set.
pub fn default_replicas(peers: &[PeerConfig], home: &str) -> Vec<u64> {
    let mut sorted: Vec<&PeerConfig> = peers.iter().collect();
    sorted.sort_by_key(|p| p.id);
    let in_dc = |dc: &str| -> Vec<u64> {
        sorted
            .iter()
            .filter(|p| p.region == home && p.dc == dc)
            .map(|p| p.id)
            .collect()
    };
    let (a, b) = (in_dc("a"), in_dc("b"));
    let per_dc = if a.len() >= 2 && b.len() >= 2 { 2 } else { 1 };
    let mut replicas: Vec<u64> = a
        .iter()
        .take(per_dc)
        .chain(b.iter().take(per_dc))
        .copied()
        .collect();
    let dcs_of = |region: &str| -> BTreeSet<&str> {
        sorted
            .iter()
            .filter(|p| p.region == region)
            .map(|p| p.dc.as_str())
            .collect()
    };
    let tiebreaker = sorted
        .iter()
        .filter(|p| p.region != home)
        .min_by_key(|p| (dcs_of(&p.region).len() > 1, p.id));
    if let Some(t) = tiebreaker {
        replicas.push(t.id);
    }
    replicas.sort_unstable();
    replicas
}

/// A region name: 1..=32 bytes of `[a-z0-9-]`.
fn valid_region(r: &str) -> bool {
    (1..=32).contains(&r.len())
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftTuning {
    pub heartbeat_interval_ms: u64,
    pub election_timeout_ms_min: u64,
    pub election_timeout_ms_max: u64,
    /// Build a snapshot after this many applied entries.
    pub snapshot_logs_since_last: u64,
    /// Log entries kept behind a snapshot (for followers a little behind).
    pub logs_kept_after_snapshot: u64,
    /// Bytes of a gRPC message between nodes at most (what a node decodes);
    /// AppendEntries and entries are bounded below it (`MessageLimits`).
    pub message_bytes_max: usize,
    /// How far two replicas' clocks may read apart and still agree: a
    /// leader stamps ledger time only while a majority of voters' clocks,
    /// its own included, agree within this.
    pub clock_tolerance_ms: u64,
    /// How long a write waits for a live but lagging datacenter of its
    /// group's home region before the group's `dual_dc` policy decides.
    pub dual_dc_wait_ms: u64,
}

impl Default for RaftTuning {
    fn default() -> Self {
        RaftTuning {
            heartbeat_interval_ms: 100,
            election_timeout_ms_min: 500,
            election_timeout_ms_max: 1000,
            snapshot_logs_since_last: 100_000,
            logs_kept_after_snapshot: 10_000,
            message_bytes_max: geowallet_raft::MESSAGE_BYTES_MAX_DEFAULT,
            clock_tolerance_ms: geowallet_raft::CLOCK_TOLERANCE_DEFAULT.as_millis() as u64,
            dual_dc_wait_ms: 1000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("config is not valid: {0}")]
    Invalid(String),
}

impl NodeConfig {
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        let config: NodeConfig = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.into(),
            source,
        })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.node_id == 0 {
            return invalid("node_id must be at least 1".into());
        }
        let ids: BTreeSet<u64> = self.peers.iter().map(|p| p.id).collect();
        if ids.len() != self.peers.len() {
            return invalid("peer ids must be unique".into());
        }
        if !ids.contains(&self.node_id) {
            return invalid(format!("peers must include this node ({})", self.node_id));
        }
        if ids.contains(&0) {
            return invalid("peer ids must be at least 1".into());
        }
        for p in &self.peers {
            if !valid_region(&p.region) {
                return invalid(format!(
                    "peer {}: region {:?} must be 1 to 32 of a-z, 0-9 and -",
                    p.id, p.region
                ));
            }
            if p.dc != "a" && p.dc != "b" {
                return invalid(format!(
                    "peer {}: dc {:?} must be \"a\" or \"b\" (two datacenters per region)",
                    p.id, p.dc
                ));
            }
        }
        self.validate_groups(&ids)?;
        self.validate_transport()?;
        if let Some(policy) = self.moves.policy() {
            policy.validate().map_err(ConfigError::Invalid)?;
        }
        if let Some(r) = self.directory.iter().find(|r| !ids.contains(r)) {
            return invalid(format!("directory replica {r} is not in peers"));
        }
        if !self.directory.is_empty() && self.groups.is_empty() {
            return invalid("directory replicas are set but no [[groups]]: list the groups".into());
        }
        let t = &self.raft;
        if t.heartbeat_interval_ms == 0
            || t.election_timeout_ms_min <= t.heartbeat_interval_ms
            || t.election_timeout_ms_max <= t.election_timeout_ms_min
        {
            return invalid("need 0 < heartbeat_interval_ms < election_timeout_ms_min < election_timeout_ms_max".into());
        }
        if t.message_bytes_max < geowallet_raft::MESSAGE_BYTES_MIN {
            return invalid(format!(
                "raft.message_bytes_max must be at least {} bytes",
                geowallet_raft::MESSAGE_BYTES_MIN
            ));
        }
        if t.clock_tolerance_ms < 10 {
            return invalid(
                "raft.clock_tolerance_ms must be at least 10 (clocks on one network agree \
                 within milliseconds under NTP)"
                    .into(),
            );
        }
        Ok(())
    }

    fn validate_transport(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        match (&self.tls, self.insecure_plaintext) {
            (Some(_), true) => {
                return invalid("set either [tls] or insecure_plaintext = true, not both".into());
            }
            (None, false) => {
                return invalid(
                    "no [tls] section: set [tls] ca, cert and key (`geowallet certs` makes \
                     them), or insecure_plaintext = true for a test on a closed network"
                        .into(),
                );
            }
            (None, true) => {}
            (Some(_), false) => {
                if self.raft_listen.is_none() {
                    return invalid(
                        "[tls] needs raft_listen: node-to-node traffic has its own listener".into(),
                    );
                }
                if let Some(p) = self.peers.iter().find(|p| p.raft_endpoint.is_none()) {
                    return invalid(format!(
                        "peer {}: [tls] needs its raft_endpoint (its node-to-node listener)",
                        p.id
                    ));
                }
            }
        }
        if let Some(m) = self.metrics_listen
            && (m == self.listen || Some(m) == self.raft_listen)
        {
            return invalid(format!(
                "metrics_listen {m} is also a gRPC listener: give the metrics endpoint its own port"
            ));
        }
        if self.raft_listen == Some(self.listen) {
            return invalid(format!(
                "raft_listen and listen are both {}: node-to-node traffic needs its own port",
                self.listen
            ));
        }
        Ok(())
    }

    /// Where node `id`'s node-to-node listener is reached.
    pub fn raft_endpoint_of(&self, id: u64) -> Option<String> {
        let p = self.peers.iter().find(|p| p.id == id)?;
        Some(
            p.raft_endpoint
                .clone()
                .unwrap_or_else(|| p.endpoint.clone()),
        )
    }

    fn validate_groups(&self, ids: &BTreeSet<u64>) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        let regions: BTreeSet<&str> = self.peers.iter().map(|p| p.region.as_str()).collect();
        let mut seen = BTreeSet::new();
        for g in &self.groups {
            if g.id == 0 {
                return invalid("group ids must be at least 1 (0 is the directory)".into());
            }
            if !seen.insert(g.id) {
                return invalid(format!("group {} is listed twice", g.id));
            }
            if !regions.contains(g.home_region.as_str()) {
                return invalid(format!(
                    "group {}: home_region {:?} has no node (regions: {regions:?})",
                    g.id, g.home_region
                ));
            }
            if g.replicas.is_empty() {
                continue;
            }
            let replicas: BTreeSet<u64> = g.replicas.iter().copied().collect();
            if replicas.len() != g.replicas.len() {
                return invalid(format!(
                    "group {}: replicas must be distinct node ids, at least one",
                    g.id
                ));
            }
            if let Some(r) = replicas.iter().find(|r| !ids.contains(r)) {
                return invalid(format!("group {}: replica {r} is not in peers", g.id));
            }
        }
        Ok(())
    }

    /// Where the node's RocksDB lives (under `data_dir`).
    pub fn db_dir(&self) -> std::path::PathBuf {
        self.data_dir.join("db")
    }

    /// The groups of the cluster: as configured, or, in a config that lists
    /// none, group 1 on every peer, homed where the lowest-id peer is.
    pub fn groups(&self) -> Vec<GroupConfig> {
        if !self.groups.is_empty() {
            let mut groups = self.groups.clone();
            for g in groups.iter_mut().filter(|g| g.replicas.is_empty()) {
                g.replicas = default_replicas(&self.peers, &g.home_region);
            }
            return groups;
        }
        let home = self
            .peers
            .iter()
            .min_by_key(|p| p.id)
            .map_or_else(default_region, |p| p.region.clone());
        vec![GroupConfig {
            id: 1,
            home_region: home,
            replicas: self.peers.iter().map(|p| p.id).collect(),
            dual_dc: Default::default(),
        }]
    }

    /// The directory's replicas: `None` in a cluster configured without
    /// `groups` (one group, no directory).
    pub fn directory_replicas(&self) -> Option<Vec<u64>> {
        if self.groups.is_empty() {
            return None;
        }
        if self.directory.is_empty() {
            return Some(self.peers.iter().map(|p| p.id).collect());
        }
        Some(self.directory.clone())
    }

    /// Every node of the cluster as group memberships record it.
    pub fn node_infos(&self) -> BTreeMap<u64, geowallet_raft::NodeInfo> {
        self.peers
            .iter()
            .map(|p| {
                let info = geowallet_raft::NodeInfo {
                    addr: p.endpoint.clone(),
                    region: p.region.clone(),
                    dc: p.dc.clone(),
                };
                (p.id, info)
            })
            .collect()
    }

    pub fn peer_map(&self) -> BTreeMap<u64, String> {
        self.peers
            .iter()
            .map(|p| (p.id, p.endpoint.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE: &str = r#"
        node_id = 1
        listen = "127.0.0.1:7001"
        data_dir = "/tmp/x"
        insecure_plaintext = true
        peers = [
            { id = 1, endpoint = "127.0.0.1:7001", region = "eu", dc = "a" },
            { id = 2, endpoint = "127.0.0.1:7002", region = "eu", dc = "b" },
            { id = 3, endpoint = "127.0.0.1:7003", region = "us", dc = "a" },
        ]
    "#;

    // A config written before regions existed still loads: one region
    // `local`, datacenter `a`, one group 1 on every peer.
    #[test]
    fn older_config_gets_one_group_in_region_local() {
        let text = r#"
            node_id = 2
            listen = "127.0.0.1:7002"
            data_dir = "/tmp/x"
            insecure_plaintext = true
            peers = [{ id = 1, endpoint = "127.0.0.1:7001" }, { id = 2, endpoint = "127.0.0.1:7002" }]
        "#;
        let c: NodeConfig = toml::from_str(text).unwrap();
        c.validate().unwrap();
        assert_eq!(c.peers[1].region, "local");
        assert_eq!(c.peers[1].dc, "a");
        let groups = c.groups();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].id, 1);
        assert_eq!(groups[0].home_region, "local");
        assert_eq!(groups[0].replicas, vec![1, 2]);
    }

    // A node must choose its transport: TLS (with a node-to-node listener
    // for itself and every peer) or, explicitly, plaintext; never both,
    // and never one port for both listeners.
    #[test]
    fn transport_is_chosen_explicitly() {
        let base: NodeConfig = toml::from_str(THREE).unwrap();
        fn with_tls(c: &mut NodeConfig) {
            c.insecure_plaintext = false;
            c.tls = Some(crate::tls::TlsConfig {
                ca: "/tls/ca.pem".into(),
                cert: "/tls/node-1.pem".into(),
                key: "/tls/node-1.key".into(),
                clients: Default::default(),
            });
            c.raft_listen = Some("127.0.0.1:7101".parse().unwrap());
            for p in &mut c.peers {
                p.raft_endpoint = Some(format!("127.0.0.1:{}", 7100 + p.id));
            }
        }
        let mut ok = base.clone();
        with_tls(&mut ok);
        ok.validate().unwrap();
        assert_eq!(ok.raft_endpoint_of(2).as_deref(), Some("127.0.0.1:7102"));
        assert_eq!(base.raft_endpoint_of(2).as_deref(), Some("127.0.0.1:7002"));
        type Edit = Box<dyn Fn(&mut NodeConfig)>;
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|c| c.insecure_plaintext = false),
                "no [tls] section",
            ),
            (
                Box::new(|c| {
                    with_tls(c);
                    c.insecure_plaintext = true;
                }),
                "not both",
            ),
            (
                Box::new(|c| {
                    with_tls(c);
                    c.raft_listen = None;
                }),
                "needs raft_listen",
            ),
            (
                Box::new(|c| {
                    with_tls(c);
                    c.peers[2].raft_endpoint = None;
                }),
                "peer 3: [tls] needs its raft_endpoint",
            ),
            (
                Box::new(|c| c.raft_listen = Some(c.listen)),
                "needs its own port",
            ),
        ];
        for (edit, want) in cases {
            let mut c = base.clone();
            edit(&mut c);
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
    }

    // Bad topology is refused with what is wrong: an unknown dc, a replica
    // that is not a peer, a home region with no node, group 0, a duplicate.
    #[test]
    fn rejects_bad_topology() {
        let base: NodeConfig = toml::from_str(THREE).unwrap();
        base.validate().unwrap();
        type Edit = Box<dyn Fn(&mut NodeConfig)>;
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(|c| c.peers[0].dc = "c".into()), "dc \"c\" must be"),
            (
                Box::new(|c| c.peers[0].region = "EU".into()),
                "region \"EU\" must be",
            ),
            (
                Box::new(|c| c.groups = vec![group(1, "eu", &[1, 2, 4])]),
                "replica 4 is not in peers",
            ),
            (
                Box::new(|c| c.groups = vec![group(1, "ap", &[1, 2, 3])]),
                "home_region \"ap\" has no node",
            ),
            (
                Box::new(|c| c.groups = vec![group(0, "eu", &[1, 2, 3])]),
                "at least 1 (0 is the directory)",
            ),
            (
                Box::new(|c| c.groups = vec![group(1, "eu", &[1]), group(1, "us", &[3])]),
                "group 1 is listed twice",
            ),
            (
                Box::new(|c| c.groups = vec![group(1, "eu", &[1, 1])]),
                "replicas must be distinct",
            ),
        ];
        for (edit, want) in cases {
            let mut c = base.clone();
            edit(&mut c);
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(want), "{err} should say {want}");
        }
    }

    fn peer(id: u64, region: &str, dc: &str) -> PeerConfig {
        PeerConfig {
            id,
            endpoint: format!("127.0.0.1:{}", 7000 + id),
            raft_endpoint: None,
            region: region.into(),
            dc: dc.into(),
        }
    }

    // Both home datacenters plus a tiebreaker elsewhere: 2+2+1 when each home
    // datacenter has two nodes, else 1+1+1; the tiebreaker comes from a
    // single-datacenter site when there is one.
    #[test]
    fn default_replicas_are_both_home_dcs_and_a_tiebreaker() {
        let geo = vec![
            peer(1, "eu", "a"),
            peer(2, "eu", "b"),
            peer(3, "us", "a"),
            peer(4, "us", "b"),
            peer(5, "ap", "a"),
        ];
        assert_eq!(default_replicas(&geo, "eu"), vec![1, 2, 5]);
        assert_eq!(default_replicas(&geo, "us"), vec![3, 4, 5]);
        let big = vec![
            peer(1, "eu", "a"),
            peer(2, "eu", "a"),
            peer(3, "eu", "b"),
            peer(4, "eu", "b"),
            peer(5, "us", "a"),
            peer(6, "us", "b"),
        ];
        assert_eq!(default_replicas(&big, "eu"), vec![1, 2, 3, 4, 5]);
        let mut c: NodeConfig = toml::from_str(THREE).unwrap();
        c.groups = vec![group(1, "eu", &[])];
        c.validate().unwrap();
        assert_eq!(c.groups()[0].replicas, vec![1, 2, 3]);
    }

    fn group(id: u64, home: &str, replicas: &[u64]) -> GroupConfig {
        GroupConfig {
            id,
            home_region: home.into(),
            replicas: replicas.to_vec(),
            dual_dc: Default::default(),
        }
    }

    // A config that leaves this node out of its peers is refused with a clear reason.
    #[test]
    fn rejects_config_without_self_in_peers() {
        let text = r#"
            node_id = 4
            listen = "127.0.0.1:7001"
            data_dir = "/tmp/x"
            insecure_plaintext = true
            peers = [{ id = 1, endpoint = "127.0.0.1:7001" }]
        "#;
        let c: NodeConfig = toml::from_str(text).unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("peers must include this node (4)"), "{err}");
    }
}
