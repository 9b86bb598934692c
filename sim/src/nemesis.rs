//! The nemesis: faults drawn from the seed, struck while the workload runs,
//! each held for a while and then healed. Faults name nodes and datacenters
//! (see [`crate::Place`]), so region-wide faults slot in when groups span
//! regions.

use std::time::Duration;

use geowallet_storage::CrashFaults;
use geowallet_testkit::SplitMix64;

use crate::SimCluster;

/// How long the cluster may go without a leader before a run gives up.
pub const LEADER_WAIT: Duration = Duration::from_secs(20);

/// Families of faults a scenario draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nemesis {
    /// SIGKILL of a node, power loss of the whole cluster, loss of a
    /// datacenter, bit flips on a stopped node's disk.
    Crashes,
    /// A node isolated from everyone (clients included), the group split in
    /// two halves (clients reach both), one-way link failures.
    Partitions,
    /// Lossy and slow network, frozen (SIGSTOP) nodes.
    SlowNetwork,
    /// Storms of leader transfers, mixed with leader kills.
    LeaderChurn,
    /// One node's clock set days, seconds or milliseconds off, ahead or behind.
    Clocks,
    /// All of the above.
    Mixed,
    /// Only whole-cluster power losses (for the lying-disk variant).
    PowerLoss,
    /// Faults of the geo shape: loss of a whole datacenter, a region cut
    /// off from the others, the two datacenters of a region cut apart,
    /// node kills and slow links.
    Geo,
}

/// One fault as struck; `Display`ed in the run's fault log.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    Kill {
        node: u64,
        faults: CrashFaults,
    },
    PowerLoss {
        faults: CrashFaults,
    },
    DatacenterLoss {
        datacenter: &'static str,
        nodes: Vec<u64>,
    },
    BitFlip {
        node: u64,
        log: bool,
    },
    Isolate {
        node: u64,
    },
    Partition {
        minority: Vec<u64>,
    },
    OneWay {
        from: u64,
        to: u64,
    },
    Lossy {
        loss_pct: u32,
        latency_ms: u64,
    },
    Pause {
        node: u64,
    },
    TransferStorm {
        transfers: u32,
    },
    ClockSkew {
        node: u64,
        offset_ms: i64,
    },
    /// Every link between `nodes` (a region) and the rest cut, both ways.
    RegionPartition {
        region: &'static str,
        nodes: Vec<u64>,
    },
    /// Every link between datacenters a and b of `region` cut, both ways.
    DatacenterPartition {
        region: &'static str,
        a: Vec<u64>,
        b: Vec<u64>,
    },
}

