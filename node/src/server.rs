use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use geowallet_proto::raft::move_service_server::MoveServiceServer;
use geowallet_proto::raft::raft_service_server::RaftServiceServer;
use geowallet_proto::v1::wallet_server::WalletServer;
use geowallet_raft::{ClockQuorum, Dial, MessageLimits, NodeInfo, WallClock};
use geowallet_storage::{Db, GroupId};
use openraft::{Config, SnapshotPolicy};

use crate::config::{GroupConfig, NodeConfig};
use crate::directory;
use crate::dual_dc::DualDcPolicy;
use crate::group_host::{GroupHost, GroupSpec, HostConfig};
use crate::metrics::{self, ApiLayer};
use crate::mover::MoveStepService;
use crate::roles::Access;
use crate::status;
use crate::tls::{self, Tls, TlsConfig};
use crate::wallet_service::WalletService;
use geowallet_raft::directory::GroupEntry;
use tonic::service::interceptor::InterceptedService;

/// The client API's gRPC service name (health checks and reflection).
pub const WALLET_SERVICE: &str = "geowallet.v1.Wallet";

/// Bytes of a client API gRPC message at most.
const MESSAGE_BYTES_MAX: usize = 64 << 20;

fn raft_config(c: &NodeConfig) -> anyhow::Result<Config> {
    let t = &c.raft;
    let config = Config {
        cluster_name: "geowallet".into(),
        heartbeat_interval: t.heartbeat_interval_ms,
        election_timeout_min: t.election_timeout_ms_min,
        election_timeout_max: t.election_timeout_ms_max,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(t.snapshot_logs_since_last),
        max_in_snapshot_log_to_keep: t.logs_kept_after_snapshot,
        ..geowallet_raft::base_config()
    };
    config
        .validate()
        .context("raft settings in the config are not consistent")
}

