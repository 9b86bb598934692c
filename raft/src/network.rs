use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use geowallet_proto::raft::raft_service_client::RaftServiceClient;
use geowallet_proto::raft::{RaftBatch, RaftMessage, SnapshotChunk};
use geowallet_storage::{GroupId, SnapshotChunkReader};
use openraft::alias::{LogIdOf, SnapshotOf, VoteOf};
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{RaftNetworkFactory, RaftNetworkV2};
use tokio::sync::{mpsc, oneshot};
use tonic::transport::{Channel, Endpoint};

use crate::service::BATCH_MESSAGES_MAX;

use crate::codec::{decode, encode, encoded_len};
use crate::{ClockQuorum, MessageLimits, NodeInfo, SnapshotHandle, TypeConfig};

/// Bytes per snapshot chunk on the wire (less under a small transport limit).
const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;
/// A snapshot stream that hands the receiver nothing for this long is dead.
const SNAPSHOT_STALL_MAX: Duration = Duration::from_secs(20);
/// After the last chunk the receiver installs: this long at least...
const SNAPSHOT_INSTALL_TIME_MIN: Duration = Duration::from_secs(30);
/// ...plus a second per this many bytes sent.
const SNAPSHOT_INSTALL_BYTES_PER_S: u64 = 8 << 20;
/// An AppendEntries with entries may take this long at least...
const APPEND_TIMEOUT_MIN: Duration = Duration::from_secs(2);
/// ...plus a second per this many bytes.
const APPEND_BYTES_PER_S: usize = 8 << 20;
/// How often a snapshot send checks its progress.
const SNAPSHOT_WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// How far a snapshot send has come.
struct Progress {
    last: tokio::time::Instant,
    bytes: u64,
    ended: bool,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            last: tokio::time::Instant::now(),
            bytes: 0,
            ended: false,
        }
    }

    fn sent(&mut self, bytes: usize) {
        self.last = tokio::time::Instant::now();
        self.bytes += bytes as u64;
    }

    /// Why the send should give up, if it should.
    fn stalled(&self) -> Option<String> {
        let idle = self.last.elapsed();
        if !self.ended {
            return (idle > SNAPSHOT_STALL_MAX)
                .then(|| format!("no progress for {idle:?} after {} bytes", self.bytes));
        }
        let allowed = SNAPSHOT_INSTALL_TIME_MIN
            + Duration::from_secs(self.bytes / SNAPSHOT_INSTALL_BYTES_PER_S);
        (idle > allowed).then(|| {
            format!(
                "the receiver did not answer within {allowed:?} of the last of {} bytes",
                self.bytes
            )
        })
    }
}

fn lock(p: &Mutex<Progress>) -> std::sync::MutexGuard<'_, Progress> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

/// One HTTP/2 connection per peer address, shared by every group of this
/// node: a node hosting many groups opens as many connections as it has
/// peers, not peers × groups. Heartbeats of all groups to one peer go out
/// together (`AppendBatch`), so their message count does not grow with the
/// number of groups.
#[derive(Clone)]
pub struct PeerChannels {
    channels: Arc<Mutex<HashMap<u64, Result<Peer, String>>>>,
    stats: Arc<BeatStats>,
    dial: Dial,
}

/// Makes the (lazily connecting) channel to a peer's node-to-node
/// listener: node id and its membership entry in, channel or why not out.
/// The node's dialer looks up the peer's Raft listener and speaks mutual
/// TLS; the default dials `NodeInfo::addr` in plaintext (tests and the
/// simulator).
pub type Dial = Arc<dyn Fn(u64, &NodeInfo) -> Result<Channel, String> + Send + Sync>;

