//! The node-to-node listener: mutual TLS with the cluster's CA, and only
//! the cluster's nodes may call it.

use std::time::Duration;

use geowallet_node::certs::Ca;
use geowallet_node::tls::{Tls, TlsConfig};
use geowallet_proto::raft::raft_service_client::RaftServiceClient;
use geowallet_proto::raft::{RaftBatch, RaftMessage};

use geowallet_node::roles::{Action, Role};

use crate::cluster::TestCluster;
use crate::ctl::ctl_at;

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

/// Sends an empty heartbeat batch: a member's certificate gets an empty
/// answer, so an error here can only be the transport or the access check.
async fn empty_batch(channel: tonic::transport::Channel) -> Result<(), tonic::Status> {
    let mut client = RaftServiceClient::new(channel);
    let call = client.append_batch(RaftBatch { messages: vec![] });
    match tokio::time::timeout(Duration::from_secs(5), call).await {
        Ok(r) => r.map(|reply| assert!(reply.into_inner().messages.is_empty())),
        Err(_) => Err(tonic::Status::deadline_exceeded("no answer within 5 s")),
    }
}

fn tls_of(dir: &std::path::Path, name: &str) -> std::sync::Arc<Tls> {
    Tls::load(&TlsConfig {
        ca: dir.join("ca.pem"),
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
        clients: Default::default(),
    })
    .unwrap()
}

// Proves the node-to-node listener refuses a plaintext caller, a caller
// with another cluster's certificate, a client certificate of this
// cluster and a node certificate for an id outside the cluster, while a
// member's certificate gets the same probe through; and the refused calls
// changed nothing. (The transport refusals are probed with a call a member
// gets answered, so they could not pass by the call failing for its own
// reasons.)
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
    empty_batch(plain).await.unwrap_err();

    // Another cluster's CA, even for a node id of ours: the handshake fails.
    let other = tempfile::tempdir().unwrap();
    let other_ca = Ca::open_or_create(other.path(), "other cluster").unwrap();
    other_ca
        .issue_node(other.path(), 2, &["127.0.0.1".to_string()])
        .unwrap();
    let channel = tls_of(other.path(), "node-2")
        .dial(&raft_addr, "node-1")
        .unwrap();
    let err = empty_batch(channel).await.unwrap_err();
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
    empty_batch(channel).await.unwrap();

    // The server's name is checked too: node 1 cannot pose as node 3.
    let channel = tls_of(&ours, "node-2").dial(&raft_addr, "node-3").unwrap();
    empty_batch(channel).await.unwrap_err();

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

/// The ctl arguments of each verb the role table covers (`place` has no
/// verb of its own: `open` places).
fn verb_args(action: Action) -> Option<Vec<&'static str>> {
    let w = ["--player", "1", "--currency", "EUR"];
    let tx = ["--tx", "perm-test"];
    let args: Vec<&str> = match action {
        Action::Open => [&["open"][..], &w, &tx].concat(),
        Action::Deposit => [&["credit"][..], &w, &tx, &["--amount", "5"]].concat(),
        Action::Win => [
            &["credit"][..],
            &w,
            &tx,
            &["--amount", "5", "--kind", "win"],
        ]
        .concat(),
        Action::Withdraw => [
            &["debit"][..],
            &w,
            &tx,
            &["--amount", "5", "--kind", "withdrawal"],
        ]
        .concat(),
        Action::Bet => [&["debit"][..], &w, &tx, &["--amount", "5"]].concat(),
        Action::Fee => [&["debit"][..], &w, &tx, &["--amount", "5", "--kind", "fee"]].concat(),
        Action::Transfer => [
            &["transfer"][..],
            &w,
            &tx,
            &["--to-player", "2", "--amount", "5"],
        ]
        .concat(),
        Action::Hold => [&["hold"][..], &w, &tx, &["--hold", "h1", "--amount", "5"]].concat(),
        Action::Capture => [
            &["capture"][..],
            &w,
            &tx,
            &["--hold", "h0", "--kind", "bet"],
        ]
        .concat(),
        Action::Release => [&["release"][..], &w, &tx, &["--hold", "h0"]].concat(),
        Action::Freeze => [&["freeze"][..], &w, &tx].concat(),
        Action::Unfreeze => [&["unfreeze"][..], &w, &tx].concat(),
        Action::Balance => [&["balance"][..], &w].concat(),
        Action::Journal => [&["journal"][..], &w].concat(),
        Action::Events => vec!["events", "--group", "1", "--until", "1"],
        Action::Audit => vec!["audit", "--players", "1,2", "--currency", "EUR"],
        Action::Status => vec!["status"],
        Action::Placement => vec!["placement", "--player", "1"],
        Action::Migrate => vec!["migrate", "--player", "1", "--region", "local"],
        Action::TransferLeader => vec!["transfer-leader", "--node", "2"],
        Action::Backup => {
            let to = std::env::temp_dir().join("geowallet-refused-backup");
            vec!["backup", "--to", String::leak(to.display().to_string())]
        }
        Action::Place => return None,
    };
    Some(args)
}