/// Runs one node until SIGINT/SIGTERM: hosts every group of the topology
/// this node is a replica of.
pub async fn run(config: NodeConfig) -> anyhow::Result<()> {
    let db_dir = config.db_dir();
    std::fs::create_dir_all(&db_dir)
        .with_context(|| format!("create data dir {}", db_dir.display()))?;
    let db =
        Db::open(&db_dir).with_context(|| format!("open the database in {}", db_dir.display()))?;
    let groups: Vec<GroupConfig> = config
        .groups()
        .into_iter()
        .filter(|g| g.replicas.contains(&config.node_id))
        .collect();
    // Every group this node hosts, the directory included.
    let mut hosted: Vec<GroupId> = groups.iter().map(|g| GroupId(g.id)).collect();
    if config
        .directory_replicas()
        .is_some_and(|r| r.contains(&config.node_id))
    {
        hosted.push(GroupId::DIRECTORY);
    }
    refuse_if_wiped(&config, &db, &hosted).await?;
    let tls = config.tls.as_ref().map(Tls::load).transpose()?;
    if let Some(tls) = &tls {
        tokio::spawn(tls.clone().watch());
    }
    let limits = MessageLimits::new(config.raft.message_bytes_max);
    // Checkpoints of backups a previous run did not finish streaming.
    let snapshot_root = config.data_dir.join("snapshots");
    let scratch = snapshot_root.join(crate::group_host::BACKUP_SCRATCH);
    if let Err(e) = std::fs::remove_dir_all(&scratch)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        anyhow::bail!("remove unfinished backups at {}: {e}", scratch.display());
    }
    let clocks = ClockQuorum::new(
        config.node_id,
        WallClock::default(),
        Duration::from_millis(config.raft.clock_tolerance_ms),
    );
    let mut topology: std::collections::BTreeMap<GroupId, Vec<u64>> = config
        .groups()
        .into_iter()
        .map(|g| (GroupId(g.id), g.replicas))
        .collect();
    let directory = config.directory_replicas();
    if let Some(replicas) = &directory {
        topology.insert(GroupId::DIRECTORY, replicas.clone());
    }
    let nodes = config.node_infos();
    let engine = db.engine().clone();
    let host = GroupHost::new(
        HostConfig {
            node_id: config.node_id,
            nodes: nodes.clone(),
            topology,
            home_regions: config
                .groups()
                .into_iter()
                .map(|g| (GroupId(g.id), g.home_region))
                .collect(),
            move_policy: config.moves.policy(),
            raft: Arc::new(raft_config(&config)?),
            limits,
            clocks: clocks.clone(),
            snapshot_root: snapshot_root.clone(),
            dual_dc_wait: Duration::from_millis(config.raft.dual_dc_wait_ms),
            dc_down_after: Duration::from_millis(config.raft.election_timeout_ms_min),
            placement_interval: Duration::from_millis(config.raft.election_timeout_ms_min / 2),
            placement_stable_for: Duration::from_millis(config.raft.election_timeout_ms_max),
            placement_transfer_gap: Duration::from_millis(5 * config.raft.election_timeout_ms_max),
            dial: Some(dialer(&config, tls.clone())),
        },
        db,
    );
    let metrics = host.metrics().clone();
    engine.observe_syncs(Box::new(move |took, appends| {
        metrics.wal_sync(took, appends)
    }));
    if let Some(replicas) = directory.filter(|r| r.contains(&config.node_id)) {
        // The directory's home: the region of its lowest-id replica.
        let home = replicas
            .iter()
            .min()
            .and_then(|r| nodes.get(r))
            .map(|n| n.region.clone())
            .unwrap_or_default();
        let dir = host
            .add_group(GroupSpec {
                id: GroupId::DIRECTORY,
                home_region: home,
                replicas,
                initializer: None,
                dual_dc: DualDcPolicy::Available,
            })
            .await?;
        let groups = config
            .groups()
            .into_iter()
            .map(|g| GroupEntry {
                id: g.id,
                home_region: g.home_region,
            })
            .collect();
        tokio::spawn(directory::bootstrap(
            dir.raft.clone(),
            dir.store.clone(),
            groups,
        ));
    }
    for g in &groups {
        host.add_group(GroupSpec {
            id: GroupId(g.id),
            home_region: g.home_region.clone(),
            replicas: g.replicas.clone(),
            initializer: None,
            dual_dc: g.dual_dc,
        })
        .await?;
    }

    let node_client_tls = config.tls.as_ref().map(TlsConfig::client_tls).transpose()?;
    let access = Access {
        clients: Arc::new(
            config
                .tls
                .as_ref()
                .map(|t| t.clients.clone())
                .unwrap_or_default(),
        ),
    };
    let wallet = WalletService::new(host.clone(), node_client_tls, access)
        .context("connect to the directory")?;
    let raft_server = RaftServiceServer::new(host.raft_service())
        .max_decoding_message_size(limits.message_bytes_max());
    let move_server = MoveServiceServer::new(MoveStepService {
        host: host.clone(),
        auto_moves: wallet.auto_moves.clone(),
    })
    .max_decoding_message_size(limits.message_bytes_max());
    let members: Arc<BTreeSet<u64>> = Arc::new(config.peers.iter().map(|p| p.id).collect());
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<WalletServer<WalletService<geowallet_storage::DefaultEngine>>>()
        .await;
    // Reflection in both versions (v1, and v1alpha that older tools ask),
    // listing only what this listener serves.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(geowallet_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name(WALLET_SERVICE)
            .with_service_name("grpc.health.v1.Health")
    };
    let reflection_v1 = reflection()
        .build_v1()
        .context("build the gRPC reflection service")?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .context("build the gRPC reflection service")?;
    let client_api = tonic::transport::Server::builder()
        .layer(ApiLayer {
            metrics: host.metrics().clone(),
            node_id: config.node_id,
        })
        .add_service(WalletServer::new(wallet).max_decoding_message_size(MESSAGE_BYTES_MAX))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let client_listener = bind(config.listen).await?;
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let node_listener = match config.raft_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    tracing::info!(
        node = config.node_id,
        addr = %config.listen,
        raft_addr = ?config.raft_listen,
        tls = tls.is_some(),
        groups = groups.len(),
        "serving"
    );
    let mut servers = tokio::task::JoinSet::new();
    if let Some(addr) = config.metrics_listen {
        let listener = bind(addr).await?;
        let host = host.clone();
        let render = Arc::new(move || host.metrics().render(&status::status(&host).groups));
        tokio::spawn(metrics::serve(listener, render));
    }
    match node_listener {
        Some(listener) => {
            let node_api = tonic::transport::Server::builder()
                .add_service(InterceptedService::new(
                    raft_server,
                    tls::members_only(members.clone()),
                ))
                .add_service(InterceptedService::new(
                    move_server,
                    tls::members_only(members),
                ));
            let incoming = tls::incoming(listener, tls.clone(), "node-to-node");
            servers.spawn(
                node_api.serve_with_incoming_shutdown(incoming, stopped(shutdown_rx.clone())),
            );
            let incoming = tls::incoming(client_listener, tls.clone(), "client");
            servers.spawn(client_api.serve_with_incoming_shutdown(incoming, stopped(shutdown_rx)));
        }
        None => {
            // Plaintext only (validated): one listener serves both.
            let incoming = tls::incoming(client_listener, None, "client");
            servers.spawn(
                client_api
                    .add_service(raft_server)
                    .add_service(move_server)
                    .serve_with_incoming_shutdown(incoming, stopped(shutdown_rx)),
            );
        }
    }
    let server = async {
        tokio::select! {
            () = shutdown_signal() => {}
            Some(ended) = servers.join_next() => {
                ended.context("grpc server task")?.context("grpc server failed")?;
            }
        }
        health
            .set_not_serving::<WalletServer<WalletService<geowallet_storage::DefaultEngine>>>()
            .await;
        let _ = shutdown_tx.send(true);
        while let Some(ended) = servers.join_next().await {
            ended
                .context("grpc server task")?
                .context("grpc server failed")?;
        }
        anyhow::Ok(())
    };
    server.await?;
    tracing::info!("shutting down");
    host.shutdown(Duration::from_secs(5)).await;
    Ok(())
}

