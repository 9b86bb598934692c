use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use geowallet_proto::v1 as pb;
use geowallet_proto::v1::wallet_client::WalletClient;
use pb::command::Op;
use tonic::transport::{Channel, Endpoint};

use crate::batcher::{BatchLimits, Batcher, CallError, call_error};
use crate::{
    Account, Audit, Balance, CreditKind, CurrencyTotals, DebitKind, Error, GroupStatus,
    JournalCursor, JournalEntry, JournalPage, Migration, MoveStats, NodeRef, Receipt, Replica,
    Status, Tx,
};

/// How the client talks to the cluster. Every bound is named.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Region requests come from, sent with every write.
    pub region: String,
    /// Shard group requests go to (0: each node's default group, the lowest
    /// id it hosts). Routing by player through the directory replaces this.
    pub group: u64,
    /// One RPC's deadline.
    pub rpc_timeout: Duration,
    /// Total time a command may spend in retries before it is reported
    /// `Indeterminate` (or `Unavailable` if it was never sent).
    pub retry_budget: Duration,
    /// Attempts per command at most.
    pub attempts_max: u32,
    /// Pause between attempts, doubled each time up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Commands coalesced into one RPC at most.
    pub commands_per_rpc_max: usize,
    /// RPCs in flight per node at most.
    pub rpcs_in_flight_max: usize,
    /// Mutual TLS with the cluster (its CA, this client's certificate and
    /// key); `None`: plaintext, for a cluster run with `insecure_plaintext`.
    pub tls: Option<ClientTls>,
}

/// A client's TLS material, PEM text.
#[derive(Clone)]
pub struct ClientTls {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientTls { .. }")
    }
}

impl ClientTls {
    /// `DIR/ca.pem`, `DIR/<name>.pem` and `DIR/<name>.key`, as `geowallet
    /// certs` and `geowallet dev` write them (`name`: a role, e.g. `root`).
    pub fn from_dir(dir: &std::path::Path, name: &str) -> Result<ClientTls, Error> {
        let read = |file: String| {
            let path = dir.join(&file);
            std::fs::read_to_string(&path).map_err(|e| Error::InvalidArgument {
                message: format!("read {}: {e}", path.display()),
            })
        };
        Ok(ClientTls {
            ca_pem: read("ca.pem".into())?,
            cert_pem: read(format!("{name}.pem"))?,
            key_pem: read(format!("{name}.key"))?,
        })
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            region: String::new(),
            group: 0,
            rpc_timeout: Duration::from_secs(3),
            retry_budget: Duration::from_secs(15),
            attempts_max: 60,
            backoff_min: Duration::from_millis(20),
            backoff_max: Duration::from_millis(250),
            commands_per_rpc_max: 1024,
            rpcs_in_flight_max: 2,
            tls: None,
        }
    }
}

struct Conn {
    client: WalletClient<Channel>,
    /// One batcher per shard group commands go to over this connection.
    batchers: Mutex<HashMap<u64, Batcher>>,
    limits: BatchLimits,
}

impl Conn {
    fn batcher(&self, group: u64) -> Batcher {
        let mut batchers = self.batchers.lock().unwrap_or_else(|p| p.into_inner());
        batchers
            .entry(group)
            .or_insert_with(|| {
                let limits = BatchLimits {
                    group,
                    ..self.limits.clone()
                };
                Batcher::start(self.client.clone(), limits)
            })
            .clone()
    }
}

/// How a command is routed: its group and the placement epoch it was
/// routed by (0 when routed without the directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Route {
    group: u64,
    epoch: u64,
}

/// The directory's group id (leader cache key of directory calls).
const DIRECTORY: u64 = 0x8000_0000_0000_0000;
/// Placements a client caches at most (dropped whole when full).
const PLACEMENTS_CACHED_MAX: usize = 1 << 20;

/// Refusal codes a node or the ledger answers before looking up the
/// command's tx record: after an attempt whose answer was lost they do not
/// tell whether that attempt applied.
const REFUSED_BEFORE_THE_RECORD: [&str; 6] = [
    "cross_group",
    "not_placed",
    "wrong_group",
    "moved",
    "moving",
    "transfer_pending",
];

/// Redirects (`wrong_group`) a command follows at most.
const WRONG_GROUP_HOPS_MAX: u32 = 3;

/// Why one routed audit did not finish.
enum AuditError {
    /// A group refused the accounts at these indexes: it does not hold one.
    WrongGroup(Vec<usize>),
    Other(Error),
}

struct Inner {
    seeds: Vec<String>,
    config: ClientConfig,
    /// Each group's leader as last learned (key 0: the default group).
    leaders: Mutex<HashMap<u64, String>>,
    conns: Mutex<HashMap<String, Arc<Conn>>>,
    /// Placements learned from the directory: player → route.
    placements: Mutex<HashMap<u64, Route>>,
    /// Set once a node answered that the cluster has no directory.
    no_directory: std::sync::atomic::AtomicBool,
    /// Jitter key of the next read (writes use their tx id).
    reads: AtomicU64,
}