/// The plaintext dialer: `NodeInfo::addr`, no TLS.
pub fn plain_dial(_id: u64, node: &NodeInfo) -> Result<Channel, String> {
    Endpoint::from_shared(format!("http://{}", node.addr))
        .map(|e| {
            e.tcp_nodelay(true)
                .connect_timeout(Duration::from_millis(500))
                .http2_keep_alive_interval(Duration::from_secs(5))
                .connect_lazy()
        })
        .map_err(|e| format!("bad endpoint {}: {e}", node.addr))
}

impl Default for PeerChannels {
    fn default() -> Self {
        PeerChannels::new(Arc::new(plain_dial))
    }
}

/// Heartbeats sent and the `AppendBatch` calls that carried them, and
/// when the host last triggered every group's heartbeat.
#[derive(Debug, Default)]
pub struct BeatStats {
    pub heartbeats: AtomicU64,
    pub batches: AtomicU64,
    last_beat: Mutex<Option<tokio::time::Instant>>,
}

/// After the host triggers every group's heartbeat, heartbeats reaching a
/// peer's batcher within this long wait for each other. Outside that
/// window an empty AppendEntries goes at once: it may be a replication
/// stream's (openraft sends those too), and that stream waits for its
/// answer (a 1 ms wait on every one of them cost a fifth of a group's
/// throughput).
const BEAT_WINDOW: Duration = Duration::from_millis(2);

#[derive(Clone)]
struct Peer {
    channel: Channel,
    beats: mpsc::UnboundedSender<Beat>,
}

/// One group's heartbeat waiting to go out with the others to its peer.
struct Beat {
    message: RaftMessage,
    timeout: Duration,
    reply: oneshot::Sender<Result<RaftMessage, tonic::Status>>,
}

impl PeerChannels {
    /// Connections made by `dial`.
    pub fn new(dial: Dial) -> PeerChannels {
        PeerChannels {
            channels: Arc::default(),
            stats: Arc::default(),
            dial,
        }
    }

    /// The node's one channel to peer `id` (its node-to-node listener),
    /// for other node-to-node services than Raft's (move steps).
    pub fn channel(&self, id: u64, node: &NodeInfo) -> Result<Channel, String> {
        self.get(id, node).map(|p| p.channel)
    }

    fn get(&self, id: u64, node: &NodeInfo) -> Result<Peer, String> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels
            .entry(id)
            .or_insert_with(|| {
                let channel = (self.dial)(id, node)?;
                let (beats, rx) = mpsc::unbounded_channel();
                tokio::spawn(batch_beats(channel.clone(), rx, self.stats.clone()));
                Ok(Peer { channel, beats })
            })
            .clone()
    }

    /// Notes that the host is triggering every group's heartbeat now.
    pub fn mark_beat(&self) {
        *self
            .stats
            .last_beat
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(tokio::time::Instant::now());
    }

    /// Heartbeats sent so far and the calls that carried them.
    pub fn beat_stats(&self) -> (u64, u64) {
        (
            self.stats.heartbeats.load(Ordering::Relaxed),
            self.stats.batches.load(Ordering::Relaxed),
        )
    }

    /// Peers a connection was made for.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

/// Sends the heartbeats queued for one peer, those that arrive together in
/// one `AppendBatch` call each, until every sender is gone.
async fn batch_beats(
    channel: Channel,
    mut rx: mpsc::UnboundedReceiver<Beat>,
    stats: Arc<BeatStats>,
) {
    while let Some(first) = rx.recv().await {
        let window_end = stats
            .last_beat
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|at| at + BEAT_WINDOW);
        match window_end {
            // A beat burst: the other groups' heartbeats are on their way.
            Some(end) if end > tokio::time::Instant::now() => tokio::time::sleep_until(end).await,
            _ => tokio::task::yield_now().await,
        }
        let mut beats = vec![first];
        while beats.len() < BATCH_MESSAGES_MAX
            && let Ok(b) = rx.try_recv()
        {
            beats.push(b);
        }
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats
            .heartbeats
            .fetch_add(beats.len() as u64, Ordering::Relaxed);
        // Each batch in its own task: a slow peer does not hold up the
        // next tick's batch.
        tokio::spawn(send_beats(RaftServiceClient::new(channel.clone()), beats));
    }
}

