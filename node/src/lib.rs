//! The geowallet server and its tools: the node (client API service,
//! leader-side batching proposer, Raft wiring), `dev` (a local cluster of
//! real processes) and `ctl` (one command against a cluster); load
//! generation lives in `geowallet-bench`. Depends on every crate below it;
//! only the simulator (`sim`) depends on it, for the service and proposer it
//! runs under madsim.

#[cfg(all(feature = "rocksdb", not(madsim)))]
pub mod backup;
#[cfg(all(feature = "rocksdb", not(madsim)))]
pub mod certs;
#[cfg(all(feature = "rocksdb", not(madsim)))]
pub mod config;
#[cfg(all(feature = "rocksdb", not(madsim)))]
pub mod ctl;
#[cfg(all(feature = "rocksdb", not(madsim)))]
pub mod demo;
pub mod directory;
pub mod dual_dc;
#[cfg(all(feature = "rocksdb", not(madsim)))]
pub mod geo_demo;
pub mod group_host;
#[cfg(all(feature = "rocksdb", not(madsim)))]
pub mod journal_export;
#[cfg(all(feature = "rocksdb", not(madsim)))]
pub mod local_cluster;
pub mod metrics;
pub mod move_policy;
pub mod mover;
pub mod placement;
pub mod proposer;
pub mod roles;
#[cfg(all(feature = "rocksdb", not(madsim)))]
pub mod server;
pub mod status;
#[cfg(not(madsim))]
pub mod tls;
pub mod wallet_service;
pub mod wire;