/// A handle to a geowallet cluster; cheap to clone and share.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// The pause before retry `attempt + 1`: "full jitter", uniform in
/// `[0, min(max, min·2^attempt)]`, so clients that failed together (a
/// failover) do not retry in lockstep. Drawn from `key` (a hash of the tx
/// id) and the attempt, not from a random source: a simulator replay pauses
/// exactly as the run it replays.
fn backoff(min: Duration, max: Duration, key: u64, attempt: u32) -> Duration {
    let cap = min.saturating_mul(1u32 << attempt.min(10)).min(max);
    let draw = splitmix64(key ^ u64::from(attempt).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let cap_ns = cap.as_nanos().min(u64::MAX as u128) as u64;
    Duration::from_nanos(draw % cap_ns.saturating_add(1))
}

/// FNV-1a of a tx id: the retry jitter key of a write.
fn jitter_key(tx_id: &str) -> u64 {
    tx_id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// What one attempt teaches the retry loop.
enum Next<T> {
    Done(Result<T, Error>),
    Retry {
        maybe_applied: bool,
        error: String,
        /// The reply named a different node as leader.
        new_leader: bool,
    },
}

/// The pause before the next attempt: none when the last reply named a new
/// leader (waiting would only add to a failover), unless the attempt before
/// was already such a hop (two nodes naming each other must not spin).
fn pause_before_retry(backoff: Duration, new_leader: bool, hopped_last: bool) -> Duration {
    if new_leader && !hopped_last {
        Duration::ZERO
    } else {
        backoff
    }
}

impl Client {
    /// A client for the cluster reachable at `seeds` (`host:port` each).
    /// Connections are made lazily; nothing is sent here.
    pub fn connect<S: Into<String>>(
        seeds: impl IntoIterator<Item = S>,
        config: ClientConfig,
    ) -> Result<Client, Error> {
        let seeds: Vec<String> = seeds
            .into_iter()
            .map(Into::into)
            .filter(|s| !s.is_empty())
            .collect();
        if seeds.is_empty() {
            return Err(Error::InvalidArgument {
                message: "give at least one endpoint (host:port)".into(),
            });
        }
        for s in &seeds {
            Endpoint::from_shared(format!("http://{s}")).map_err(|e| Error::InvalidArgument {
                message: format!("bad endpoint {s}: {e}"),
            })?;
        }
        let inner = Inner {
            seeds,
            config,
            leaders: Mutex::new(HashMap::new()),
            conns: Mutex::new(HashMap::new()),
            placements: Mutex::new(HashMap::new()),
            no_directory: std::sync::atomic::AtomicBool::new(false),
            reads: AtomicU64::new(0),
        };
        Ok(Client {
            inner: Arc::new(inner),
        })
    }

    /// The connection to `endpoint`, made on first use. A malformed endpoint
    /// (say, a bad leader hint in a server's config) is an error, not a panic.
    /// The endpoints the client was made with.
    pub(crate) fn seed_endpoints(&self) -> Vec<String> {
        self.inner.seeds.clone()
    }

    pub(crate) fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// A gRPC client over the shared connection to `endpoint`.
    pub(crate) fn wallet_client(&self, endpoint: &str) -> Result<WalletClient<Channel>, CallError> {
        Ok(self.conn(endpoint)?.client.clone())
    }

    fn conn(&self, endpoint: &str) -> Result<Arc<Conn>, CallError> {
        let mut conns = self.inner.conns.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = conns.get(endpoint) {
            return Ok(c.clone());
        }
        let cfg = &self.inner.config;
        let channel = channel(endpoint, cfg.tls.as_ref())?;
        let client = WalletClient::new(channel);
        let limits = BatchLimits {
            commands_per_rpc_max: cfg.commands_per_rpc_max,
            rpcs_in_flight_max: cfg.rpcs_in_flight_max,
            rpc_timeout: cfg.rpc_timeout,
            group: 0,
            region: cfg.region.clone(),
        };
        let conn = Arc::new(Conn {
            client,
            batchers: Mutex::new(HashMap::new()),
            limits,
        });
        conns.insert(endpoint.to_string(), conn.clone());
        Ok(conn)
    }

    /// The endpoint for attempt `n`: the cached leader, else seeds in turn.
    fn target(&self, group: u64, attempt: u32) -> String {
        let leaders = self.inner.leaders.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = leaders.get(&group) {
            return l.clone();
        }
        let seeds = &self.inner.seeds;
        seeds[attempt as usize % seeds.len()].clone()
    }

    fn set_leader(&self, group: u64, leader: Option<String>) {
        let mut leaders = self.inner.leaders.lock().unwrap_or_else(|p| p.into_inner());
        match leader {
            Some(l) => leaders.insert(group, l),
            None => leaders.remove(&group),
        };
    }

    fn backoff(&self, key: u64, attempt: u32) -> Duration {
        let cfg = &self.inner.config;
        backoff(cfg.backoff_min, cfg.backoff_max, key, attempt)
    }

    /// Learns from a failed call: follow a leader hint, forget a dead leader.
    fn learn<T>(&self, group: u64, endpoint: &str, err: CallError) -> Next<T> {
        match err {
            CallError::NotLeader { endpoint: hint } => {
                let moved = hint.is_some() && hint.as_deref() != Some(endpoint);
                self.set_leader(group, hint.filter(|_| moved));
                Next::Retry {
                    maybe_applied: true,
                    error: format!("{endpoint} is not the leader"),
                    new_leader: moved,
                }
            }
            CallError::Unavailable(m) => {
                self.set_leader(group, None);
                Next::Retry {
                    maybe_applied: true,
                    error: m,
                    new_leader: false,
                }
            }
            CallError::Transport(m) => {
                self.set_leader(group, None);
                Next::Retry {
                    maybe_applied: true,
                    error: format!("{endpoint}: {m}"),
                    new_leader: false,
                }
            }
            CallError::Unreachable(m) => {
                self.set_leader(group, None);
                Next::Retry {
                    maybe_applied: false,
                    error: format!("{endpoint}: {m}"),
                    new_leader: false,
                }
            }
            CallError::Invalid(m) => Next::Done(Err(Error::InvalidArgument { message: m })),
            CallError::Unsupported(m) => Next::Done(Err(Error::Unsupported { message: m })),
            CallError::PermissionDenied(m) => {
                Next::Done(Err(Error::PermissionDenied { message: m }))
            }
            CallError::WrongGroup { group, epoch } => {
                Next::Done(Err(Error::WrongGroup { group, epoch }))
            }
        }
    }

    /// Runs `attempt_fn` against the leader (or seeds) until it succeeds, is
    /// refused, or the retry budget is spent. `tx_id` is `None` for reads,
    /// which are never indeterminate.
    async fn with_retries<T, F, Fut>(
        &self,
        group: u64,
        tx_id: Option<&str>,
        attempt_fn: F,
    ) -> Result<T, Error>
    where
        F: FnMut(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        self.with_retries_told(group, tx_id, attempt_fn)
            .await
            .map(|(r, _)| r)
    }

    /// [`Client::with_retries`], also telling whether an attempt before the
    /// one that answered may have applied the write (its answer was lost).
    async fn with_retries_told<T, F, Fut>(
        &self,
        group: u64,
        tx_id: Option<&str>,
        mut attempt_fn: F,
    ) -> Result<(T, bool), Error>
    where
        F: FnMut(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        let cfg = &self.inner.config;
        let deadline = Instant::now() + cfg.retry_budget;
        let key = match tx_id {
            Some(id) => jitter_key(id),
            None => self.inner.reads.fetch_add(1, Ordering::Relaxed),
        };
        let mut maybe_applied = false;
        let mut last_error = String::new();
        let mut hopped_last = false;
        for attempt in 0..cfg.attempts_max {
            let endpoint = self.target(group, attempt);
            let next = match attempt_fn(endpoint.clone()).await {
                Ok(r) => {
                    self.set_leader(group, Some(endpoint));
                    Next::Done(Ok(r))
                }
                Err(e) => self.learn(group, &endpoint, e),
            };
            match next {
                Next::Done(r) => return r.map(|r| (r, maybe_applied)),
                Next::Retry {
                    maybe_applied: m,
                    error,
                    new_leader,
                } => {
                    maybe_applied |= m;
                    last_error = error;
                    let pause =
                        pause_before_retry(self.backoff(key, attempt), new_leader, hopped_last);
                    hopped_last = new_leader && !hopped_last;
                    if Instant::now() + pause >= deadline {
                        break;
                    }
                    tokio::time::sleep(pause).await;
                }
            }
        }
        match tx_id {
            Some(tx_id) if maybe_applied => Err(Error::Indeterminate {
                tx_id: tx_id.to_string(),
                last_error,
            }),
            _ => Err(Error::Unavailable {
                message: last_error,
            }),
        }
    }

    async fn execute(&self, tx: &Tx, op: Op) -> Result<Receipt, Error> {
        let player = op_player(&op);
        let open = matches!(op, Op::Open(_));
        let mut route = self.route(player, open).await?;
        let mut hops = 0;
        // `moving` refusals are waited out within the retry budget: the
        // wallet is between groups and the command changed nothing.
        let deadline = Instant::now() + self.inner.config.retry_budget;
        let key = jitter_key(&tx.id);
        let mut waits = 0;
        // Whether an attempt may have applied the command before a later
        // one was refused `moving` (the refusal comes before the tx record
        // is looked at: it does not say the command never applied).
        let mut maybe_applied = false;
        loop {
            let command = pb::Command {
                tx_id: tx.id.clone(),
                created_at_ns: tx.created_at_ns,
                placement_epoch: route.epoch,
                op: Some(op.clone()),
            };
            let (result, lost_answer) = self
                .with_retries_told(route.group, Some(&tx.id), |endpoint| {
                    let conn = self.conn(&endpoint);
                    let command = command.clone();
                    let group = route.group;
                    async move { conn?.batcher(group).submit(command).await }
                })
                .await
                .map_err(|e| match e {
                    Error::Unavailable { message } if maybe_applied => Error::Indeterminate {
                        tx_id: tx.id.clone(),
                        last_error: message,
                    },
                    other => other,
                })?;
            maybe_applied |= lost_answer;
            match result.result {
                Some(pb::command_result::Result::Ok(r)) => return Ok(r.into()),
                Some(pb::command_result::Result::Refused(r))
                    if (r.code == "wrong_group" || r.code == "moved")
                        && hops < WRONG_GROUP_HOPS_MAX =>
                {
                    // A stale route, or a wallet that moved: the refusal
                    // names where the player is. The same tx id goes
                    // there; its record moved with the wallet.
                    hops += 1;
                    route = Route {
                        group: r.group_id,
                        epoch: r.epoch,
                    };
                    self.remember(player, route);
                }
                // `transfer_pending`: a transfer between groups a node could
                // not hand to its coordinator (current nodes do); it settles
                // by itself, so it is waited out like a move.
                Some(pb::command_result::Result::Refused(r))
                    if r.code == "moving" || r.code == "transfer_pending" =>
                {
                    let pause = self.backoff(key, waits).max(self.inner.config.backoff_min);
                    waits += 1;
                    if Instant::now() + pause >= deadline {
                        if maybe_applied {
                            return Err(Error::Indeterminate {
                                tx_id: tx.id.clone(),
                                last_error: r.message,
                            });
                        }
                        return Err(Error::from_refusal(r));
                    }
                    tokio::time::sleep(pause).await;
                }
                // Refusals made before the tx record is looked at (where
                // the player is now, a transfer's payee in another group)
                // say nothing of an earlier attempt whose answer was lost.
                Some(pb::command_result::Result::Refused(r))
                    if maybe_applied && REFUSED_BEFORE_THE_RECORD.contains(&r.code.as_str()) =>
                {
                    return Err(Error::Indeterminate {
                        tx_id: tx.id.clone(),
                        last_error: format!("{}: {}", r.code, r.message),
                    });
                }
                Some(pb::command_result::Result::Refused(r)) => {
                    return Err(Error::from_refusal(r));
                }
                None => {
                    return Err(Error::Indeterminate {
                        tx_id: tx.id.clone(),
                        last_error: "empty result from server".into(),
                    });
                }
            }
        }
    }

    /// Runs a read against `player`'s group, following `wrong_group`
    /// redirects.
    async fn routed<T, F, Fut>(&self, player: u64, mut call: F) -> Result<T, Error>
    where
        F: FnMut(u64) -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let mut route = self.route(player, false).await?;
        for _ in 0..=WRONG_GROUP_HOPS_MAX {
            match call(route.group).await {
                Err(Error::WrongGroup { group, epoch }) => {
                    route = Route { group, epoch };
                    self.remember(player, route);
                }
                other => return other,
            }
        }
        Err(Error::Unavailable {
            message: format!("player {player}'s placement kept changing; retry"),
        })
    }

    /// Drops `player`'s cached route: the next call asks the directory.
    fn forget(&self, player: u64) {
        self.inner
            .placements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&player);
    }

    fn remember(&self, player: u64, route: Route) {
        let mut placements = self
            .inner
            .placements
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if placements.len() >= PLACEMENTS_CACHED_MAX {
            placements.clear();
        }
        let newer = placements
            .get(&player)
            .is_none_or(|r| r.epoch <= route.epoch);
        if newer {
            placements.insert(player, route);
        }
    }

    /// Where `player`'s commands go: the configured group if one is set;
    /// else its placement (cached, or from the directory; an `open` places
    /// an unplaced player in the caller's region); in a cluster without a
    /// directory, each node's default group.
    async fn route(&self, player: u64, open: bool) -> Result<Route, Error> {
        let cfg = &self.inner.config;
        if cfg.group != 0 || self.inner.no_directory.load(Ordering::Relaxed) {
            return Ok(Route {
                group: cfg.group,
                epoch: 0,
            });
        }
        let cached = self
            .inner
            .placements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&player)
            .copied();
        if let Some(r) = cached {
            return Ok(r);
        }
        let found = if open {
            self.place(player, &cfg.region).await.map(Some)
        } else {
            self.placement(player).await
        };
        match found {
            Ok(Some((group, epoch))) => {
                let route = Route { group, epoch };
                self.remember(player, route);
                Ok(route)
            }
            Ok(None) => Err(Error::UnknownAccount {
                message: format!("player {player} is not placed in any group (never opened)"),
            }),
            Err(Error::Unsupported { .. }) => {
                self.inner.no_directory.store(true, Ordering::Relaxed);
                Ok(Route { group: 0, epoch: 0 })
            }
            Err(e) => Err(e),
        }
    }

    /// Places `player` in a shard group homed in `region` unless it is
    /// placed already; returns (group, epoch).
    pub async fn place(&self, player: u64, region: &str) -> Result<(u64, u64), Error> {
        let req = pb::PlaceRequest {
            player,
            region: region.to_string(),
        };
        let timeout = self.inner.config.rpc_timeout;
        let resp = self
            .with_retries(DIRECTORY, None, |endpoint| {
                let conn = self.conn(&endpoint);
                let req = req.clone();
                async move { unary(timeout, conn?.client.clone().place(req)).await }
            })
            .await?;
        match (resp.placed, resp.refused) {
            (true, _) => Ok((resp.group_id, resp.epoch)),
            (false, Some(r)) => Err(Error::from_refusal(r)),
            (false, None) => Err(Error::Protocol {
                message: "place answered neither a placement nor a refusal".into(),
            }),
        }
    }

    /// Moves `player`'s wallet to a shard group homed in `region` (a game
    /// server that saw the player log in there); returns once the move is
    /// complete, or at once when the player is in such a group already.
    /// During the move the player's commands wait (`moving`) and then
    /// follow the wallet, with the same tx ids. A move cut short (a leader
    /// crash) is finished by the next leader; calling again is safe.
    pub async fn migrate(&self, player: u64, region: &str) -> Result<Migration, Error> {
        let req = pb::MigrateRequest {
            player,
            region: region.to_string(),
        };
        // A move is several committed steps in up to three groups.
        let timeout = self.inner.config.rpc_timeout.max(Duration::from_secs(40));
        let resp = self
            .routed(player, |group| {
                let req = req.clone();
                async move {
                    self.with_retries(group, None, |endpoint| {
                        let conn = self.conn(&endpoint);
                        let req = req.clone();
                        async move { unary(timeout, conn?.client.clone().migrate(req)).await }
                    })
                    .await
                }
            })
            .await?;
        if let Some(r) = resp.refused {
            return Err(Error::from_refusal(r));
        }
        let route = Route {
            group: resp.group_id,
            epoch: resp.epoch,
        };
        self.remember(player, route);
        Ok(Migration {
            group: resp.group_id,
            epoch: resp.epoch,
            home_region: resp.home_region,
            moved: resp.moved,
        })
    }

    /// Asks group `group`'s leader to hand leadership to `node`; returns the
    /// term `node` leads in.
    pub async fn transfer_leader(&self, group: u64, node: u64) -> Result<u64, Error> {
        let req = pb::TransferLeaderRequest {
            group_id: group,
            node_id: node,
        };
        let timeout = self.inner.config.rpc_timeout.max(Duration::from_secs(6));
        let resp = self
            .with_retries(group, None, |endpoint| {
                let conn = self.conn(&endpoint);
                async move { unary(timeout, conn?.client.clone().transfer_leader(req)).await }
            })
            .await?;
        Ok(resp.term)
    }

    /// Opens a backup of `of` at its leader (following redirects and
    /// retrying within the budget): the group's state after every write
    /// acknowledged before this call, streamed as a snapshot file. Write
    /// [`BackupStream::next`]'s pieces in order; a stream that fails midway
    /// cannot be resumed: start again.
    pub async fn backup(&self, of: BackupOf) -> Result<BackupStream, Error> {
        let (key, req) = match of {
            BackupOf::Group(group) => (
                group,
                pb::BackupRequest {
                    group_id: group,
                    directory: false,
                },
            ),
            BackupOf::Directory => (
                DIRECTORY,
                pb::BackupRequest {
                    group_id: 0,
                    directory: true,
                },
            ),
        };
        // The leader confirms a read index and takes a checkpoint first.
        let timeout = self.inner.config.rpc_timeout.max(Duration::from_secs(10));
        let stream = self
            .with_retries(key, None, |endpoint| {
                let conn = self.conn(&endpoint);
                async move { unary(timeout, conn?.client.clone().backup(req)).await }
            })
            .await?;
        Ok(BackupStream {
            stream,
            of,
            offset: 0,
            piece_timeout: timeout,
        })
    }

    /// `player`'s placement (group, epoch), or `None` if it is not placed
    /// (linearizable directory read).
    pub async fn placement(&self, player: u64) -> Result<Option<(u64, u64)>, Error> {
        Ok(self.placement_of(player).await?.map(|p| (p.group, p.epoch)))
    }

    /// `player`'s placement with its group's home region, or `None` if it
    /// is not placed (linearizable directory read).
    pub async fn placement_of(&self, player: u64) -> Result<Option<Migration>, Error> {
        let req = pb::PlacementRequest { player };
        let timeout = self.inner.config.rpc_timeout;
        let resp = self
            .with_retries(DIRECTORY, None, |endpoint| {
                let conn = self.conn(&endpoint);
                async move { unary(timeout, conn?.client.clone().placement(req)).await }
            })
            .await?;
        Ok(resp.placed.then_some(Migration {
            group: resp.group_id,
            epoch: resp.epoch,
            home_region: resp.home_region,
            moved: false,
        }))
    }

    pub async fn open(&self, tx: &Tx, account: &Account) -> Result<Receipt, Error> {
        self.execute(
            tx,
            Op::Open(pb::Open {
                account: Some(account.to_pb()),
            }),
        )
        .await
    }

    pub async fn credit(
        &self,
        tx: &Tx,
        account: &Account,
        amount: u64,
        kind: CreditKind,
    ) -> Result<Receipt, Error> {
        self.execute(
            tx,
            Op::Credit(pb::Credit {
                account: Some(account.to_pb()),
                amount,
                kind: kind.to_pb(),
            }),
        )
        .await
    }

    pub async fn debit(
        &self,
        tx: &Tx,
        account: &Account,
        amount: u64,
        kind: DebitKind,
    ) -> Result<Receipt, Error> {
        self.execute(
            tx,
            Op::Debit(pb::Debit {
                account: Some(account.to_pb()),
                amount,
                kind: kind.to_pb(),
            }),
        )
        .await
    }

    pub async fn transfer(
        &self,
        tx: &Tx,
        from: &Account,
        to: &Account,
        amount: u64,
    ) -> Result<Receipt, Error> {
        let op = Op::Transfer(pb::Transfer {
            from: Some(from.to_pb()),
            to: Some(to.to_pb()),
            amount,
        });
        self.execute(tx, op).await
    }

    pub async fn hold(
        &self,
        tx: &Tx,
        account: &Account,
        hold_id: &str,
        amount: u64,
        expires_at_ns: u64,
    ) -> Result<Receipt, Error> {
        let op = Op::Hold(pb::Hold {
            account: Some(account.to_pb()),
            hold_id: hold_id.into(),
            amount,
            expires_at_ns,
        });
        self.execute(tx, op).await
    }

    /// Captures `amount` of the hold, or all that remains for `None`.
    pub async fn capture(
        &self,
        tx: &Tx,
        account: &Account,
        hold_id: &str,
        amount: Option<u64>,
        kind: DebitKind,
    ) -> Result<Receipt, Error> {
        let op = Op::Capture(pb::Capture {
            account: Some(account.to_pb()),
            hold_id: hold_id.into(),
            amount: amount.unwrap_or(0),
            kind: kind.to_pb(),
        });
        self.execute(tx, op).await
    }

    pub async fn release(
        &self,
        tx: &Tx,
        account: &Account,
        hold_id: &str,
    ) -> Result<Receipt, Error> {
        self.execute(
            tx,
            Op::Release(pb::Release {
                account: Some(account.to_pb()),
                hold_id: hold_id.into(),
            }),
        )
        .await
    }

    pub async fn freeze(&self, tx: &Tx, account: &Account) -> Result<Receipt, Error> {
        self.execute(
            tx,
            Op::Freeze(pb::Freeze {
                account: Some(account.to_pb()),
            }),
        )
        .await
    }

    pub async fn unfreeze(&self, tx: &Tx, account: &Account) -> Result<Receipt, Error> {
        self.execute(
            tx,
            Op::Unfreeze(pb::Unfreeze {
                account: Some(account.to_pb()),
            }),
        )
        .await
    }

    /// Linearizable read of an account's balance (served by the leader after
    /// a quorum confirmed its leadership).
    pub async fn balance(&self, account: &Account) -> Result<Balance, Error> {
        let resp = self
            .routed(account.player, |group| async move {
                let req = pb::BalanceRequest {
                    account: Some(account.to_pb()),
                    group_id: group,
                };
                let timeout = self.inner.config.rpc_timeout;
                self.with_retries(group, None, |endpoint| {
                    let conn = self.conn(&endpoint);
                    let req = req.clone();
                    async move { unary(timeout, conn?.client.clone().balance(req)).await }
                })
                .await
            })
            .await?;
        match resp.refused {
            Some(r) => Err(Error::from_refusal(r)),
            None => Ok(resp.balance.unwrap_or_default().into()),
        }
    }

    /// Linearizable read of `accounts` and of every currency's totals, all at
    /// one applied index of one group: the books balance when, per currency,
    /// `players + system == 0`.
    ///
    /// Accounts in several shard groups are read group by group (one call
    /// each, every account's balance in order); the totals are then the sums
    /// over those groups (each group's books balance on their own, so the
    /// sums do too) and `read_index` is the highest group's index.
    pub async fn audit(&self, accounts: &[Account]) -> Result<Audit, Error> {
        let cfg = &self.inner.config;
        if cfg.group != 0 || accounts.is_empty() {
            return self.audit_group(cfg.group, accounts).await;
        }
        // A route can be stale, or a player placed nowhere when routed can
        // be placed by the time its group is asked: forget the routes of
        // the refused part and route again.
        for _ in 0..WRONG_GROUP_HOPS_MAX {
            match self.audit_routed(accounts).await {
                Err(AuditError::WrongGroup(part)) => {
                    for i in part {
                        self.forget(accounts[i].player);
                    }
                }
                Err(AuditError::Other(e)) => return Err(e),
                Ok(audit) => return Ok(audit),
            }
        }
        Err(Error::Unavailable {
            message: "the audited players' placements kept changing; retry".into(),
        })
    }

    /// One audit, routed with the placements as known now.
    async fn audit_routed(&self, accounts: &[Account]) -> Result<Audit, AuditError> {
        let mut by_group: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for (i, a) in accounts.iter().enumerate() {
            let group = match self.route(a.player, false).await {
                Ok(r) => r.group,
                // Placed nowhere: ask the first account's group, which
                // answers it has no such account.
                Err(Error::UnknownAccount { .. }) => u64::MAX,
                Err(e) => return Err(AuditError::Other(e)),
            };
            by_group.entry(group).or_default().push(i);
        }
        if let Some(unplaced) = by_group.remove(&u64::MAX) {
            let first = by_group.keys().next().copied().unwrap_or(0);
            by_group.entry(first).or_default().extend(unplaced);
        }
        let mut balances: Vec<Option<(Account, Option<Balance>)>> = vec![None; accounts.len()];
        let mut totals: BTreeMap<String, CurrencyTotals> = BTreeMap::new();
        let mut read_index = 0;
        for (group, idx) in by_group {
            let part: Vec<Account> = idx.iter().map(|i| accounts[*i].clone()).collect();
            let audit = match self.audit_group(group, &part).await {
                Err(Error::WrongGroup { .. }) => return Err(AuditError::WrongGroup(idx)),
                other => other.map_err(AuditError::Other)?,
            };
            for (i, b) in idx.iter().zip(audit.balances) {
                balances[*i] = Some(b);
            }
            for (currency, t) in audit.totals {
                let sum = totals.entry(currency).or_insert(CurrencyTotals {
                    players: 0,
                    system: 0,
                    transit: 0,
                });
                sum.players += t.players;
                sum.system += t.system;
                sum.transit += t.transit;
            }
            read_index = read_index.max(audit.read_index);
        }
        Ok(Audit {
            read_index,
            balances: balances.into_iter().flatten().collect(),
            totals,
        })
    }

    /// One audit call to `group` (0: each node's default group).
    async fn audit_group(&self, group: u64, accounts: &[Account]) -> Result<Audit, Error> {
        self.audit_call(group, accounts, false).await
    }

    /// Group `group`'s own view of `accounts` at one index: those it holds
    /// with their balances, the others (never opened, or whose wallets are
    /// in, or moving to, another group) without; and the group's totals.
    /// No redirects: an audit of several groups that must balance while
    /// wallets move reads each group this way, with every account asked
    /// (the groups' separate reads are no consistent cut of the whole).
    pub async fn audit_in_group(&self, group: u64, accounts: &[Account]) -> Result<Audit, Error> {
        self.audit_call(group, accounts, true).await
    }

    async fn audit_call(
        &self,
        group: u64,
        accounts: &[Account],
        group_view: bool,
    ) -> Result<Audit, Error> {
        let audit = |group: u64| async move {
            let req = pb::AuditRequest {
                accounts: accounts.iter().map(Account::to_pb).collect(),
                group_id: group,
                group_view,
            };
            let timeout = self.inner.config.rpc_timeout;
            self.with_retries(group, None, |endpoint| {
                let conn = self.conn(&endpoint);
                let req = req.clone();
                async move { unary(timeout, conn?.client.clone().audit(req)).await }
            })
            .await
        };
        let resp = audit(group).await?;
        let malformed = |what: &str| Error::Protocol {
            message: format!("malformed audit: {what}"),
        };
        let mut totals = BTreeMap::new();
        for t in resp.totals {
            let players = t.players.parse().map_err(|_| malformed("players total"))?;
            let system = t.system.parse().map_err(|_| malformed("system total"))?;
            // Empty from a node older than the field.
            let transit = match t.transit.as_str() {
                "" => 0,
                s => s.parse().map_err(|_| malformed("transit total"))?,
            };
            totals.insert(
                t.currency,
                CurrencyTotals {
                    players,
                    system,
                    transit,
                },
            );
        }
        let balances = resp
            .accounts
            .into_iter()
            .map(|a| {
                let r = a.account.ok_or_else(|| malformed("account missing"))?;
                Ok((
                    Account::new(r.player, r.currency),
                    a.balance.map(Into::into),
                ))
            })
            .collect::<Result<_, Error>>()?;
        Ok(Audit {
            read_index: resp.read_index,
            balances,
            totals,
        })
    }

    /// One page of an account's journal from `from` on.
    pub async fn journal(
        &self,
        account: &Account,
        from: JournalCursor,
        limit: u32,
    ) -> Result<JournalPage, Error> {
        self.journal_page(None, account, from, limit).await
    }

    /// One page of the lines of `account`'s journal that group `group`
    /// holds, wherever the player is now: a wallet's lines stay in the
    /// group that wrote them when it moves (the sequence numbers continue,
    /// so the groups' lines merged by `seq` are the whole journal).
    pub async fn journal_in_group(
        &self,
        group: u64,
        account: &Account,
        from: JournalCursor,
        limit: u32,
    ) -> Result<JournalPage, Error> {
        self.journal_page(Some(group), account, from, limit).await
    }

    async fn journal_page(
        &self,
        in_group: Option<u64>,
        account: &Account,
        from: JournalCursor,
        limit: u32,
    ) -> Result<JournalPage, Error> {
        let (from_seq, from_log_index, from_position) = match from {
            JournalCursor::Seq(seq) => (seq, 0, 0),
            JournalCursor::Position {
                log_index,
                position,
            } => (0, log_index, position),
        };
        let call = |group: u64, group_view: bool| async move {
            let req = pb::JournalRequest {
                account: Some(account.to_pb()),
                from_log_index,
                from_position,
                limit,
                from_seq,
                group_id: group,
                group_view,
            };
            let timeout = self.inner.config.rpc_timeout;
            self.with_retries(group, None, |endpoint| {
                let conn = self.conn(&endpoint);
                let req = req.clone();
                async move { unary(timeout, conn?.client.clone().journal(req)).await }
            })
            .await
        };
        let mut resp = match in_group {
            Some(group) => call(group, true).await?,
            None => self.routed(account.player, |g| call(g, false)).await?,
        };
        let merged_page = !resp.lines_elsewhere.is_empty() && from_log_index == 0;
        if merged_page {
            // The wallet was in other groups for a while: its lines there
            // fill the gaps, in one order by sequence number.
            let mut merged: BTreeMap<u64, pb::JournalEntry> =
                resp.entries.drain(..).map(|e| (e.seq, e)).collect();
            let mut more = resp.more;
            for group in std::mem::take(&mut resp.lines_elsewhere) {
                let other = call(group, true).await?;
                more |= other.more;
                for e in other.entries {
                    merged.entry(e.seq).or_insert(e);
                }
            }
            let wanted = if limit == 0 { 100 } else { limit as usize };
            let mut expect = from_seq.max(1);
            let total = merged.len();
            for (seq, e) in merged {
                if seq != expect || resp.entries.len() == wanted {
                    break;
                }
                resp.entries.push(e);
                expect += 1;
            }
            if resp.entries.is_empty() && total > 0 {
                return Err(Error::Unavailable {
                    message: format!(
                        "line {expect} of {account}'s journal is in no group that answered; retry"
                    ),
                });
            }
            resp.more = more || resp.entries.len() < total;
            resp.next_seq = expect;
            (resp.next_log_index, resp.next_position) = (0, 0);
        }
        let entries = resp
            .entries
            .into_iter()
            .map(|e| JournalEntry {
                seq: e.seq,
                group: e.group,
                log_index: e.log_index,
                position: e.position,
                tx_id: e.tx_id,
                kind: e.kind,
                amount: e.amount,
                balance: e.balance.unwrap_or_default().into(),
            })
            .collect();
        let next = match (resp.more, resp.next_seq) {
            (false, _) => None,
            (true, 0) => Some(JournalCursor::Position {
                log_index: resp.next_log_index,
                position: resp.next_position,
            }),
            (true, seq) => Some(JournalCursor::Seq(seq)),
        };
        // A page merged from several groups resumes by sequence number only.
        let next_at =
            (resp.more && !merged_page).then_some((resp.next_log_index, resp.next_position));
        Ok(JournalPage {
            entries,
            next,
            next_at,
        })
    }

    /// The status of the node at `endpoint` (no retries, no redirects).
    pub async fn status_of(&self, endpoint: &str) -> Result<Status, Error> {
        let conn = self.conn(endpoint).map_err(|_| Error::InvalidArgument {
            message: format!("bad endpoint {endpoint}: give host:port"),
        })?;
        let mut client = conn.client.clone();
        let s = unary(
            self.inner.config.rpc_timeout,
            client.status(pb::StatusRequest {}),
        )
        .await
        .map_err(|e| match e {
            CallError::PermissionDenied(message) => Error::PermissionDenied { message },
            e => Error::Unavailable {
                message: format!("{endpoint}: {e:?}"),
            },
        })?;
        Ok(Status {
            node_id: s.node_id,
            state: s.state,
            leader_id: s.leader_id,
            leader_endpoint: s.leader_endpoint,
            term: s.term,
            last_log_index: s.last_log_index,
            committed_index: s.committed_index,
            applied_index: s.applied_index,
            snapshot_index: s.snapshot_index,
            clock_offsets_ns: s
                .members
                .iter()
                .filter(|m| m.clock_offset_ns != 0)
                .map(|m| (m.id, m.clock_offset_ns))
                .collect(),
            members: s
                .members
                .into_iter()
                .map(|m| (m.id, m.endpoint, m.matched_index))
                .collect(),
            clock_refusing_writes: s.clock_refusing_writes,
            clock_detail: s.clock_detail,
            region: s.region,
            dc: s.dc,
            nodes: s
                .nodes
                .into_iter()
                .map(|n| NodeRef {
                    id: n.id,
                    endpoint: n.endpoint,
                    region: n.region,
                    dc: n.dc,
                })
                .collect(),
            groups: s.groups.into_iter().map(group_status).collect(),
            moves: s.moves.map(|m| MoveStats {
                started: m.started,
                completed: m.completed,
                returned: m.returned,
                interrupted: m.interrupted,
                in_flight: m.in_flight,
                leave_ns: m.leave_ns,
                arrive_ns: m.arrive_ns,
                repoint_ns: m.repoint_ns,
                finish_ns: m.finish_ns,
                transfers_begun: m.transfers_begun,
                transfers_pending: m.transfers_pending,
            }),
        })
    }

    /// The seed endpoints this client was made with.
    pub fn seeds(&self) -> &[String] {
        &self.inner.seeds
    }
}

