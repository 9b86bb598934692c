//! Real `geowallet node` processes, one per namespace: configs written
//! here, started with `ip netns exec`, killed, paused and restarted by the
//! nemesis, stopped at the end.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::net::{NODE_PORT, Net, RAFT_PORT};
use crate::topology::Layout;

/// How long a node may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Where Debian's `faketime` package puts the thread-safe library.
const FAKETIME_LIBS: [&str; 2] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
];

pub struct Node {
    pub id: u64,
    ns: String,
    dir: PathBuf,
    config: PathBuf,
    child: Option<Child>,
    paused: bool,
    /// The data dir is a small ext4 file system of its own (loop device),
    /// which the disk nemesis fills.
    own_disk: bool,
}

impl Node {
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The file that fills this node's disk while the disk nemesis holds.
    fn filler(&self) -> PathBuf {
        self.data_dir().join("jepsen-filler")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The file libfaketime reads this node's clock offset from.
    fn clock_file(&self) -> PathBuf {
        self.dir.join("faketime")
    }
}

pub struct Cluster {
    binary: PathBuf,
    pub nodes: Vec<Node>,
    /// libfaketime, when the clock nemesis runs: every node reads its wall
    /// clock offset from its own file (the monotonic clock is left alone).
    faketime: Option<PathBuf>,
    /// Environment for every node (a planted bug, when the run tests
    /// itself).
    env: Vec<(String, String)>,
    /// Bits flipped in each node's files (by node index).
    flipped: std::collections::BTreeMap<usize, Vec<String>>,
}

/// The cluster's CA, each node's certificate (valid for its address) and
/// the `root` client certificate the client hosts use, issued by
/// `geowallet certs` into `dir`.
fn issue_certs(binary: &Path, dir: &Path, net: &Net) -> anyhow::Result<()> {
    let mut cmd = std::process::Command::new(binary);
    cmd.arg("certs")
        .arg("--dir")
        .arg(dir)
        .args(["--client", "root"]);
    for (i, host) in net.nodes.iter().enumerate() {
        cmd.arg("--node").arg(format!("{}={}", i + 1, host.ip));
    }
    let out = cmd
        .output()
        .with_context(|| format!("run {} certs", binary.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "{} certs failed: {}",
        binary.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

impl Cluster {
    /// Writes each node's config under `dir/n<i>`: the places and groups of
    /// `layout`, election timeouts for a local network.
    pub fn prepare(
        binary: &Path,
        dir: &Path,
        net: &Net,
        layout: &Layout,
        clock: bool,
        disk: bool,
        env: Vec<(String, String)>,
    ) -> anyhow::Result<Cluster> {
        let faketime = if clock {
            let lib = FAKETIME_LIBS
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
                .context("the clock nemesis needs libfaketime: apt-get install faketime")?;
            Some(lib)
        } else {
            None
        };
        let peers = layout.config_toml(|i| net.nodes[i].ip.to_string());
        let tls_dir = dir.join("tls");
        issue_certs(binary, &tls_dir, net)?;
        let mut nodes = Vec::new();
        for (i, host) in net.nodes.iter().enumerate() {
            let id = i as u64 + 1;
            let node_dir = dir.join(format!("n{id}"));
            std::fs::create_dir_all(&node_dir)
                .with_context(|| format!("create {}", node_dir.display()))?;
            let config = node_dir.join("node.toml");
            let text = format!(
                "node_id = {id}\nlisten = \"{}:{NODE_PORT}\"\nraft_listen = \"{}:{RAFT_PORT}\"\n\
                 data_dir = \"{}\"\n\n[tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n\n{peers}\
                 [raft]\nheartbeat_interval_ms = 50\nelection_timeout_ms_min = 300\n\
                 election_timeout_ms_max = 600\n\n\
                 # Audits read each group at its own index; with wallets moving\n\
                 # between groups their sum is no consistent cut, so the bank\n\
                 # check would not hold: automatic moves stay off here.\n\
                 [moves]\nauto = false\n",
                host.ip,
                host.ip,
                node_dir.join("data").display(),
                tls_dir.join("ca.pem").display(),
                tls_dir.join(format!("node-{id}.pem")).display(),
                tls_dir.join(format!("node-{id}.key")).display(),
            );
            std::fs::write(&config, text).with_context(|| format!("write {}", config.display()))?;
            let mut node = Node {
                id,
                ns: host.ns.clone(),
                dir: node_dir,
                config,
                child: None,
                paused: false,
                own_disk: false,
            };
            if disk {
                mount_disk(&node)?;
                node.own_disk = true;
            }
            std::fs::write(node.clock_file(), "+0")?;
            nodes.push(node);
        }
        Ok(Cluster {
            binary: binary.to_path_buf(),
            nodes,
            faketime,
            env,
            flipped: Default::default(),
        })
    }

    /// Starts node `i` (index) unless it runs.
    pub fn start(&mut self, i: usize) -> anyhow::Result<()> {
        let faketime = self.faketime.clone();
        let node = &mut self.nodes[i];
        if node.child.is_some() {
            return Ok(());
        }
        let log_path = node.dir.join("node.log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("open {}", log_path.display()))?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &node.ns])
            .arg(&self.binary)
            .arg("node")
            .arg("--config")
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(lib) = &faketime {
            cmd.env("LD_PRELOAD", lib)
                .env("FAKETIME_TIMESTAMP_FILE", node.clock_file())
                .env("FAKETIME_NO_CACHE", "1")
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let child = cmd
            .spawn()
            .with_context(|| format!("start node {} ({})", node.id, self.binary.display()))?;
        node.child = Some(child);
        node.paused = false;
        Ok(())
    }

    pub fn start_all(&mut self) -> anyhow::Result<()> {
        (0..self.nodes.len()).try_for_each(|i| self.start(i))
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        let node = &mut self.nodes[i];
        if let Some(mut child) = node.child.take() {
            child.kill().context("SIGKILL a node")?;
            child.wait().context("reap a killed node")?;
        }
        node.paused = false;
        Ok(())
    }

    pub fn pause(&mut self, i: usize) -> anyhow::Result<()> {
        let node = &mut self.nodes[i];
        if let Some(pid) = node.pid() {
            signal(pid, libc::SIGSTOP)?;
            node.paused = true;
        }
        Ok(())
    }

    pub fn resume_all(&mut self) -> anyhow::Result<()> {
        for node in &mut self.nodes {
            if let (Some(pid), true) = (node.pid(), node.paused) {
                signal(pid, libc::SIGCONT)?;
                node.paused = false;
            }
        }
        Ok(())
    }

    /// Sets node `i`'s wall clock `offset_s` seconds from the true time
    /// (libfaketime reads the file on every call).
    pub fn skew_clock(&self, i: usize, offset_s: i64) -> anyhow::Result<()> {
        if self.faketime.is_none() {
            bail!("clock faults need the cluster prepared with the clock nemesis");
        }
        let path = self.nodes[i].clock_file();
        std::fs::write(&path, format!("{offset_s:+}"))
            .with_context(|| format!("write {}", path.display()))
    }

    pub fn reset_clocks(&self) -> anyhow::Result<()> {
        if self.faketime.is_some() {
            (0..self.nodes.len()).try_for_each(|i| self.skew_clock(i, 0))?;
        }
        Ok(())
    }

    /// Fills node `i`'s disk to the last byte.
    pub fn fill_disk(&self, i: usize) -> anyhow::Result<u64> {
        let node = &self.nodes[i];
        if !node.own_disk {
            bail!("disk faults need the cluster prepared with the disk nemesis");
        }
        let free = free_bytes(&node.data_dir())?;
        let filler = node.filler();
        run_cmd(
            "fallocate",
            &["-l", &free.to_string(), &filler.to_string_lossy()],
        )?;
        // Whatever fallocate could not take (metadata blocks), written.
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&filler) {
            use std::io::Write;
            let block = vec![0u8; 1 << 16];
            while f.write_all(&block).is_ok() {}
        }
        Ok(free)
    }

    /// Flips bit `bit` of the byte at `offset_per_mille` thousandths into
    /// one of node `i`'s RocksDB files: a table (`*.sst`) or a write-ahead
    /// log (`*.log`); `pick` chooses which, by index into them sorted by
    /// name. The node must be stopped. Returns what was flipped, or `None`
    /// when the node has no such file with data yet.
    pub fn flip_bit(
        &self,
        i: usize,
        pick: impl FnOnce(usize) -> usize,
        offset_per_mille: u64,
        bit: u8,
    ) -> anyhow::Result<Option<String>> {
        use std::io::{Read, Seek, SeekFrom, Write};
        let node = &self.nodes[i];
        assert!(
            node.child.is_none(),
            "bit flips go into a stopped node's files"
        );
        let db = node.data_dir().join("db");
        let mut tables: Vec<PathBuf> = std::fs::read_dir(&db)
            .with_context(|| format!("list {}", db.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "sst" || x == "log"))
            .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
            .collect();
        if tables.is_empty() {
            return Ok(None);
        }
        tables.sort();
        let path = &tables[pick(tables.len())];
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .with_context(|| format!("open {}", path.display()))?;
        let len = file.metadata()?.len();
        let offset = len * offset_per_mille.min(999) / 1000;
        let mut byte = [0u8; 1];
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(&mut byte)?;
        byte[0] ^= 1 << (bit % 8);
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(&byte)?;
        file.sync_all()?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        Ok(Some(format!(
            "bit {} of byte {offset} of {name} ({len} bytes)",
            bit % 8
        )))
    }

    /// Records a bit flipped in node `i`'s files.
    pub fn taint(&mut self, i: usize, what: &str) {
        self.flipped.entry(i).or_default().push(what.to_string());
    }

    /// The bits flipped in node `i`'s files, if any.
    pub fn flipped(&self, i: usize) -> &[String] {
        self.flipped.get(&i).map_or(&[], Vec::as_slice)
    }

    /// Frees every filled disk.
    pub fn free_disks(&self) -> anyhow::Result<()> {
        for node in self.nodes.iter().filter(|n| n.own_disk) {
            match std::fs::remove_file(node.filler()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).context("remove a disk filler"),
            }
        }
        Ok(())
    }

    /// Restarts every node that exited on its own (a full disk may stop
    /// one), saying how it ended; returns them.
    pub fn restart_exited(&mut self) -> anyhow::Result<Vec<String>> {
        let mut exited = Vec::new();
        for i in 0..self.nodes.len() {
            let node = &mut self.nodes[i];
            let status = match node.child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => status,
                _ => continue,
            };
            node.child = None;
            exited.push(format!("n{} exited ({status})", node.id));
            self.start(i)?;
        }
        Ok(exited)
    }

    /// SIGTERM every node (after SIGCONT), waits, SIGKILLs stragglers.
    pub fn stop_all(&mut self) {
        let _ = self.resume_all();
        for node in &mut self.nodes {
            if let Some(pid) = node.pid() {
                let _ = signal(pid, libc::SIGTERM);
            }
        }
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let deadline = Instant::now() + STOP_TIMEOUT;
                loop {
                    match child.try_wait() {
                        Ok(Some(_)) => break,
                        Ok(None) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        _ => {
                            eprintln!("geowallet-jepsen: node {} did not stop: SIGKILL", node.id);
                            let _ = child.kill();
                            let _ = child.wait();
                            break;
                        }
                    }
                }
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = signal(child.id(), libc::SIGCONT);
                let _ = child.kill();
                let _ = child.wait();
            }
            if node.own_disk {
                // The loop device detaches with the unmount (autoclear).
                if let Err(e) = run_cmd("umount", &[&node.data_dir().to_string_lossy()]) {
                    eprintln!("geowallet-jepsen: teardown: {e:#}");
                }
                node.own_disk = false;
            }
        }
    }
}

/// Bytes of each node's own disk: room for a run's data, small enough to
/// fill at once.
const DISK_BYTES: u64 = 256 << 20;

/// Makes `node`'s data dir an ext4 file system on a loop device backed by
/// a sparse file in its dir.
fn mount_disk(node: &Node) -> anyhow::Result<()> {
    let image = node.dir.join("disk.img");
    let file = File::create(&image).with_context(|| format!("create {}", image.display()))?;
    file.set_len(DISK_BYTES)?;
    drop(file);
    let image_s = image.to_string_lossy();
    run_cmd("mkfs.ext4", &["-q", "-F", &image_s])?;
    let data = node.data_dir();
    std::fs::create_dir_all(&data)?;
    run_cmd("mount", &["-o", "loop", &image_s, &data.to_string_lossy()])?;
    Ok(())
}

fn free_bytes(path: &Path) -> anyhow::Result<u64> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
    // SAFETY: statvfs fills the struct we own from a NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        bail!(
            "statvfs {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(st.f_bavail * st.f_frsize)
}

fn run_cmd(program: &str, args: &[&str]) -> anyhow::Result<String> {
    crate::net::run(program, args)
}

fn signal(pid: u32, sig: libc::c_int) -> anyhow::Result<()> {
    // SAFETY: kill(2) with a pid of our own child, which is not reaped
    // yet, so the pid cannot have been reused.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    if rc != 0 {
        bail!(
            "signal {sig} to pid {pid}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}
