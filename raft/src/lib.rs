//! geowallet's Raft layer on openraft: the type configuration, adapters from
//! openraft's v2 storage traits to `geowallet-storage` (log with group
//! commit; ledger state machine with checksummed, streamed snapshots), and
//! the tonic transport between nodes (append, vote, pre-vote, snapshot,
//! transfer-leader). Knows the ledger and storage; knows nothing of the
//! client API's semantics.

mod clock;
mod codec;
pub mod directory;
mod log_adapter;
mod message_limits;
mod network;
mod proposal;
mod restore;
mod service;
pub mod sim_runtime;
mod sim_watch;
mod state_machine;
mod types;

pub use clock::{CLOCK_TOLERANCE_DEFAULT, ClockQuorum, ClockVerdict, Probe, WallClock};
pub use codec::{decode, encode};
pub use log_adapter::LogAdapter;
pub use message_limits::{
    MESSAGE_BYTES_MAX_DEFAULT, MESSAGE_BYTES_MIN, MessageLimits, REQUEST_BYTES_MAX,
};
pub use network::{Dial, NetworkFactory, PeerChannels, plain_dial};
pub use proposal::{Applied, Proposal};
pub use restore::restore_group;
pub use service::{GroupRegistry, RaftRpcService};
pub use state_machine::{AppliedState, LedgerStateMachine, SnapshotHandle, blocking};
pub use types::{GroupRaft, NodeInfo, TypeConfig, base_config};