fn group_status(g: pb::GroupStatus) -> GroupStatus {
    GroupStatus {
        id: g.id,
        home_region: g.home_region,
        state: g.state,
        leader_id: g.leader_id,
        term: g.term,
        last_log_index: g.last_log_index,
        committed_index: g.committed_index,
        applied_index: g.applied_index,
        snapshot_index: g.snapshot_index,
        replicas: g
            .members
            .into_iter()
            .map(|m| Replica {
                id: m.id,
                endpoint: m.endpoint,
                region: m.region,
                dc: m.dc,
                matched_index: m.matched_index,
                clock_offset_ns: m.clock_offset_ns,
            })
            .collect(),
        clock_refusing_writes: g.clock_refusing_writes,
        clock_detail: g.clock_detail,
        degraded: g.degraded,
        dual_dc: g.dual_dc,
    }
}

async fn unary<T>(
    timeout: Duration,
    fut: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, CallError> {
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => Err(CallError::Transport(format!(
            "no answer within {timeout:?}"
        ))),
        Ok(Err(status)) => Err(call_error(&status)),
        Ok(Ok(resp)) => Ok(resp.into_inner()),
    }
}

/// The player a command is addressed to (a transfer's payer).
fn op_player(op: &Op) -> u64 {
    let account = match op {
        Op::Open(o) => o.account.as_ref(),
        Op::Credit(o) => o.account.as_ref(),
        Op::Debit(o) => o.account.as_ref(),
        Op::Transfer(o) => o.from.as_ref(),
        Op::Hold(o) => o.account.as_ref(),
        Op::Capture(o) => o.account.as_ref(),
        Op::Release(o) => o.account.as_ref(),
        Op::Freeze(o) => o.account.as_ref(),
        Op::Unfreeze(o) => o.account.as_ref(),
    };
    account.map_or(0, |a| a.player)
}

