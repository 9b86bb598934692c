//! Integration tests: three real `geowallet node` processes on loopback,
//! real RocksDB, real gRPC, driven through the client library.

mod backup;
mod bounded;
mod clock;
mod cluster;
mod commands;
mod corruption;
mod cross_transfer;
mod ctl;
mod dual_dc;
mod events;
mod failover;
mod geo;
mod groups;
mod migrate;
mod observability;
mod payout;
mod placement;
mod runtime_groups;
mod tls;
mod wiped;
