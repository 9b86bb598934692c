//! The geowallet server and its tools: the node (client API service,
//! leader-side batching proposer, Raft wiring), `dev` (a local cluster of
//! real processes), `ctl` (one command against a cluster) and a simple load
//! loop. Depends on every crate below it; nothing depends on it.

pub mod config;
pub mod ctl;
pub mod demo;
pub mod load;
pub mod local_cluster;
pub mod proposer;
pub mod server;
pub mod status;
pub mod wallet_service;
pub mod wire;