/// A lazily connecting channel to `endpoint`, over mutual TLS when `tls`
/// is set (the server's certificate must name the endpoint's host).
fn channel(endpoint: &str, tls: Option<&ClientTls>) -> Result<Channel, CallError> {
    let bad =
        |e: &dyn std::fmt::Display| CallError::Invalid(format!("bad endpoint {endpoint}: {e}"));
    let scheme = if tls.is_some() { "https" } else { "http" };
    let e = Endpoint::from_shared(format!("{scheme}://{endpoint}"))
        .map_err(|e| bad(&e))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_millis(500));
    #[cfg(not(madsim))]
    let e = match tls {
        Some(t) => {
            use tonic::transport::{Certificate, ClientTlsConfig, Identity};
            let config = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&t.ca_pem))
                .identity(Identity::from_pem(&t.cert_pem, &t.key_pem));
            e.tls_config(config).map_err(|e| bad(&e))?
        }
        None => e,
    };
    Ok(e.connect_lazy())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Retries after a failover are spread: the same attempt of different
    // tx ids pauses for different times within the cap, and the same tx id
    // and attempt always pause the same (replays stay exact).
    // A reply naming a new leader is followed at once, but never twice in
    // a row: two nodes that name each other fall back to the backoff.
    #[test]
    fn a_new_leader_hint_is_followed_without_a_pause_once() {
        let b = Duration::from_millis(80);
        assert_eq!(pause_before_retry(b, true, false), Duration::ZERO);
        assert_eq!(pause_before_retry(b, true, true), b);
        assert_eq!(pause_before_retry(b, false, false), b);
    }

    #[test]
    fn backoff_has_full_jitter_drawn_from_the_tx_id() {
        let (min, max) = (Duration::from_millis(20), Duration::from_millis(500));
        for attempt in 0..12 {
            let cap = min.saturating_mul(1u32 << attempt.min(10)).min(max);
            let pauses: Vec<Duration> = (0..200)
                .map(|i| backoff(min, max, jitter_key(&format!("tx-{i}")), attempt))
                .collect();
            assert!(pauses.iter().all(|p| *p <= cap), "attempt {attempt}");
            let distinct: std::collections::BTreeSet<_> = pauses.iter().collect();
            assert!(
                distinct.len() > 150,
                "attempt {attempt}: {} distinct",
                distinct.len()
            );
            let below_half = pauses.iter().filter(|p| **p < cap / 2).count();
            assert!(
                (60..=140).contains(&below_half),
                "attempt {attempt}: {below_half}"
            );
            let again = backoff(min, max, jitter_key("tx-7"), attempt);
            assert_eq!(again, pauses[7]);
        }
    }
}

