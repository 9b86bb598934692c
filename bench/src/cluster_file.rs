//! `DIR/cluster.json` as `geowallet dev` writes it (node/src/local_cluster.rs):
//! `{"nodes": [{"id": 1, "endpoint": "127.0.0.1:PORT", "pid": 1234 | null}]}`.
//! Read with serde_json's `Value` so the bench shares no code with the node.

use std::path::Path;

use anyhow::{Context, bail};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    pub id: u64,
    pub endpoint: String,
    /// `None` while the node is stopped.
    pub pid: Option<u32>,
}

pub fn read_cluster_file(path: &Path) -> anyhow::Result<Vec<ClusterNode>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    parse_cluster_file(&text).with_context(|| format!("parse {}", path.display()))
}

pub fn parse_cluster_file(text: &str) -> anyhow::Result<Vec<ClusterNode>> {
    let json: serde_json::Value = serde_json::from_str(text)?;
    let Some(nodes) = json["nodes"].as_array() else {
        bail!("no \"nodes\" array");
    };
    nodes
        .iter()
        .map(|n| {
            let id = n["id"].as_u64().context("node without a numeric id")?;
            let endpoint = n["endpoint"].as_str().context("node without an endpoint")?;
            let pid = match &n["pid"] {
                serde_json::Value::Null => None,
                p => {
                    let pid = p.as_u64().and_then(|p| u32::try_from(p).ok());
                    Some(
                        pid.filter(|p| *p > 0)
                            .context("pid is neither null nor a positive number")?,
                    )
                }
            };
            Ok(ClusterNode {
                id,
                endpoint: endpoint.to_owned(),
                pid,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves a cluster.json with a running and a stopped node parses, and a 0 pid is refused.
    #[test]
    fn parses_running_and_stopped_nodes() {
        let text = r#"{"nodes": [
            {"id": 1, "endpoint": "127.0.0.1:7001", "pid": 4242},
            {"id": 2, "endpoint": "127.0.0.1:7002", "pid": null}]}"#;
        let nodes = parse_cluster_file(text).expect("valid");
        assert_eq!(
            nodes[0],
            ClusterNode {
                id: 1,
                endpoint: "127.0.0.1:7001".into(),
                pid: Some(4242)
            }
        );
        assert_eq!(nodes[1].pid, None);
        let zero = r#"{"nodes": [{"id": 1, "endpoint": "a:1", "pid": 0}]}"#;
        assert!(parse_cluster_file(zero).is_err());
        assert!(parse_cluster_file("{}").is_err());
    }
}