async fn send_beats(mut client: RaftServiceClient<Channel>, beats: Vec<Beat>) {
    let timeout = beats.iter().map(|b| b.timeout).max().unwrap_or_default();
    let (messages, replies): (Vec<_>, Vec<_>) =
        beats.into_iter().map(|b| (b.message, b.reply)).unzip();
    let sent = tokio::time::timeout(timeout, client.append_batch(RaftBatch { messages })).await;
    let answers = match sent {
        Err(_) => Err(tonic::Status::deadline_exceeded(
            "heartbeat batch timed out",
        )),
        Ok(Err(status)) => Err(status),
        Ok(Ok(r)) => {
            let got = r.into_inner().messages;
            if got.len() == replies.len() {
                Ok(got)
            } else {
                Err(tonic::Status::internal(format!(
                    "{} replies to a batch of {} heartbeats",
                    got.len(),
                    replies.len()
                )))
            }
        }
    };
    match answers {
        Ok(got) => {
            for (reply, m) in replies.into_iter().zip(got) {
                let answer = if m.error_code == 0 {
                    Ok(m)
                } else {
                    Err(tonic::Status::new(m.error_code.into(), m.error))
                };
                let _ = reply.send(answer);
            }
        }
        Err(status) => {
            for reply in replies {
                let _ = reply.send(Err(status.clone()));
            }
        }
    }
}

/// Makes the clients of one group to its peers, over the node's shared
/// connections.
#[derive(Clone)]
pub struct NetworkFactory {
    group: GroupId,
    limits: MessageLimits,
    clocks: ClockQuorum,
    channels: PeerChannels,
}

impl NetworkFactory {
    /// Every reply's peer time is recorded in `clocks`.
    pub fn new(
        group: GroupId,
        limits: MessageLimits,
        clocks: ClockQuorum,
        channels: PeerChannels,
    ) -> NetworkFactory {
        NetworkFactory {
            group,
            limits,
            clocks,
            channels,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &NodeInfo) -> PeerClient {
        let peer = self.channels.get(target, node);
        let client = peer.as_ref().map(|p| {
            RaftServiceClient::new(p.channel.clone())
                .max_decoding_message_size(self.limits.message_bytes_max())
        });
        PeerClient {
            group: self.group,
            target,
            client: client.map_err(Clone::clone),
            beats: peer.map(|p| p.beats).ok(),
            limits: self.limits,
            clocks: self.clocks.clone(),
        }
    }
}

/// The client from this node to one peer, for one group.
pub struct PeerClient {
    group: GroupId,
    target: u64,
    client: Result<RaftServiceClient<Channel>, String>,
    /// This peer's heartbeat batcher.
    beats: Option<mpsc::UnboundedSender<Beat>>,
    limits: MessageLimits,
    clocks: ClockQuorum,
}

#[derive(Debug, thiserror::Error)]
#[error("raft rpc to node {target} failed: {message}")]
struct TransportError {
    target: u64,
    message: String,
}

impl PeerClient {
    fn error(&self, message: impl Into<String>) -> TransportError {
        TransportError {
            target: self.target,
            message: message.into(),
        }
    }

    fn client(&self) -> Result<RaftServiceClient<Channel>, RPCError<TypeConfig>> {
        self.client
            .clone()
            .map_err(|m| RPCError::Unreachable(Unreachable::new(&self.error(m))))
    }

    fn status_error(&self, status: tonic::Status) -> RPCError<TypeConfig> {
        let err = self.error(format!("{}: {}", status.code(), status.message()));
        match status.code() {
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
                RPCError::Unreachable(Unreachable::new(&err))
            }
            _ => RPCError::Network(NetworkError::new(&err)),
        }
    }

