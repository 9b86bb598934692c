//! Deterministic simulation of whole geowallet clusters under madsim: the
//! real Raft, ledger and gRPC code on simulated nodes, network and clock,
//! with storage on `MemEngine` so crashes can lose unsynced writes. Every
//! run is a function of its seed; a failure prints the seed that replays it.
//!
//! Built only with `--cfg madsim` (own target dir; RocksDB stays out).

#![cfg(madsim)]

mod cluster;
mod scenario;

pub use cluster::{GROUP, SimCluster};
pub use scenario::{Fault, ScenarioReport, run_scenario};