// Proves the client API over mutual TLS refuses each role every verb it
// may not call (exit 1, one stderr line with `permission denied`), and the
// refused calls changed nothing; a caller without a client certificate, or
// with another cluster's, gets no answer at all; root may call everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_is_refused_what_it_may_not_call() {
    let tc = TestCluster::start(100_000).await;
    let client = tc.client();
    let (alice, bob) = (
        geowallet_client::Account::new(1, "EUR"),
        geowallet_client::Account::new(2, "EUR"),
    );
    for (a, tx) in [(&alice, "open-1"), (&bob, "open-2")] {
        client
            .open(&geowallet_client::Tx::new(tx), a)
            .await
            .unwrap();
    }
    client
        .credit(
            &geowallet_client::Tx::new("dep-1"),
            &alice,
            100,
            geowallet_client::CreditKind::Deposit,
        )
        .await
        .unwrap();
    let before = client.balance(&alice).await.unwrap();
    let eps = tc.cluster.endpoints().join(",");
    let tls = tc.cluster.dir.join("tls");
    let mut refused = 0;
    for role in Role::ALL {
        for action in Action::ALL.into_iter().filter(|a| !role.may(*a)) {
            let Some(args) = verb_args(action) else {
                continue;
            };
            let (code, out, err) = ctl_at(
                &eps,
                Some(&tls),
                &[&["--role", role.name()][..], &args].concat(),
            );
            assert_eq!(code, 1, "{} {}: {out}{err}", role.name(), action.name());
            assert!(
                err.contains("permission denied") && err.trim().lines().count() == 1,
                "{} {}: {err}",
                role.name(),
                action.name()
            );
            refused += 1;
        }
    }
    assert_eq!(refused, 52, "refusals checked (the role table changed?)");
    // The kind of money decides too: a game server captures a bet's hold,
    // never a withdrawal's; a payment service does not pay wins.
    for (role, args) in [
        (
            "game",
            vec!["capture", "--hold", "h0", "--kind", "withdrawal"],
        ),
        ("game", vec!["credit", "--amount", "5", "--kind", "deposit"]),
        (
            "payments",
            vec!["credit", "--amount", "5", "--kind", "bonus"],
        ),
        ("payments", vec!["capture", "--hold", "h0", "--kind", "bet"]),
    ] {
        let w = ["--player", "1", "--currency", "EUR", "--tx", "perm-kind"];
        let (code, out, err) = ctl_at(
            &eps,
            Some(&tls),
            &[&["--role", role][..], &args, &w].concat(),
        );
        assert_eq!(code, 1, "{role} {args:?}: {out}{err}");
        assert!(err.contains("permission denied"), "{role} {args:?}: {err}");
    }
    assert_eq!(client.balance(&alice).await.unwrap(), before);
    let journal = client
        .journal(&alice, geowallet_client::JournalCursor::Seq(0), 100)
        .await
        .unwrap();
    assert_eq!(journal.entries.len(), 2, "open and deposit only");

    // What a role may do, it does: a game bets, an auditor reads.
    let (code, _, err) = ctl_at(
        &eps,
        Some(&tls),
        &[
            "--role",
            "game",
            "debit",
            "--player",
            "1",
            "--currency",
            "EUR",
            "--tx",
            "bet-1",
            "--amount",
            "7",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = ctl_at(
        &eps,
        Some(&tls),
        &[
            "--role",
            "auditor",
            "--json",
            "balance",
            "--player",
            "1",
            "--currency",
            "EUR",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"available\":93"), "{out}");

    // No client certificate (plaintext), or another cluster's: no answer.
    let (code, _, err) = ctl_at(&eps, None, &["status"]);
    assert_ne!(code, 0, "{err}");
    let other = tempfile::tempdir().unwrap();
    let ca = Ca::open_or_create(other.path(), "other cluster").unwrap();
    ca.issue_client(other.path(), "root").unwrap();
    let (code, _, err) = ctl_at(&eps, Some(other.path()), &["status"]);
    assert_ne!(code, 0, "{err}");
    let log = std::fs::read_to_string(tc.cluster.node(1).log_path()).unwrap()
        + &std::fs::read_to_string(tc.cluster.node(2).log_path()).unwrap()
        + &std::fs::read_to_string(tc.cluster.node(3).log_path()).unwrap();
    assert!(
        log.contains("permission denied: client \"game\" (role game) may not"),
        "{}",
        tc.logs()
    );
}

/// The certificate `addr` presents to a new TLS connection (as `root`).
async fn served_cert(addr: &str, dir: &std::path::Path) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(dir.join("ca.pem")).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let chain: Vec<CertificateDer> = CertificateDer::pem_file_iter(dir.join("root.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("root.key")).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

// Proves a node serves a reissued certificate to new connections without a
// restart, while writes keep flowing through it: every write of the load
// is acknowledged and the balance is exactly their sum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_served_without_a_restart_and_no_write_is_lost() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let tc = TestCluster::start(100_000).await;
    let client = tc.client();
    let account = geowallet_client::Account::new(3, "EUR");
    client
        .open(&geowallet_client::Tx::new("rot-open"), &account)
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (client, account, stop) = (client.clone(), account.clone(), stop.clone());
        tokio::spawn(async move {
            let mut acked = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let tx = geowallet_client::Tx::new(format!("rot-{acked}"));
                let kind = geowallet_client::CreditKind::Deposit;
                client.credit(&tx, &account, 1, kind).await.unwrap();
                acked += 1;
            }
            acked
        })
    };
    let dir = tc.cluster.dir.join("tls");
    let endpoint = tc.cluster.node(1).endpoint.clone();
    let before = served_cert(&endpoint, &dir).await;
    let hosts = ["127.0.0.1".to_string(), "localhost".to_string()];
    Ca::open_or_create(&dir, "unused")
        .unwrap()
        .issue_node(&dir, 1, &hosts)
        .unwrap();
    let reissued = std::fs::read_to_string(dir.join("node-1.pem")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let served = loop {
        let now = served_cert(&endpoint, &dir).await;
        if now != before || std::time::Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_ne!(served, before, "node 1 still serves its old certificate");
    let want: Vec<u8> = {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(reissued.as_bytes())
            .unwrap()
            .to_vec()
    };
    assert_eq!(served, want, "node 1 serves the reissued certificate");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let acked = load.await.unwrap();
    assert!(acked > 0);
    let balance = client.balance(&account).await.unwrap();
    assert_eq!(balance.available, acked, "every acknowledged credit, once");
    let log = std::fs::read_to_string(tc.cluster.node(1).log_path()).unwrap();
    assert!(
        log.contains("reloaded TLS certificate and key"),
        "{}",
        tc.logs()
    );
}
