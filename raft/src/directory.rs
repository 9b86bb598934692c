//! The directory's state machine (group 0): the shard groups with their
//! home regions, and each player's placement (player → group, with an
//! epoch that grows every time the placement changes, as TiKV's region
//! epoch does). Applying a command is a pure function of the rows it reads
//! and the command: no clock, no randomness, no I/O.

use std::collections::BTreeMap;

use geowallet_storage::DirKey;
use serde::{Deserialize, Serialize};

/// A shard group as the directory knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEntry {
    pub id: u64,
    pub home_region: String,
}

/// Where a player's wallet lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub player: u64,
    pub group: u64,
    /// 1 when first placed, +1 on every change.
    pub epoch: u64,
}

/// A command of the directory's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirCommand {
    /// Declares the shard groups (from the topology the cluster was
    /// bootstrapped with). Repeating the same list changes nothing.
    SetGroups { groups: Vec<GroupEntry> },
    /// Places `player` in a group homed in `region` (any group when
    /// `region` is empty), unless it is placed already: then answers its
    /// placement unchanged.
    Place { player: u64, region: String },
    /// Points `player` at `group` with the next epoch, if its placement is
    /// still at `expected_epoch` (the step of a move that changes it).
    Repoint {
        player: u64,
        group: u64,
        expected_epoch: u64,
    },
}

/// What a directory command answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirReply {
    GroupsSet,
    Placed(Placement),
    Refused(DirRefusal),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum DirRefusal {
    #[error("the directory has no shard groups yet; retry once the cluster is bootstrapped")]
    NoGroups,
    #[error("no shard group is homed in region {region:?} (regions: {regions:?})")]
    NoGroupInRegion {
        region: String,
        regions: Vec<String>,
    },
    #[error("the directory's groups are already set to another list; change them by migration")]
    GroupsDiffer,
    #[error("group {group} is not a shard group of the directory")]
    UnknownGroup { group: u64 },
    #[error("player {player} is not placed")]
    NotPlaced { player: u64 },
    #[error("player {player} is at epoch {epoch}, not {expected}")]
    StaleEpoch {
        player: u64,
        epoch: u64,
        expected: u64,
    },
}

/// The rows a directory command reads.
pub trait DirRows {
    fn read(&self, key: DirKey) -> Option<Vec<u8>>;
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_allocvec(v).expect("directory rows encode")
}

/// The rows of one entry: what was read, overlaid with what earlier
/// commands of the entry wrote.
pub struct Overlay<'a, R: DirRows> {
    base: &'a R,
    written: BTreeMap<DirKey, Vec<u8>>,
    /// The first row that did not decode: the entry must fail, never read
    /// a damaged row as an absent one.
    undecodable: std::cell::Cell<Option<DirKey>>,
}

impl<'a, R: DirRows> Overlay<'a, R> {
    pub fn new(base: &'a R) -> Overlay<'a, R> {
        Overlay {
            base,
            written: BTreeMap::new(),
            undecodable: std::cell::Cell::new(None),
        }
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, key: DirKey) -> Option<T> {
        let bytes = self.get(key)?;
        let value = postcard::from_bytes(&bytes).ok();
        if value.is_none() && self.undecodable.get().is_none() {
            self.undecodable.set(Some(key));
        }
        value
    }

    /// A row read by the commands applied so far that did not decode.
    pub fn undecodable(&self) -> Option<DirKey> {
        self.undecodable.get()
    }

    fn get(&self, key: DirKey) -> Option<Vec<u8>> {
        self.written
            .get(&key)
            .cloned()
            .or_else(|| self.base.read(key))
    }

    pub fn groups(&self) -> Vec<GroupEntry> {
        self.decode(DirKey::Groups).unwrap_or_default()
    }

    pub fn placement(&self, player: u64) -> Option<Placement> {
        self.decode(DirKey::Placement(player))
    }

    /// The rows written, to persist.
    pub fn into_writes(self) -> Vec<(DirKey, Vec<u8>)> {
        self.written.into_iter().collect()
    }

    /// Applies one command.
    pub fn apply(&mut self, cmd: &DirCommand) -> DirReply {
        match cmd {
            DirCommand::SetGroups { groups } => {
                let current = self.groups();
                if current.is_empty() {
                    self.written.insert(DirKey::Groups, encode(groups));
                    DirReply::GroupsSet
                } else if &current == groups {
                    DirReply::GroupsSet
                } else {
                    DirReply::Refused(DirRefusal::GroupsDiffer)
                }
            }
            DirCommand::Place { player, region } => {
                if let Some(p) = self.placement(*player) {
                    return DirReply::Placed(p);
                }
                let groups = self.groups();
                if groups.is_empty() {
                    return DirReply::Refused(DirRefusal::NoGroups);
                }
                let homed: Vec<&GroupEntry> = groups
                    .iter()
                    .filter(|g| region.is_empty() || &g.home_region == region)
                    .collect();
                if homed.is_empty() {
                    let mut regions: Vec<String> =
                        groups.iter().map(|g| g.home_region.clone()).collect();
                    regions.dedup();
                    return DirReply::Refused(DirRefusal::NoGroupInRegion {
                        region: region.clone(),
                        regions,
                    });
                }
                // Spread players over the region's groups by a hash of the
                // id: deterministic, and no counter row every placement
                // would contend on.
                let g = homed[(mix(*player) % homed.len() as u64) as usize];
                let p = Placement {
                    player: *player,
                    group: g.id,
                    epoch: 1,
                };
                self.written.insert(DirKey::Placement(*player), encode(&p));
                DirReply::Placed(p)
            }
            DirCommand::Repoint {
                player,
                group,
                expected_epoch,
            } => {
                if !self.groups().iter().any(|g| g.id == *group) {
                    return DirReply::Refused(DirRefusal::UnknownGroup { group: *group });
                }
                let Some(current) = self.placement(*player) else {
                    return DirReply::Refused(DirRefusal::NotPlaced { player: *player });
                };
                if current.epoch != *expected_epoch {
                    return DirReply::Refused(DirRefusal::StaleEpoch {
                        player: *player,
                        epoch: current.epoch,
                        expected: *expected_epoch,
                    });
                }
                let p = Placement {
                    player: *player,
                    group: *group,
                    epoch: current.epoch + 1,
                };
                self.written.insert(DirKey::Placement(*player), encode(&p));
                DirReply::Placed(p)
            }
        }
    }
}

/// A fixed bit mixer (splitmix64's finalizer): sequential player ids land
/// on different groups.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Rows(BTreeMap<DirKey, Vec<u8>>);

