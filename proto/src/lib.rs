//! geowallet's wire contract: the `.proto` files under `proto/` and the
//! tonic/prost code generated from them. Owns the client API (`v1`) and the
//! node-to-node Raft transport (`raft`). Depends on nothing of geowallet; every
//! other crate may depend on it.

/// Client API (`geowallet.v1`).
pub mod v1 {
    tonic::include_proto!("geowallet.v1");
}

/// Node-to-node Raft RPCs (`geowallet.raft.v1`).
pub mod raft {
    tonic::include_proto!("geowallet.raft.v1");
}

/// The encoded `FileDescriptorSet` of both `.proto` files: what the gRPC
/// reflection service answers, so a client without the `.proto` files can
/// list and call the API.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/geowallet_descriptor.bin"));
