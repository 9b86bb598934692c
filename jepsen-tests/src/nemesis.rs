//! The nemesis: seeded faults against real processes and the namespaced
//! network. Each round waits quietly, strikes one fault of an enabled kind,
//! holds it, and heals it; the run records what struck and when.

use std::time::{Duration, Instant};

use geowallet_client::Client;
use geowallet_testkit::SplitMix64;

use crate::cluster::Cluster;
use crate::net::Net;
use crate::topology::{Layout, Topology};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Kind {
    /// SIGKILL a random set of nodes (sometimes all), restart them at heal.
    Kill,
    /// SIGSTOP one node (sometimes the leader), SIGCONT at heal.
    Pause,
    /// Isolate a node, isolate the leader, random halves, or one node
    /// that receives nothing from the others (one way).
    Partition,
    /// Jump one node's wall clock 5 s to 5 min ahead or behind
    /// (libfaketime; the monotonic clock is left alone).
    Clock,
    /// Lose 20-50% of one node's packets, both ways.
    Loss,
    /// Throttle what one node sends to 64-512 kbit/s (a slow, queueing link).
    Slow,
    /// Fill one node's disk (its data dir is a 256 MiB ext4 of its own)
    /// and restart the node on it; freed at heal, and the node restarted
    /// if it stopped.
    Disk,
    /// Lose a whole datacenter: SIGKILL every node in it (a home
    /// datacenter of eu or us three times in four, else another), restart
    /// them at heal. Geo topology only.
    Dc,
    /// Cut one region's nodes off from every other region's, both ways;
    /// a third of the time instead cut the two datacenters of one region
    /// apart (each still reaches the other regions). Clients still reach
    /// every node. Geo topology only.
    Region,
    /// SIGKILL one node, flip one bit in one of its RocksDB files (a table
    /// or the write-ahead log), restart it at heal. The node must detect the damage when it reads
    /// it (block checksums) and never serve or replicate what it lost;
    /// the replica comparison accepts a detected corruption on that node,
    /// never a silent difference.
    Bitflip,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Kill => "kill",
            Kind::Pause => "pause",
            Kind::Partition => "partition",
            Kind::Clock => "clock",
            Kind::Loss => "loss",
            Kind::Slow => "slow",
            Kind::Disk => "disk",
            Kind::Dc => "dc",
            Kind::Region => "region",
            Kind::Bitflip => "bitflip",
        }
    }

    /// Whether this fault needs the geo topology (places in regions and
    /// datacenters).
    pub fn needs_geo(self) -> bool {
        matches!(self, Kind::Dc | Kind::Region)
    }
}

/// One fault struck.
#[derive(Debug, Clone)]
pub struct Fault {
    pub kind: Kind,
    /// Since the start of the workload.
    pub at: Duration,
    pub held: Duration,
    pub what: String,
}

pub struct Nemesis {
    kinds: Vec<Kind>,
    layout: Layout,
    dice: SplitMix64,
    /// Nodes killed by the fault being held.
    killed: Vec<usize>,
    /// The node bits are flipped in, once chosen.
    flipped: Option<usize>,
}

impl Nemesis {
    pub fn new(kinds: Vec<Kind>, layout: Layout, seed: u64) -> Nemesis {
        assert!(
            layout.topology == Topology::Geo || !kinds.iter().any(|k| k.needs_geo()),
            "datacenter and region faults need the geo topology"
        );
        Nemesis {
            kinds,
            layout,
            dice: SplitMix64::new(seed),
            killed: Vec::new(),
            flipped: None,
        }
    }

    fn pick(&mut self, n: usize) -> usize {
        self.dice.below(n as u64) as usize
    }

    fn ms(&mut self, min: u64, max: u64) -> Duration {
        Duration::from_millis(min + self.dice.below(max - min + 1))
    }

