//! The test network: one Linux bridge and one network namespace per node
//! and per client host, each joined to the bridge by a veth pair, with
//! addresses in one private /24 and no route anywhere else (nothing a test
//! sends can leave the machine). Faults are iptables rules and tc qdiscs
//! inside the namespaces. Every name starts with the run's prefix; `Net`
//! removes everything it made when dropped (on success, failure or Ctrl-C).

use std::process::Command;

use anyhow::{Context, bail};

/// Port every node's client API listens on, inside its own namespace.
pub const NODE_PORT: u16 = 7000;
/// Port every node's node-to-node listener (Raft, move steps) listens on.
pub const RAFT_PORT: u16 = 7100;

/// Runs `program args`, failing with its stderr.
pub fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("run {program} (is it installed? see jepsen-tests/README.md)"))?;
    if !out.status.success() {
        bail!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `program args` inside namespace `ns`.
pub fn run_in(ns: &str, program: &str, args: &[&str]) -> anyhow::Result<String> {
    let mut full = vec!["netns", "exec", ns, program];
    full.extend_from_slice(args);
    run("ip", &full)
}

/// One host of the test network.
#[derive(Debug, Clone)]
pub struct Host {
    /// Its network namespace.
    pub ns: String,
    pub ip: String,
}

pub struct Net {
    prefix: String,
    bridge: String,
    bridge_ip: String,
    pub nodes: Vec<Host>,
    pub clients: Vec<Host>,
    made: Vec<String>,
}

impl Net {
    /// Makes the bridge and `nodes` + `clients` namespaces under `prefix`
    /// (at most 8 characters, so interface names fit in 15).
    pub fn create(prefix: &str, nodes: usize, clients: usize) -> anyhow::Result<Net> {
        if prefix.len() > 8 {
            bail!("run prefix {prefix:?} is longer than 8 characters");
        }
        // Choosing a subnet and taking it is one step for concurrent runs
        // (two bridges with one subnet would confuse the host's routes).
        let _lock = NetLock::take()?;
        let subnet = free_subnet()?;
        let bridge = format!("{prefix}br");
        let mut net = Net {
            prefix: prefix.to_string(),
            bridge: bridge.clone(),
            bridge_ip: format!("10.213.{subnet}.1"),
            nodes: Vec::new(),
            clients: Vec::new(),
            made: Vec::new(),
        };
        run("ip", &["link", "add", &bridge, "type", "bridge"])?;
        net.made.push(format!("link {bridge}"));
        run("ip", &["link", "set", &bridge, "up"])?;
        let cidr = format!("{}/24", net.bridge_ip);
        run("ip", &["addr", "add", &cidr, "dev", &bridge])?;
        for i in 1..=nodes {
            let host = net.add_host(&format!("n{i}"), &format!("10.213.{subnet}.{}", 10 + i))?;
            net.nodes.push(host);
        }
        for j in 1..=clients {
            let host = net.add_host(&format!("c{j}"), &format!("10.213.{subnet}.{}", 100 + j))?;
            net.clients.push(host);
        }
        Ok(net)
    }

    fn add_host(&mut self, name: &str, ip: &str) -> anyhow::Result<Host> {
        let ns = format!("{}{name}", self.prefix);
        run("ip", &["netns", "add", &ns])?;
        self.made.push(format!("netns {ns}"));
        let (outside, inside) = (format!("{ns}h"), format!("{ns}c"));
        run(
            "ip",
            &[
                "link", "add", &outside, "type", "veth", "peer", "name", &inside,
            ],
        )?;
        // Deleted explicitly (with its peer) before the namespace: a
        // namespace dies asynchronously, after its last process, and its
        // veth pair with it.
        self.made.push(format!("link {outside}"));
        run(
            "ip",
            &["link", "set", &outside, "master", &self.bridge, "up"],
        )?;
        run("ip", &["link", "set", &inside, "netns", &ns])?;
        run("ip", &["-n", &ns, "link", "set", &inside, "name", "eth0"])?;
        run(
            "ip",
            &["-n", &ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"],
        )?;
        run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
        run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(Host {
            ns,
            ip: ip.to_string(),
        })
    }

    pub fn node_endpoint(&self, i: usize) -> String {
        format!("{}:{NODE_PORT}", self.nodes[i].ip)
    }

    /// Drops every packet from node `from` arriving at node `to` (one way).
    pub fn drop_between(&self, from: usize, to: usize) -> anyhow::Result<()> {
        let (f, t) = (&self.nodes[from], &self.nodes[to]);
        run_in(
            &t.ns,
            "iptables",
            &["-A", "INPUT", "-s", &f.ip, "-j", "DROP"],
        )?;
        Ok(())
    }

    /// Nodes in different `sides` cannot reach each other (both ways).
    pub fn partition(&self, sides: &[Vec<usize>]) -> anyhow::Result<()> {
        for (a, side) in sides.iter().enumerate() {
            for (b, other) in sides.iter().enumerate() {
                if a != b {
                    for &from in other {
                        for &to in side {
                            self.drop_between(from, to)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Loses `percent` of the packets node `i` receives and sends.
    pub fn loss(&self, i: usize, percent: u32) -> anyhow::Result<()> {
        let p = format!("{:.2}", f64::from(percent) / 100.0);
        let ns = &self.nodes[i].ns;
        for chain in ["INPUT", "OUTPUT"] {
            run_in(
                ns,
                "iptables",
                &[
                    "-A",
                    chain,
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    &p,
                    "-j",
                    "DROP",
                ],
            )?;
        }
        Ok(())
    }

    /// Throttles what node `i` sends to `kbit` kbit/s: a slow link whose
    /// queue adds latency (this kernel has no netem; see the README).
    pub fn slow(&self, i: usize, kbit: u32) -> anyhow::Result<()> {
        let rate = format!("{kbit}kbit");
        run_in(
            &self.nodes[i].ns,
            "tc",
            &[
                "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", &rate, "burst", "16kbit",
                "latency", "2s",
            ],
        )?;
        Ok(())
    }

    /// Removes every network fault.
    pub fn heal(&self) -> anyhow::Result<()> {
        for h in &self.nodes {
            run_in(&h.ns, "iptables", &["-F"])?;
            // No qdisc is not an error worth reporting.
            let _ = run_in(&h.ns, "tc", &["qdisc", "del", "dev", "eth0", "root"]);
        }
        Ok(())
    }

    /// Removes the namespaces (their veth ends go with them) and the bridge.
    pub fn teardown(&mut self) {
        for what in self.made.drain(..).rev() {
            let result = match what.split_once(' ') {
                Some(("netns", ns)) => run("ip", &["netns", "del", ns]),
                Some(("link", link)) => run("ip", &["link", "del", link]),
                _ => Ok(String::new()),
            };
            if let Err(e) = result {
                eprintln!("geowallet-jepsen: teardown: {e:#}");
            }
        }
    }

    pub fn bridge_ip(&self) -> &str {
        &self.bridge_ip
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// An exclusive lock on choosing test subnets, held until dropped.
struct NetLock {
    /// The lock lives as long as the open descriptor.
    _file: std::fs::File,
}

impl NetLock {
    fn take() -> anyhow::Result<NetLock> {
        let path = std::env::temp_dir().join("geowallet-jepsen-net.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor we own; released when it closes.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            bail!(
                "lock {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
        Ok(NetLock { _file: file })
    }
}

/// A /24 under 10.213.0.0/16 no interface of this machine uses yet.
fn free_subnet() -> anyhow::Result<u8> {
    let addrs = run("ip", &["-o", "addr", "show"])?;
    (20..=250u8)
        .find(|s| !addrs.contains(&format!("10.213.{s}.")))
        .context("every 10.213.x.0/24 subnet is in use: leftover test networks? `ip -o addr`")
}