impl Nemesis {
    fn draw(self, cluster: &SimCluster, leader: Option<u64>, dice: &mut SplitMix64) -> Fault {
        let ids = cluster.ids();
        // Half the time the leader is the target: the interesting case.
        let target = match leader {
            Some(l) if dice.below(2) == 0 => l,
            _ => ids[dice.below(ids.len() as u64) as usize],
        };
        // A crash keeps a seeded prefix of the unsynced batches. No torn
        // values: RocksDB's WAL drops a torn tail record whole, which is a
        // shorter kept prefix; a torn value is damage, caught by checksums
        // (storage tests) and covered here by bit flips.
        let faults = CrashFaults {
            unsynced_batches_kept: dice.below(3) as usize,
            tear_last_write: false,
        };
        let family = match self {
            Nemesis::Mixed => [
                Nemesis::Crashes,
                Nemesis::Partitions,
                Nemesis::SlowNetwork,
                Nemesis::LeaderChurn,
                Nemesis::Clocks,
            ][dice.below(5) as usize],
            other => other,
        };
        match (family, dice.below(4)) {
            (Nemesis::Crashes, 0) | (Nemesis::PowerLoss, _) => Fault::PowerLoss { faults },
            (Nemesis::Crashes, 1) | (Nemesis::Geo, 0) => {
                let place = cluster.place(target).clone();
                let nodes = ids
                    .iter()
                    .copied()
                    .filter(|id| *cluster.place(*id) == place)
                    .collect();
                Fault::DatacenterLoss {
                    datacenter: place.datacenter,
                    nodes,
                }
            }
            (Nemesis::Geo, 1) => {
                let region = cluster.place(target).region;
                let nodes = ids
                    .iter()
                    .copied()
                    .filter(|id| cluster.place(*id).region == region)
                    .collect();
                Fault::RegionPartition { region, nodes }
            }
            (Nemesis::Geo, 2) => {
                let region = cluster.place(target).region;
                let in_dc = |dc: &str| -> Vec<u64> {
                    ids.iter()
                        .copied()
                        .filter(|id| {
                            let p = cluster.place(*id);
                            p.region == region && p.datacenter == dc
                        })
                        .collect()
                };
                Fault::DatacenterPartition {
                    region,
                    a: in_dc("a"),
                    b: in_dc("b"),
                }
            }
            (Nemesis::Geo, _) => match dice.below(3) {
                0 => Fault::Kill {
                    node: target,
                    faults,
                },
                1 => Fault::Isolate { node: target },
                _ => Fault::Lossy {
                    loss_pct: 1 + dice.below(10) as u32,
                    latency_ms: 5 + dice.below(60),
                },
            },
            (Nemesis::Crashes, 2) => Fault::BitFlip {
                node: target,
                log: dice.below(2) == 0,
            },
            (Nemesis::Crashes, _) => Fault::Kill {
                node: target,
                faults,
            },
            (Nemesis::Partitions, 0) => Fault::Isolate { node: target },
            (Nemesis::Partitions, 1 | 2) => {
                // Random halves: the minority holds the target and maybe one more.
                let mut minority = vec![target];
                if ids.len() > 3 && dice.below(2) == 0 {
                    let other = ids[dice.below(ids.len() as u64) as usize];
                    if other != target {
                        minority.push(other);
                    }
                }
                Fault::Partition { minority }
            }
            (Nemesis::Partitions, _) => {
                let others: Vec<u64> = ids.iter().copied().filter(|id| *id != target).collect();
                let other = others[dice.below(others.len() as u64) as usize];
                if dice.below(2) == 0 {
                    Fault::OneWay {
                        from: target,
                        to: other,
                    }
                } else {
                    Fault::OneWay {
                        from: other,
                        to: target,
                    }
                }
            }
            (Nemesis::SlowNetwork, 0 | 1) => Fault::Lossy {
                loss_pct: 1 + dice.below(15) as u32,
                latency_ms: 5 + dice.below(60),
            },
            (Nemesis::SlowNetwork, _) => Fault::Pause { node: target },
            (Nemesis::LeaderChurn, 0) => Fault::Kill {
                node: leader.unwrap_or(target),
                faults,
            },
            (Nemesis::LeaderChurn, _) => Fault::TransferStorm {
                transfers: 2 + dice.below(6) as u32,
            },
            (Nemesis::Clocks, k) => {
                const DAY_MS: i64 = 86_400_000;
                let magnitude = match k {
                    0 => 3 * DAY_MS,
                    // Past the idempotency window: would age every tx id.
                    1 => 8 * DAY_MS,
                    2 => 2_000 + dice.below(60_000) as i64,
                    // Within the tolerance: must change nothing.
                    _ => dice.below(200) as i64,
                };
                let sign = if dice.below(4) == 0 { -1 } else { 1 };
                Fault::ClockSkew {
                    node: target,
                    offset_ms: sign * magnitude,
                }
            }
            (Nemesis::Mixed, _) => unreachable!("mixed picks a family first"),
        }
    }
}