    impl DirRows for Rows {
        fn read(&self, key: DirKey) -> Option<Vec<u8>> {
            self.0.get(&key).cloned()
        }
    }

    fn apply(rows: &mut Rows, cmd: DirCommand) -> DirReply {
        let mut o = Overlay::new(&*rows);
        let reply = o.apply(&cmd);
        let writes = o.into_writes();
        rows.0.extend(writes);
        reply
    }

    fn groups() -> Vec<GroupEntry> {
        [(1, "eu"), (2, "us"), (3, "eu")]
            .into_iter()
            .map(|(id, r)| GroupEntry {
                id,
                home_region: r.into(),
            })
            .collect()
    }

    fn place(player: u64, region: &str) -> DirCommand {
        DirCommand::Place {
            player,
            region: region.into(),
        }
    }

    // Players are placed in a group homed in their region, spread over the
    // region's groups; placing again answers the same placement; a region
    // with no group is refused with the regions there are.
    #[test]
    fn places_players_in_their_region_once() {
        let mut rows = Rows::default();
        assert_eq!(
            apply(&mut rows, place(1, "eu")),
            DirReply::Refused(DirRefusal::NoGroups)
        );
        let set = DirCommand::SetGroups { groups: groups() };
        assert_eq!(apply(&mut rows, set.clone()), DirReply::GroupsSet);
        assert_eq!(apply(&mut rows, set), DirReply::GroupsSet);
        let mut eu_groups = std::collections::BTreeSet::new();
        for player in 1..=100 {
            let DirReply::Placed(p) = apply(&mut rows, place(player, "eu")) else {
                panic!("placed")
            };
            assert!(p.group == 1 || p.group == 3, "{p:?}");
            assert_eq!(p.epoch, 1);
            eu_groups.insert(p.group);
            // Placed already: the region of a later call does not matter.
            assert_eq!(apply(&mut rows, place(player, "us")), DirReply::Placed(p));
        }
        assert_eq!(eu_groups.len(), 2, "spread over both eu groups");
        let DirReply::Placed(p) = apply(&mut rows, place(500, "us")) else {
            panic!("placed")
        };
        assert_eq!(p.group, 2);
        match apply(&mut rows, place(501, "ap")) {
            DirReply::Refused(DirRefusal::NoGroupInRegion { region, regions }) => {
                assert_eq!(region, "ap");
                assert!(regions.contains(&"us".to_string()));
            }
            other => panic!("{other:?}"),
        }
        let other = DirCommand::SetGroups {
            groups: groups()[..1].to_vec(),
        };
        assert_eq!(
            apply(&mut rows, other),
            DirReply::Refused(DirRefusal::GroupsDiffer)
        );
    }

    // A row that does not decode is reported, never taken for an absent
    // one (which would place a player twice or redeclare the groups).
    #[test]
    fn an_undecodable_row_is_reported() {
        let mut rows = Rows::default();
        rows.0.insert(DirKey::Placement(7), vec![0xff; 3]);
        let mut o = Overlay::new(&rows);
        o.apply(&place(8, ""));
        assert_eq!(o.undecodable(), None);
        o.apply(&place(7, "eu"));
        assert_eq!(o.undecodable(), Some(DirKey::Placement(7)));
    }

    // A repoint moves the epoch forward only from the epoch it expects.
    #[test]
    fn repoint_bumps_the_epoch_from_the_expected_one() {
        let mut rows = Rows::default();
        apply(&mut rows, DirCommand::SetGroups { groups: groups() });
        let DirReply::Placed(p) = apply(&mut rows, place(7, "eu")) else {
            panic!("placed")
        };
        let repoint = |expected_epoch| DirCommand::Repoint {
            player: 7,
            group: 2,
            expected_epoch,
        };
        let DirReply::Placed(q) = apply(&mut rows, repoint(1)) else {
            panic!("repointed")
        };
        assert_eq!((q.group, q.epoch), (2, p.epoch + 1));
        assert_eq!(
            apply(&mut rows, repoint(1)),
            DirReply::Refused(DirRefusal::StaleEpoch {
                player: 7,
                epoch: 2,
                expected: 1
            })
        );
        let unknown = DirCommand::Repoint {
            player: 7,
            group: 9,
            expected_epoch: 2,
        };
        assert_eq!(
            apply(&mut rows, unknown),
            DirReply::Refused(DirRefusal::UnknownGroup { group: 9 })
        );
    }
}
