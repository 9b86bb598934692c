//! Deterministic simulation of whole geowallet clusters under madsim: the
//! production client API service, proposer, Raft, ledger and gRPC code on
//! simulated nodes, network and clock, driven by the testkit workload
//! through the real client library, with storage on `MemEngine` so crashes
//! can lose unsynced writes. Every
//! run is a function of its seed; a failure prints the seed that replays it.
//!
//! Built only with `--cfg madsim` (own target dir; RocksDB stays out).

#![cfg(madsim)]

mod cluster;
mod nemesis;
mod run_dir;
mod scenario;

pub use cluster::{GROUP, Place, Shape, SimCluster};
pub use nemesis::{Fault, Nemesis};
pub use scenario::{ScenarioFailure, ScenarioReport, run_scenario};
