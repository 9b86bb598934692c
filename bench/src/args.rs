//! The command line: every flag of `geowallet-bench` (documented in
//! `bench/README.md`).

use std::path::PathBuf;

use clap::Parser;

use crate::key_picker::Dist;
use crate::workload::Workload;

/// Fewest wallets a run accepts: every currency needs two wallets, so a
/// transfer always has a distinct partner of the same currency.
pub const WALLETS_MIN: u64 = 2 * crate::wallet_set::CURRENCIES.len() as u64;

/// Measure a geowallet cluster: preload wallets, run one workload, audit the
/// books, print one RESULT line.
#[derive(Debug, Clone, Parser)]
#[command(name = "geowallet-bench", version, about)]
pub struct Args {
    /// What each operation does.
    #[arg(long, value_enum, default_value_t = Workload::Wallet)]
    pub workload: Workload,
    /// Concurrent clients, each with one operation in flight (closed loop).
    /// With --rate it is only reported.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub clients: u64,
    /// Length of the measured run, in seconds.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub duration_s: u64,
    /// Wallets opened and funded before the run (half EUR, half USD).
    #[arg(
        long,
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(WALLETS_MIN..)
    )]
    pub wallets: u64,
    /// Key choice: uniform, or hot (80% of ops on the first 1% of wallets).
    #[arg(long, value_enum, default_value_t = Dist::Uniform)]
    pub dist: Dist,
    /// Open loop: start operations at this fixed rate (per second) instead of
    /// one per client at a time; latency counts from each intended start.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: Option<u64>,
    /// Distinct transaction records to write before the measured run (small
    /// credits and debits spread over the wallets).
    #[arg(long, default_value_t = 0)]
    pub preload_tx: u64,
    /// The cluster the bench starts: `single` (one group of three nodes,
    /// `geowallet dev`), `geo` (five nodes in two regions and a tiebreaker,
    /// four shard groups and the directory, `geowallet dev --topology
    /// geo`; wallets spread over every group), or `both`, one after the
    /// other with the same flags, and a line comparing them.
    #[arg(long, value_enum, default_value_t = TopologyArg::Single, conflicts_with = "endpoints")]
    pub topology: TopologyArg,
    /// Use a running cluster (host:port,...) instead of starting one.
    #[arg(long, value_delimiter = ',')]
    pub endpoints: Vec<String>,
    /// With --endpoints: the cluster's CA and `root` client certificate
    /// (`geowallet dev` writes them to DIR/tls); without it, plaintext.
    #[arg(long, requires = "endpoints")]
    pub tls_dir: Option<PathBuf>,
    /// With --endpoints: the cluster's cluster.json, for node RSS and CPU.
    #[arg(long, requires = "endpoints")]
    pub cluster_json: Option<PathBuf>,
    /// The geowallet binary (default: next to this executable).
    #[arg(long)]
    pub geowallet: Option<PathBuf>,
    /// Where to write the SVG latency plot (default: RUN_DIR/bench-<workload>-<clients>.svg;
    /// with `--topology both`, under RUN_DIR/single and RUN_DIR/geo).
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Run directory: the cluster's data and logs, and the SVG (default: a new temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the nodes' data dirs after the run (deleted by default; logs are kept).
    #[arg(long)]
    pub keep_data: bool,
    /// Seed of the key and amount choices (default: from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// `--topology`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TopologyArg {
    Single,
    Geo,
    Both,
}

/// The shape of one cluster the bench runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    Single,
    Geo,
    /// A running cluster given by `--endpoints`.
    External,
}

impl Topology {
    /// As the RESULT line and `geowallet dev --topology` name it.
    pub fn name(self) -> &'static str {
        match self {
            Topology::Single => "single",
            Topology::Geo => "geo",
            Topology::External => "external",
        }
    }
}

impl TopologyArg {
    /// The clusters to run against, in order.
    pub fn runs(self) -> Vec<Topology> {
        match self {
            TopologyArg::Single => vec![Topology::Single],
            TopologyArg::Geo => vec![Topology::Geo],
            TopologyArg::Both => vec![Topology::Single, Topology::Geo],
        }
    }
}

/// Closed or open loop, as the RESULT line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Closed,
    Open,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Closed => "closed",
            Mode::Open => "open",
        }
    }
}

impl Args {
    pub fn mode(&self) -> Mode {
        if self.rate.is_some() {
            Mode::Open
        } else {
            Mode::Closed
        }
    }
}
