//! geowallet's fuzz harnesses: one module per cargo-fuzz target, each with
//! `run` (what the target does with the fuzzer's bytes) and `seeds` (small
//! valid inputs, written to `corpus/<target>/` by `examples/seed_corpus.rs`).
//! The targets cover every decoder a peer or a client can reach — the client
//! API's requests and their conversion into ledger commands, the Raft
//! transport's payloads, wallet move steps, received snapshot files — and
//! apply. Storage, raft and node are built without RocksDB (MemEngine only).
//! Lives outside the main workspace: cargo-fuzz needs nightly.

pub mod apply;
pub mod client_api;
pub mod move_step;
pub mod raft_message;
pub mod roundtrip;
pub mod snapshot;
pub mod snapshot_frame;

/// Leader time of the seeds' entries (ns since the Unix epoch, late 2027).
pub const T0_NS: u64 = 1_820_000_000_000_000_000;
