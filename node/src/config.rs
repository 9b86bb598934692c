use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `node.toml`: one server of a group.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub node_id: u64,
    /// Address the gRPC server listens on (client API and Raft RPCs).
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Every voter of the group, this node included.
    pub peers: Vec<PeerConfig>,
    #[serde(default)]
    pub raft: RaftTuning,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub id: u64,
    /// `host:port` other nodes and clients reach this peer at.
    pub endpoint: String,
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

    // A config that leaves this node out of its peers is refused with a clear reason.
    #[test]
    fn rejects_config_without_self_in_peers() {
        let text = r#"
            node_id = 4
            listen = "127.0.0.1:7001"
            data_dir = "/tmp/x"
            peers = [{ id = 1, endpoint = "127.0.0.1:7001" }]
        "#;
        let c: NodeConfig = toml::from_str(text).unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("peers must include this node (4)"), "{err}");
    }
}