    /// Sends `req`; `timeout` gets its encoded size in bytes.
    async fn call<Req, Resp, F, Fut>(
        &self,
        req: &Req,
        timeout: impl FnOnce(usize) -> Duration,
        rpc: F,
    ) -> Result<Resp, RPCError<TypeConfig>>
    where
        Req: serde::Serialize,
        Resp: serde::de::DeserializeOwned,
        F: FnOnce(RaftServiceClient<Channel>, RaftMessage) -> Fut,
        Fut: Future<Output = Result<tonic::Response<RaftMessage>, tonic::Status>>,
    {
        let data = encode(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let timeout = timeout(data.len());
        let msg = RaftMessage {
            group_id: self.group.0,
            data,
            ..Default::default()
        };
        let probe = self.clocks.probe();
        let fut = rpc(self.client()?, msg);
        let reply = match tokio::time::timeout(timeout, fut).await {
            Err(_) => {
                return Err(RPCError::Unreachable(Unreachable::new(
                    &self.error("timed out"),
                )));
            }
            Ok(Err(status)) => return Err(self.status_error(status)),
            Ok(Ok(reply)) => reply.into_inner(),
        };
        if reply.sender_time_ns != 0 {
            self.clocks.record(self.target, probe, reply.sender_time_ns);
        }
        decode("raft reply", &reply.data).map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = SnapshotHandle;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let (rpc, cut) = bounded_prefix(rpc, self.limits.append_bytes_max())
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let entries = rpc.entries.len();
        let ttl = option.hard_ttl();
        let timeout = |bytes| append_timeout(ttl, entries, bytes);
        let reply = match (&self.beats, entries) {
            // A heartbeat: out with the other groups' heartbeats to this peer.
            (Some(beats), 0) => {
                let beats = beats.clone();
                self.call(&rpc, timeout, |_, message| async move {
                    let (reply, answer) = oneshot::channel();
                    beats
                        .send(Beat {
                            message,
                            timeout: ttl,
                            reply,
                        })
                        .map_err(|_| tonic::Status::unavailable("heartbeat batcher stopped"))?;
                    let m = answer
                        .await
                        .map_err(|_| tonic::Status::unavailable("heartbeat batch dropped"))??;
                    Ok(tonic::Response::new(m))
                })
                .await?
            }
            _ => {
                self.call(&rpc, timeout, |mut c, m| async move {
                    c.append_entries(m).await
                })
                .await?
            }
        };
        // The follower took the prefix: openraft sends the rest next.
        Ok(match (reply, cut) {
            (AppendEntriesResponse::Success, Some(last)) => {
                AppendEntriesResponse::PartialSuccess(Some(last))
            }
            (reply, _) => reply,
        })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(
            &rpc,
            |_| option.hard_ttl(),
            |mut c, m| async move { c.vote(m).await },
        )
        .await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(
            &rpc,
            |_| option.hard_ttl(),
            |mut c, m| async move { c.pre_vote(m).await },
        )
        .await
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(
            &req,
            |_| option.hard_ttl(),
            |mut c, m| async move { c.transfer_leader(m).await },
        )
        .await
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: SnapshotOf<TypeConfig, SnapshotHandle>,
        cancel: impl Future<Output = ReplicationClosed> + openraft::OptionalSend + 'static,
        _option: RPCOption, // its TTL is per message; a snapshot is watched by progress
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let net = |e: &dyn std::fmt::Display| {
            StreamingError::Network(NetworkError::new(&self.error(e.to_string())))
        };
        let chunk_bytes = SNAPSHOT_CHUNK_BYTES.min(self.limits.append_bytes_max());
        let chunks =
            snapshot_chunks(self.group, &vote, &snapshot, chunk_bytes).map_err(|e| net(&e))?;
        let progress = Arc::new(Mutex::new(Progress::new()));
        let seen = progress.clone();
        let chunks = chunks
            .inspect(move |c| lock(&seen).sent(c.data.len()))
            .chain(std::iter::from_fn({
                let seen = progress.clone();
                move || {
                    lock(&seen).ended = true;
                    None
                }
            }));
        let mut client = self
            .client
            .clone()
            .map_err(|m| StreamingError::Unreachable(Unreachable::new(&self.error(m))))?;
        let send = client.install_snapshot(tokio_stream_iter(chunks));
        // No deadline for the whole transfer (it grows with the group):
        // the stream must keep moving, and the install after the last chunk
        // gets time in proportion to the bytes sent.
        let (mut send, mut cancel) = (std::pin::pin!(send), std::pin::pin!(cancel));
        let reply = loop {
            tokio::select! {
                closed = &mut cancel => return Err(StreamingError::Closed(closed)),
                r = &mut send => break r,
                _ = tokio::time::sleep(SNAPSHOT_WATCH_INTERVAL) => {
                    if let Some(why) = lock(&progress).stalled() {
                        return Err(StreamingError::Unreachable(Unreachable::new(
                            &self.error(format!("snapshot send timed out: {why}")),
                        )));
                    }
                }
            }
        };
        let reply = match reply {
            Ok(r) => r.into_inner(),
            Err(status) => return Err(net(&status)),
        };
        decode("snapshot reply", &reply.data).map_err(|e| net(&e))
    }
}

/// How long an AppendEntries may take. openraft asks for one heartbeat
/// interval, right for a heartbeat but not for entries: a follower must
/// write and fsync them, which on a loaded machine takes longer, and an
/// append cut off by a timeout is sent again from scratch (found at 10^7 tx
/// records: every append of a busy group timed out at 100 ms, and
/// throughput fell to a trickle). Entries get `APPEND_TIMEOUT_MIN` plus a
/// second per `APPEND_BYTES_PER_S`.
fn append_timeout(ttl: Duration, entries: usize, bytes: usize) -> Duration {
    if entries == 0 {
        return ttl;
    }
    let size = Duration::from_secs_f64(bytes as f64 / APPEND_BYTES_PER_S as f64);
    ttl.max(APPEND_TIMEOUT_MIN + size)
}

/// Keeps the longest prefix of `rpc`'s entries (at least one) whose encoded
/// size is within `bytes_max`; returns the last log id kept when entries
/// were cut. One entry always fits: the proposer bounds entries to a
/// quarter of the transport's limit (`MessageLimits`).
fn bounded_prefix(
    mut rpc: AppendEntriesRequest<TypeConfig>,
    bytes_max: usize,
) -> Result<
    (
        AppendEntriesRequest<TypeConfig>,
        Option<LogIdOf<TypeConfig>>,
    ),
    std::io::Error,
> {
    if rpc.entries.len() <= 1 {
        return Ok((rpc, None));
    }
    let (mut total, mut keep) = (0usize, 0usize);
    for entry in &rpc.entries {
        let n = encoded_len(entry)?;
        if keep > 0 && total.saturating_add(n) > bytes_max {
            break;
        }
        total = total.saturating_add(n);
        keep += 1;
    }
    if keep == rpc.entries.len() {
        return Ok((rpc, None));
    }
    rpc.entries.truncate(keep);
    let last = rpc.entries.last().map(|e| e.log_id);
    Ok((rpc, last))
}

/// Reads the whole snapshot into chunks lazily: an iterator the stream pulls.
fn snapshot_chunks(
    group: GroupId,
    vote: &VoteOf<TypeConfig>,
    snapshot: &SnapshotOf<TypeConfig, SnapshotHandle>,
    chunk_bytes: usize,
) -> Result<impl Iterator<Item = SnapshotChunk> + Send + 'static, std::io::Error> {
    let mut reader =
        SnapshotChunkReader::open(&snapshot.snapshot.path, group).map_err(std::io::Error::other)?;
    let mut first = Some((encode(vote)?, encode(&snapshot.meta)?));
    let mut done = false;
    Ok(std::iter::from_fn(move || {
        if done {
            return None;
        }
        let (vote, meta) = first.take().unwrap_or_default();
        match reader.next_piece(chunk_bytes) {
            Ok(Some((offset, data, crc32))) => Some(SnapshotChunk {
                group_id: group.0,
                vote,
                meta,
                data,
                crc32,
                offset,
                last: false,
            }),
            Ok(None) => {
                done = true;
                Some(SnapshotChunk {
                    group_id: group.0,
                    vote,
                    meta,
                    data: Vec::new(),
                    crc32: crc32fast::hash(&[]),
                    offset: 0,
                    last: true,
                })
            }
            Err(e) => {
                tracing::error!(error = %e, "reading snapshot for sending failed");
                done = true;
                None
            }
        }
    }))
}