/// Which group [`Client::backup`] copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupOf {
    /// A shard group (0: the default group of the node asked).
    Group(u64),
    /// The directory group (player placements).
    Directory,
}

impl std::fmt::Display for BackupOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackupOf::Group(g) => write!(f, "group {g}"),
            BackupOf::Directory => write!(f, "the directory group"),
        }
    }
}

/// A backup being received (see [`Client::backup`]).
pub struct BackupStream {
    stream: tonic::Streaming<pb::BackupChunk>,
    of: BackupOf,
    offset: u64,
    piece_timeout: Duration,
}

impl BackupStream {
    /// The next piece of the snapshot file, its crc32 and offset checked;
    /// `None` once the server said the file is complete. A stream that
    /// ends without saying so is an error, never a short file.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let of = self.of;
        let at = self.offset;
        let cut = |why: String| Error::Unavailable {
            message: format!("the backup of {of} was cut at byte {at}: {why}; start it again"),
        };
        let chunk = match tokio::time::timeout(self.piece_timeout, self.stream.message()).await {
            Err(_) => return Err(cut(format!("no piece for {:?}", self.piece_timeout))),
            Ok(Err(status)) => {
                return Err(match call_error(&status) {
                    CallError::PermissionDenied(message) => Error::PermissionDenied { message },
                    _ => cut(status.message().to_string()),
                });
            }
            Ok(Ok(None)) => return Err(cut("the stream ended without its end marker".into())),
            Ok(Ok(Some(chunk))) => chunk,
        };
        if chunk.last {
            return Ok(None);
        }
        if chunk.offset != at || crc32fast::hash(&chunk.data) != chunk.crc32 {
            return Err(Error::Protocol {
                message: format!(
                    "the backup of {of}: a piece at offset {} ({} bytes) where byte {at} was \
                     due, or its crc32 does not match: start it again",
                    chunk.offset,
                    chunk.data.len()
                ),
            });
        }
        self.offset += chunk.data.len() as u64;
        Ok(Some(chunk.data))
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.offset
    }
}
