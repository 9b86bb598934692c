use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use geowallet_ledger::LedgerConfig;
use geowallet_proto::raft::raft_service_server::RaftServiceServer;
use geowallet_proto::v1::wallet_server::WalletServer;
use geowallet_raft::{
    ClockQuorum, GroupRegistry, LedgerStateMachine, LogAdapter, MessageLimits, NetworkFactory,
    RaftRpcService, WallClock,
};
use geowallet_storage::{Db, GroupId};
use openraft::{BasicNode, Config, SnapshotPolicy};

use crate::config::NodeConfig;
use crate::proposer::Proposer;
use crate::wallet_service::WalletService;

/// The one group this slice runs; multi-group placement comes later.
pub const GROUP: GroupId = GroupId(1);
/// How often the leader proposes an empty entry, so hold expiry advances
/// with leader time even when no client writes.
const TICK_INTERVAL: Duration = Duration::from_secs(1);
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

/// Runs one node until SIGINT/SIGTERM.
pub async fn run(config: NodeConfig) -> anyhow::Result<()> {
    let db_dir = config.data_dir.join("db");
    std::fs::create_dir_all(&db_dir)
        .with_context(|| format!("create data dir {}", db_dir.display()))?;
    let db =
        Db::open(&db_dir).with_context(|| format!("open the database in {}", db_dir.display()))?;
    let snapshot_dir = config.data_dir.join("snapshots").join(GROUP.to_string());
    let sm = LedgerStateMachine::open(
        db.state_store(GROUP),
        snapshot_dir.clone(),
        LedgerConfig::default(),
    )
    .context("open the ledger state")?;
    let store = sm.store().clone();
    refuse_if_wiped(&config, &db).await?;
    let log = LogAdapter::new(db.log_store(GROUP));
    let limits = MessageLimits::new(config.raft.message_bytes_max);
    let clocks = ClockQuorum::new(
        config.node_id,
        WallClock::default(),
        Duration::from_millis(config.raft.clock_tolerance_ms),
    );
    let raft = openraft::Raft::new(
        config.node_id,
        Arc::new(raft_config(&config)?),
        NetworkFactory::new(GROUP, limits, clocks.clone()),
        log,
        sm,
    )
    .await
    .context("start raft (a damaged log is reported here)")?;
    let registry = Arc::new(GroupRegistry::default());
    registry.insert(GROUP, raft.clone(), snapshot_dir);
    let proposer = Proposer::start(raft.clone(), limits, clocks.clone());
    let peers = config.peer_map();
    let wallet = WalletService {
        node_id: config.node_id,
        raft: raft.clone(),
        proposer: proposer.clone(),
        store,
        peers: peers.clone(),
    };

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listen on {}", config.listen))?;
    tracing::info!(node = config.node_id, addr = %config.listen, "serving");
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = tonic::transport::Server::builder()
        .add_service(
            RaftServiceServer::new(RaftRpcService::new(registry, clocks.clock().clone()))
                .max_decoding_message_size(limits.message_bytes_max()),
        )
        .add_service(WalletServer::new(wallet).max_decoding_message_size(MESSAGE_BYTES_MAX))
        .serve_with_incoming_shutdown(incoming, shutdown_signal());

    tokio::spawn(initialize_if_first(raft.clone(), config.node_id, peers));
    tokio::spawn(tick(raft.clone(), proposer));
    server.await.context("grpc server failed")?;
    tracing::info!("shutting down");
    let _ = tokio::time::timeout(Duration::from_secs(5), raft.shutdown()).await;
    Ok(())
}

/// The lowest-id peer initializes a pristine cluster; everyone else waits to
/// be contacted. Initializing an initialized node is refused and harmless.
/// How long a node with an empty store waits for each peer's status.
const WIPED_CHECK_RPC_TIMEOUT: Duration = Duration::from_millis(500);

/// Refuses to start a node whose store is empty (no vote, no log) while
/// the group's leader has seen it acknowledge entries (a matched index for
/// its id): its vote and log were lost (wiped or replaced disk), and
/// starting under the same id could let it vote twice in one term. Asks
/// every peer once: a new cluster passes (no leader has seen it yet, or no
/// peer runs yet), so starting a cluster is not delayed.
async fn refuse_if_wiped(config: &NodeConfig, db: &Db) -> anyhow::Result<()> {
    let log = db.log_store(GROUP);
    let empty = log.read_vote().context("read the stored vote")?.is_none()
        && log.last().context("read the log")?.is_none();
    if !empty {
        return Ok(());
    }
    let endpoints: Vec<String> = config
        .peers
        .iter()
        .filter(|p| p.id != config.node_id)
        .map(|p| p.endpoint.clone())
        .collect();
    let client_config = geowallet_client::ClientConfig {
        rpc_timeout: WIPED_CHECK_RPC_TIMEOUT,
        ..Default::default()
    };
    let client = geowallet_client::Client::connect(endpoints.clone(), client_config)
        .context("connect to the peers to check membership")?;
    for endpoint in &endpoints {
        let Ok(s) = client.status_of(endpoint).await else {
            continue;
        };
        let seen = s.members.iter().find(|m| m.0 == config.node_id);
        if let Some((_, _, matched)) = seen.filter(|m| m.2 > 0) {
            anyhow::bail!(
                "refusing to start: this node's store is empty, but the leader (node {} at \
                     {endpoint}, term {}) has seen node {} acknowledge the log up to index \
                     {matched}, so its vote and log were lost; starting under the same id \
                     could vote twice in one term. Restore its data dir, or add it under a \
                     new node_id once the old one is removed from the group",
                s.node_id,
                s.term,
                config.node_id
            );
        }
    }
    Ok(())
}

async fn initialize_if_first(
    raft: geowallet_raft::GroupRaft,
    node_id: u64,
    peers: BTreeMap<u64, String>,
) {
    if peers.keys().next() != Some(&node_id) {
        return;
    }
    match raft.is_initialized().await {
        Ok(true) => return,
        Ok(false) => {}
        Err(e) => {
            tracing::error!(error = %e, "cannot tell whether raft is initialized");
            return;
        }
    }
    let members: BTreeMap<u64, BasicNode> = peers
        .into_iter()
        .map(|(id, addr)| (id, BasicNode { addr }))
        .collect();
    match raft.initialize(members).await {
        Ok(()) => tracing::info!("initialized the cluster"),
        Err(e) => tracing::info!(error = %e, "cluster initialization skipped"),
    }
}

async fn tick(raft: geowallet_raft::GroupRaft, proposer: Proposer) {
    let mut interval = tokio::time::interval(TICK_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if raft.is_leader()
            && let Err(e) = proposer.propose(Vec::new()).await
        {
            tracing::debug!(error = %e, "tick proposal failed");
        }
    }
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