fn tokio_stream_iter<I: Iterator<Item = SnapshotChunk> + Send + 'static>(
    iter: I,
) -> impl futures::Stream<Item = SnapshotChunk> + Send + 'static {
    futures::stream::iter(iter)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every group of a node reaches a peer over the node's one connection
    // to it: clients of two groups to the same peer share one channel.
    #[tokio::test]
    async fn groups_share_one_connection_per_peer() {
        let channels = PeerChannels::default();
        let clocks = ClockQuorum::new(1, crate::WallClock::default(), Duration::from_secs(1));
        let node = |port: u16| NodeInfo {
            addr: format!("127.0.0.1:{port}"),
            region: "eu".into(),
            dc: "a".into(),
        };
        let mut factories: Vec<NetworkFactory> = (1..=3)
            .map(|g| {
                NetworkFactory::new(
                    GroupId(g),
                    MessageLimits::default(),
                    clocks.clone(),
                    channels.clone(),
                )
            })
            .collect();
        for f in &mut factories {
            let c = f.new_client(2, &node(7002)).await;
            assert!(c.client.is_ok());
            f.new_client(3, &node(7003)).await;
        }
        assert_eq!(channels.len(), 2, "one connection per peer, not per group");
    }

    // Heartbeats keep openraft's deadline; appends with entries get time
    // to be written and fsynced, more for more bytes.
    #[test]
    fn appends_get_time_for_their_entries() {
        let ttl = Duration::from_millis(100);
        assert_eq!(append_timeout(ttl, 0, 0), ttl);
        let small = append_timeout(ttl, 1, 100);
        assert!(
            small >= APPEND_TIMEOUT_MIN && small < APPEND_TIMEOUT_MIN + Duration::from_millis(1)
        );
        assert!(append_timeout(ttl, 256, 64 << 20) >= APPEND_TIMEOUT_MIN + Duration::from_secs(8));
        assert_eq!(
            append_timeout(Duration::from_secs(60), 1, 100),
            Duration::from_secs(60)
        );
    }

    // A snapshot send has no overall deadline: a stream that keeps moving
    // lives as long as it needs; one that stops moving is given up on; the
    // receiver's install gets time in proportion to the bytes sent.
    #[tokio::test(start_paused = true)]
    async fn a_snapshot_send_is_timed_by_progress_not_by_size() {
        let mut p = Progress::new();
        for _ in 0..120 {
            tokio::time::advance(Duration::from_secs(1)).await;
            p.sent(1 << 20);
            assert_eq!(p.stalled(), None, "a moving stream never times out");
        }
        tokio::time::advance(SNAPSHOT_STALL_MAX + Duration::from_secs(1)).await;
        assert!(p.stalled().unwrap().contains("no progress"));

        let mut p = Progress::new();
        p.sent(800 << 20);
        p.ended = true;
        // 800 MiB: 30 s + 100 s to install.
        tokio::time::advance(Duration::from_secs(120)).await;
        assert_eq!(p.stalled(), None);
        tokio::time::advance(Duration::from_secs(20)).await;
        assert!(p.stalled().unwrap().contains("did not answer"));
    }
}
