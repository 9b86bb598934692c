//! The node-to-node listener: mutual TLS with the cluster's CA, and only
//! the cluster's nodes may call it.

use std::time::Duration;

use geowallet_node::certs::Ca;
use geowallet_node::tls::{Tls, TlsConfig};
use geowallet_proto::raft::raft_service_client::RaftServiceClient;
use geowallet_proto::raft::{RaftBatch, RaftMessage};

use crate::cluster::TestCluster;

/// Calls `Vote` with a term far ahead on `addr` through `channel`: what a
/// stranger would send to churn leaders.
async fn forged_vote(channel: tonic::transport::Channel) -> Result<(), tonic::Status> {
    let mut client = RaftServiceClient::new(channel);
    let call = client.vote(RaftMessage {
        group_id: 1,
        data: vec![0xff; 16],
        ..Default::default()
    });
    match tokio::time::timeout(Duration::from_secs(5), call).await {
        Ok(r) => r.map(|_| ()),
        Err(_) => Err(tonic::Status::deadline_exceeded("no answer within 5 s")),
    }
}

fn tls_of(dir: &std::path::Path, name: &str) -> std::sync::Arc<Tls> {
    Tls::load(&TlsConfig {
        ca: dir.join("ca.pem"),
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
    })
    .unwrap()
}

// Proves the node-to-node listener refuses a plaintext caller, a caller
// with another cluster's certificate, a client certificate of this
// cluster and a node certificate for an id outside the cluster, while a
// member's certificate gets through; and the refused calls changed nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_listener_serves_only_the_clusters_nodes() {
    let tc = TestCluster::start(100_000).await;
    let client = tc.client();
    let endpoint = tc.cluster.node(1).endpoint.clone();
    let term_before = client.status_of(&endpoint).await.unwrap().groups[0].term;
    let raft_addr = tc.cluster.node(1).raft_endpoint.clone();
    let ours = tc.cluster.dir.join("tls");

    // Plaintext: no TLS handshake, no call.
    let plain = tonic::transport::Endpoint::from_shared(format!("http://{raft_addr}"))
        .unwrap()
        .connect_lazy();
    let err = forged_vote(plain).await.unwrap_err();
    assert_ne!(err.code(), tonic::Code::Ok, "{err:?}");

    // Another cluster's CA, even for a node id of ours: the handshake fails.
    let other = tempfile::tempdir().unwrap();
    let other_ca = Ca::open_or_create(other.path(), "other cluster").unwrap();
    other_ca
        .issue_node(other.path(), 2, &["127.0.0.1".to_string()])
        .unwrap();
    let channel = tls_of(other.path(), "node-2")
        .dial(&raft_addr, "node-1")
        .unwrap();
    let err = forged_vote(channel).await.unwrap_err();
    assert_ne!(err.code(), tonic::Code::PermissionDenied, "{err:?}");

    // Our CA, but a client's certificate, or a node that is not a member.
    let ca = Ca::open_or_create(&ours, "unused").unwrap();
    ca.issue_node(&ours, 99, &["127.0.0.1".to_string()])
        .unwrap();
    for name in ["game", "root", "node-99"] {
        let channel = tls_of(&ours, name).dial(&raft_addr, "node-1").unwrap();
        let err = forged_vote(channel).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied, "{name}: {err:?}");
        assert!(err.message().contains("permission denied"), "{err:?}");
    }

    // A member's certificate passes (an empty batch changes nothing).
    let channel = tls_of(&ours, "node-2").dial(&raft_addr, "node-1").unwrap();
    let reply = RaftServiceClient::new(channel)
        .append_batch(RaftBatch { messages: vec![] })
        .await
        .unwrap();
    assert!(reply.into_inner().messages.is_empty());

    // The server's name is checked too: node 1 cannot pose as node 3.
    let channel = tls_of(&ours, "node-2").dial(&raft_addr, "node-3").unwrap();
    let err = forged_vote(channel).await.unwrap_err();
    assert_ne!(err.code(), tonic::Code::Ok, "{err:?}");

    let term_after = client.status_of(&endpoint).await.unwrap().groups[0].term;
    assert_eq!(term_before, term_after, "a refused vote moved the term");
    let log = std::fs::read_to_string(tc.cluster.node(1).log_path()).unwrap();
    assert!(
        log.contains("permission denied on the node-to-node listener"),
        "refusals are logged:\n{}",
        tc.logs()
    );
    assert!(log.contains("refused a TLS connection"), "{}", tc.logs());
}
