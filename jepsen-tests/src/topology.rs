//! Where the nodes and client hosts of a run sit, and the shard groups:
//! the single-group shape, or the geo shape of `geowallet dev --topology
//! geo` (regions `eu` and `us` with datacenters `a` and `b`, a tiebreaker
//! site `ap`, one group homed in each of eu and us).

use crate::net::{NODE_PORT, RAFT_PORT};
/// The shape of a run's cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Topology {
    /// One shard group replicated on every node, in one region.
    Single,
    /// Five nodes: eu/a, eu/b, us/a, us/b and ap/a; group 1 homed in eu
    /// (n1, n2, n5), group 2 homed in us (n3, n4, n5), the directory on
    /// all five. Client hosts alternate between eu and us.
    Geo,
}

/// Nodes of the geo shape.
pub const GEO_NODES: u64 = 5;

/// One shard group: id, home region, replicas as node indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: u64,
    pub home_region: &'static str,
    pub replicas: Vec<usize>,
}

/// The places and groups of one run.
#[derive(Debug, Clone)]
pub struct Layout {
    pub topology: Topology,
    /// (region, datacenter) of node index 0, 1, ...
    pub places: Vec<(&'static str, &'static str)>,
    pub groups: Vec<Group>,
}

impl Layout {
    /// `nodes` applies to the single shape only (geo has five).
    pub fn new(topology: Topology, nodes: u64) -> Layout {
        match topology {
            Topology::Single => Layout {
                topology,
                places: vec![("local", "a"); nodes as usize],
                groups: vec![Group {
                    id: 1,
                    home_region: "local",
                    replicas: (0..nodes as usize).collect(),
                }],
            },
            Topology::Geo => Layout {
                topology,
                places: vec![
                    ("eu", "a"),
                    ("eu", "b"),
                    ("us", "a"),
                    ("us", "b"),
                    ("ap", "a"),
                ],
                groups: vec![
                    Group {
                        id: 1,
                        home_region: "eu",
                        replicas: vec![0, 1, 4],
                    },
                    Group {
                        id: 2,
                        home_region: "us",
                        replicas: vec![2, 3, 4],
                    },
                ],
            },
        }
    }

    /// The region client host `j` (from 0) calls from, in the geo shape:
    /// its wallets open in the group homed there.
    /// The shard groups' ids, as text.
    pub fn group_ids(&self) -> Vec<String> {
        self.groups.iter().map(|g| g.id.to_string()).collect()
    }

    pub fn client_region(&self, j: usize) -> Option<&'static str> {
        match self.topology {
            Topology::Single => None,
            Topology::Geo => Some(["eu", "us"][j % 2]),
        }
    }

    /// The `[[peers]]` and `[[groups]]` of every node's config; `endpoint`
    /// gives node index `i`'s address. The single shape writes no places
    /// or groups (the one-group config every older test uses).
    /// `host(i)`: the address of node index `i` (its client API on
    /// [`NODE_PORT`], its node-to-node listener on [`RAFT_PORT`]).
    pub fn config_toml(&self, host: impl Fn(usize) -> String) -> String {
        let mut text = String::new();
        for (i, (region, dc)) in self.places.iter().enumerate() {
            text.push_str(&format!(
                "[[peers]]\nid = {}\nendpoint = \"{}:{NODE_PORT}\"\nraft_endpoint = \"{}:{RAFT_PORT}\"\n",
                i + 1,
                host(i),
                host(i)
            ));
            if self.topology == Topology::Geo {
                text.push_str(&format!("region = \"{region}\"\ndc = \"{dc}\"\n"));
            }
            text.push('\n');
        }
        if self.topology == Topology::Geo {
            for g in &self.groups {
                let replicas: Vec<String> =
                    g.replicas.iter().map(|i| (i + 1).to_string()).collect();
                text.push_str(&format!(
                    "[[groups]]\nid = {}\nhome_region = \"{}\"\nreplicas = [{}]\n\n",
                    g.id,
                    g.home_region,
                    replicas.join(", ")
                ));
            }
        }
        text
    }

    /// Every (region, datacenter) with its node indexes, in node order.
    pub fn datacenters(&self) -> Vec<((&'static str, &'static str), Vec<usize>)> {
        let mut dcs: Vec<((&str, &str), Vec<usize>)> = Vec::new();
        for (i, place) in self.places.iter().enumerate() {
            match dcs.iter_mut().find(|(p, _)| p == place) {
                Some((_, nodes)) => nodes.push(i),
                None => dcs.push((*place, vec![i])),
            }
        }
        dcs
    }

    /// Every region with its node indexes, in node order.
    pub fn regions(&self) -> Vec<(&'static str, Vec<usize>)> {
        let mut regions: Vec<(&str, Vec<usize>)> = Vec::new();
        for (i, (region, _)) in self.places.iter().enumerate() {
            match regions.iter_mut().find(|(r, _)| r == region) {
                Some((_, nodes)) => nodes.push(i),
                None => regions.push((region, vec![i])),
            }
        }
        regions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves the geo layout writes each node's place and two home groups sharing a tiebreaker.
    #[test]
    fn geo_layout_has_two_home_groups_and_a_tiebreaker() {
        let layout = Layout::new(Topology::Geo, 3);
        assert_eq!(layout.places.len(), GEO_NODES as usize);
        let toml = layout.config_toml(|i| format!("10.0.0.{}", 11 + i));
        assert!(toml.contains(
            "id = 5\nendpoint = \"10.0.0.15:7000\"\nraft_endpoint = \"10.0.0.15:7100\"\n\
             region = \"ap\"\ndc = \"a\""
        ));
        assert!(toml.contains("[[groups]]\nid = 2\nhome_region = \"us\"\nreplicas = [3, 4, 5]"));
        assert_eq!(layout.regions().len(), 3);
        assert_eq!(layout.datacenters()[1], (("eu", "b"), vec![1]));
        assert_eq!(layout.client_region(1), Some("us"));
        let single = Layout::new(Topology::Single, 3);
        assert!(!single.config_toml(|_| String::new()).contains("region"));
        assert_eq!(single.groups[0].replicas, vec![0, 1, 2]);
    }
}