    /// Strikes and heals faults until `until`; returns what struck.
    pub async fn run(
        &mut self,
        cluster: &mut Cluster,
        net: &Net,
        probe: &Client,
        started: Instant,
        until: Instant,
    ) -> anyhow::Result<Vec<Fault>> {
        let mut struck = Vec::new();
        if self.kinds.is_empty() {
            tokio::time::sleep_until(until.into()).await;
            return Ok(struck);
        }
        loop {
            let quiet = self.ms(1_000, 3_000);
            let hold = self.ms(2_000, 6_000);
            if Instant::now() + quiet + hold > until {
                break;
            }
            tokio::time::sleep(quiet).await;
            let k = self.pick(self.kinds.len());
            let kind = self.kinds[k];
            let at = started.elapsed();
            let what = self.strike(kind, cluster, net, probe).await?;
            println!(
                "geowallet-jepsen: {:>6.1} s  {:<9} {what} (for {:.1} s)",
                at.as_secs_f64(),
                kind.name(),
                hold.as_secs_f64()
            );
            tokio::time::sleep(hold).await;
            self.heal(cluster, net)?;
            struck.push(Fault {
                kind,
                at,
                held: hold,
                what,
            });
        }
        Ok(struck)
    }

    async fn strike(
        &mut self,
        kind: Kind,
        cluster: &mut Cluster,
        net: &Net,
        probe: &Client,
    ) -> anyhow::Result<String> {
        let n = cluster.nodes.len();
        let name = |i: usize| format!("n{}", i + 1);
        Ok(match kind {
            Kind::Kill => {
                let count = if self.pick(4) == 0 {
                    n
                } else {
                    1 + self.pick(n)
                };
                let mut order: Vec<usize> = (0..n).collect();
                self.shuffle(&mut order);
                let victims: Vec<usize> = order.into_iter().take(count).collect();
                for &i in &victims {
                    cluster.kill(i)?;
                }
                self.killed = victims.clone();
                format!("SIGKILL {}", names(&victims))
            }
            Kind::Pause => {
                let (i, how) = self.victim(n, net, probe).await;
                cluster.pause(i)?;
                format!("SIGSTOP {} ({how})", name(i))
            }
            Kind::Partition => match self.pick(4) {
                0 | 1 => {
                    let (i, how) = self.victim(n, net, probe).await;
                    let rest: Vec<usize> = (0..n).filter(|j| *j != i).collect();
                    net.partition(&[vec![i], rest])?;
                    format!("isolate {} ({how})", name(i))
                }
                2 => {
                    let mut order: Vec<usize> = (0..n).collect();
                    self.shuffle(&mut order);
                    let cut = 1 + self.pick(n - 1);
                    let (a, b) = order.split_at(cut);
                    net.partition(&[a.to_vec(), b.to_vec()])?;
                    format!("halves {} | {}", names(a), names(b))
                }
                _ => {
                    let i = self.pick(n);
                    for j in (0..n).filter(|j| *j != i) {
                        net.drop_between(j, i)?;
                    }
                    format!("one way: {} hears no other node", name(i))
                }
            },
            Kind::Clock => {
                let i = self.pick(n);
                let offsets = [-300, -30, -5, 5, 30, 300];
                let offset = offsets[self.pick(offsets.len())];
                cluster.skew_clock(i, offset)?;
                format!("{}'s clock jumps {offset:+} s", name(i))
            }
            Kind::Loss => {
                let i = self.pick(n);
                let percent = 20 + self.dice.below(31) as u32;
                net.loss(i, percent)?;
                format!("{} loses {percent}% of its packets", name(i))
            }
            Kind::Disk => {
                // Filled, then the node restarted on it: RocksDB's
                // preallocated write-ahead log would otherwise absorb a
                // few seconds of writes without touching the full disk;
                // opening it must write (a new log, flushed memtables).
                let i = self.pick(n);
                let free = cluster.fill_disk(i)?;
                cluster.kill(i)?;
                cluster.start(i)?;
                format!(
                    "{}'s disk filled ({} MiB were free), the node restarted on it",
                    name(i),
                    free >> 20
                )
            }
            Kind::Slow => {
                let i = self.pick(n);
                let kbit = 64 << self.pick(4);
                net.slow(i, kbit)?;
                format!("{} sends at {kbit} kbit/s", name(i))
            }
            Kind::Dc => {
                let dcs = self.layout.datacenters();
                let homes: Vec<usize> = (0..dcs.len())
                    .filter(|d| {
                        let region = dcs[*d].0.0;
                        self.layout.groups.iter().any(|g| g.home_region == region)
                    })
                    .collect();
                let d = if self.pick(4) > 0 && !homes.is_empty() {
                    homes[self.pick(homes.len())]
                } else {
                    self.pick(dcs.len())
                };
                let ((region, dc), victims) = dcs[d].clone();
                for &i in &victims {
                    cluster.kill(i)?;
                }
                self.killed = victims.clone();
                format!("datacenter {region}/{dc} lost: SIGKILL {}", names(&victims))
            }
            Kind::Bitflip => {
                // One damaged node per run: a node that detects damage may
                // stop serving for good, and two of them would be a lost
                // majority, not a test.
                let i = match self.flipped {
                    Some(i) => i,
                    None => self.pick(n),
                };
                self.flipped = Some(i);
                cluster.kill(i)?;
                self.killed = vec![i];
                let (file, offset, bit) =
                    (self.dice.next_u64(), self.dice.below(1000), self.pick(8));
                match cluster.flip_bit(
                    i,
                    |files| (file % files as u64) as usize,
                    offset,
                    bit as u8,
                )? {
                    Some(what) => {
                        cluster.taint(i, &what);
                        format!("{} stopped, {what} flipped", name(i))
                    }
                    None => format!("{} stopped, no file with data to flip yet", name(i)),
                }
            }
            Kind::Region => {
                let dcs = self.layout.datacenters();
                let split: Vec<(&str, Vec<usize>, Vec<usize>)> = self
                    .layout
                    .regions()
                    .into_iter()
                    .filter_map(|(region, _)| {
                        let nodes = |dc: &str| {
                            dcs.iter()
                                .find(|((r, d), _)| *r == region && *d == dc)
                                .map(|(_, n)| n.clone())
                        };
                        Some((region, nodes("a")?, nodes("b")?))
                    })
                    .collect();
                if self.pick(3) == 0 && !split.is_empty() {
                    let (region, a, b) = split[self.pick(split.len())].clone();
                    net.partition(&[a.clone(), b.clone()])?;
                    return Ok(format!(
                        "datacenters {region}/a ({}) and {region}/b ({}) cut apart",
                        names(&a),
                        names(&b)
                    ));
                }
                let regions = self.layout.regions();
                let (region, inside) = regions[self.pick(regions.len())].clone();
                let outside: Vec<usize> = (0..n).filter(|i| !inside.contains(i)).collect();
                net.partition(&[inside.clone(), outside.clone()])?;
                format!(
                    "region {region} ({}) cut off from {}",
                    names(&inside),
                    names(&outside)
                )
            }
        })
    }