/// Strikes `fault`, holds it for `hold`, heals it. Errors are harness
/// verdicts (a bit flip that went unnoticed).
async fn strike(
    cluster: &SimCluster,
    fault: &Fault,
    hold: Duration,
    dice: &mut SplitMix64,
) -> Result<(), String> {
    match fault {
        Fault::Kill { node, faults } => {
            cluster.kill(*node, *faults);
            tokio::time::sleep(hold).await;
            cluster.restart(*node);
        }
        Fault::PowerLoss { faults } => {
            cluster
                .ids()
                .into_iter()
                .for_each(|id| cluster.kill(id, *faults));
            tokio::time::sleep(hold / 4).await;
            cluster.ids().into_iter().for_each(|id| cluster.restart(id));
        }
        Fault::DatacenterLoss { nodes, .. } => {
            let faults = CrashFaults::default();
            nodes.iter().for_each(|id| cluster.kill(*id, faults));
            tokio::time::sleep(hold).await;
            nodes.iter().for_each(|id| cluster.restart(*id));
        }
        Fault::BitFlip { node, log } => {
            cluster.kill(*node, CrashFaults::default());
            if let Some(damage) = cluster.flip_stored_bit(*node, *log, dice.next_u64()) {
                match cluster.read_disk(*node) {
                    Err(e) if e.is_corruption() => {}
                    Err(e) => {
                        return Err(format!(
                            "a flipped bit in {:?} key {:?} of node {node} was reported as {e}, not as corruption",
                            damage.0, damage.1
                        ));
                    }
                    Ok(()) => {
                        return Err(format!(
                            "a flipped bit in {:?} key {:?} of node {node} went unnoticed by the stores",
                            damage.0, damage.1
                        ));
                    }
                }
                // The operator restores the disk (say, from the other replicas).
                cluster.unflip_stored_bit(*node, &damage);
                cluster
                    .read_disk(*node)
                    .map_err(|e| format!("node {node}'s disk is unreadable after repair: {e}"))?;
            }
            tokio::time::sleep(hold / 2).await;
            cluster.restart(*node);
        }
        Fault::Isolate { node } => {
            cluster.isolate(*node);
            tokio::time::sleep(hold).await;
            cluster.heal_network();
        }
        Fault::Partition { minority } => {
            for a in cluster.ids() {
                for b in cluster.ids() {
                    if minority.contains(&a) != minority.contains(&b) {
                        cluster.cut(a, b);
                    }
                }
            }
            tokio::time::sleep(hold).await;
            cluster.heal_network();
        }
        Fault::RegionPartition { nodes, .. } => {
            for a in cluster.ids() {
                for b in cluster.ids() {
                    if nodes.contains(&a) != nodes.contains(&b) {
                        cluster.cut(a, b);
                    }
                }
            }
            tokio::time::sleep(hold).await;
            cluster.heal_network();
        }
        Fault::DatacenterPartition { a, b, .. } => {
            for x in a {
                for y in b {
                    cluster.cut(*x, *y);
                    cluster.cut(*y, *x);
                }
            }
            tokio::time::sleep(hold).await;
            cluster.heal_network();
        }
        Fault::OneWay { from, to } => {
            cluster.cut(*from, *to);
            tokio::time::sleep(hold).await;
            cluster.heal_network();
        }
        Fault::Lossy {
            loss_pct,
            latency_ms,
        } => {
            let latency = Duration::from_millis(1)..Duration::from_millis(*latency_ms);
            cluster.degrade_network(f64::from(*loss_pct) / 100.0, latency);
            tokio::time::sleep(hold).await;
            cluster.heal_network();
        }
        Fault::Pause { node } => {
            cluster.pause(*node);
            tokio::time::sleep(hold).await;
            cluster.resume(*node);
        }
        Fault::ClockSkew { node, offset_ms } => {
            cluster.skew_clock(*node, offset_ms.saturating_mul(1_000_000));
            // Held three times as long: long enough for a skewed leader to
            // be measured, refuse writes and hand leadership away.
            tokio::time::sleep(hold * 3).await;
            cluster.skew_clock(*node, 0);
        }
        Fault::TransferStorm { transfers } => {
            let ids = cluster.ids();
            for _ in 0..*transfers {
                if let Some((_, raft)) = cluster.leader(Duration::from_millis(500)).await {
                    let to = ids[dice.below(ids.len() as u64) as usize];
                    // Refused when `to` lags or is the leader itself: fine, a storm is noisy.
                    let _ = raft.trigger().transfer_leader(to).await;
                }
                tokio::time::sleep(Duration::from_millis(30 + dice.below(200))).await;
            }
        }
    }
    Ok(())
}

/// Strikes faults from `nemesis` until `done()` says the workload finished,
/// each after a quiet gap; returns what it struck, in order.
pub async fn run(
    cluster: &SimCluster,
    nemesis: Nemesis,
    dice: &mut SplitMix64,
    done: impl Fn() -> bool,
) -> Result<Vec<String>, String> {
    let mut struck = Vec::new();
    while !done() {
        tokio::time::sleep(Duration::from_millis(200 + dice.below(600))).await;
        if done() {
            break;
        }
        let leader = cluster
            .leader(Duration::from_millis(200))
            .await
            .map(|(id, _)| id);
        let fault = nemesis.draw(cluster, leader, dice);
        let hold = Duration::from_millis(300 + dice.below(1200));
        struck.push(format!("{fault:?} for {hold:?}"));
        strike(cluster, &fault, hold, dice).await?;
    }
    Ok(struck)
}