/// Dials peers' node-to-node listeners: mutual TLS, checking the peer is
/// the node it should be, when the node has `[tls]`.
fn dialer(config: &NodeConfig, tls: Option<Arc<Tls>>) -> Dial {
    let addrs: BTreeMap<u64, String> = config
        .peers
        .iter()
        .filter_map(|p| Some((p.id, config.raft_endpoint_of(p.id)?)))
        .collect();
    Arc::new(move |id: u64, node: &NodeInfo| {
        let addr = addrs.get(&id).cloned().unwrap_or_else(|| node.addr.clone());
        match &tls {
            Some(tls) => tls.dial(&addr, &tls::node_name(id)),
            None => geowallet_raft::plain_dial(
                id,
                &NodeInfo {
                    addr,
                    ..node.clone()
                },
            ),
        }
    })
}

async fn bind(addr: std::net::SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listen on {addr}"))
}

/// How long a node with an empty store waits for each peer's status.
const WIPED_CHECK_RPC_TIMEOUT: Duration = Duration::from_millis(500);

/// Refuses to start a node whose store is empty (no vote, no log) while
/// the group's leader has seen it acknowledge entries (a matched index for
/// its id): its vote and log were lost (wiped or replaced disk), and
/// starting under the same id could let it vote twice in one term. Asks
/// every peer once: a new cluster passes (no leader has seen it yet, or no
/// peer runs yet), so starting a cluster is not delayed.
async fn refuse_if_wiped(config: &NodeConfig, db: &Db, hosted: &[GroupId]) -> anyhow::Result<()> {
    for g in hosted {
        let log = db.log_store(*g);
        let empty = log.read_vote().context("read the stored vote")?.is_none()
            && log.last().context("read the log")?.is_none();
        if !empty {
            return Ok(());
        }
    }
    let endpoints: Vec<String> = config
        .peers
        .iter()
        .filter(|p| p.id != config.node_id)
        .map(|p| p.endpoint.clone())
        .collect();
    let client_config = geowallet_client::ClientConfig {
        rpc_timeout: WIPED_CHECK_RPC_TIMEOUT,
        tls: config.tls.as_ref().map(TlsConfig::client_tls).transpose()?,
        ..Default::default()
    };
    let client = geowallet_client::Client::connect(endpoints.clone(), client_config)
        .context("connect to the peers to check membership")?;
    for endpoint in &endpoints {
        let Ok(s) = client.status_of(endpoint).await else {
            continue;
        };
        for g in &s.groups {
            let seen = g.replicas.iter().find(|m| m.id == config.node_id);
            if let Some(m) = seen.filter(|m| m.matched_index > 0) {
                anyhow::bail!(
                    "refusing to start: this node's store is empty, but the leader of group \
                     {} (node {} at {endpoint}, term {}) has seen node {} acknowledge the log \
                     up to index {}, so its vote and log were lost; starting under the same \
                     id could vote twice in one term. Restore its data dir, or add it under a \
                     new node_id once the old one is removed from the group",
                    g.id,
                    s.node_id,
                    g.term,
                    config.node_id,
                    m.matched_index
                );
            }
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