    /// The leader half of the time (when one answers), else a random node.
    async fn victim(&mut self, n: usize, net: &Net, probe: &Client) -> (usize, &'static str) {
        if self.pick(2) == 0
            && let Some(l) = leader(net, probe).await
        {
            return (l, "the leader");
        }
        (self.pick(n), "random")
    }

    fn shuffle(&mut self, v: &mut [usize]) {
        for i in (1..v.len()).rev() {
            let j = self.pick(i + 1);
            v.swap(i, j);
        }
    }

    /// Undoes the fault held: restarts killed nodes, resumes paused ones,
    /// removes network faults, resets clocks.
    pub fn heal(&mut self, cluster: &mut Cluster, net: &Net) -> anyhow::Result<()> {
        for i in std::mem::take(&mut self.killed) {
            cluster.start(i)?;
        }
        cluster.resume_all()?;
        net.heal()?;
        cluster.free_disks()?;
        for exited in cluster.restart_exited()? {
            println!("geowallet-jepsen:           heal: {exited}; restarted");
        }
        cluster.reset_clocks()
    }
}

fn names(nodes: &[usize]) -> String {
    nodes
        .iter()
        .map(|i| format!("n{}", i + 1))
        .collect::<Vec<_>>()
        .join(",")
}

/// The index of the node the reachable nodes name as leader, if any.
pub async fn leader(net: &Net, probe: &Client) -> Option<usize> {
    for i in 0..net.nodes.len() {
        if let Ok(s) = probe.status_of(&net.node_endpoint(i)).await
            && s.leader_id > 0
        {
            return Some(s.leader_id as usize - 1);
        }
    }
    None
}
