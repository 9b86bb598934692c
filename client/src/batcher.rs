//! Coalesces concurrent commands bound for one node into `Execute` RPCs,
//! several in flight at once.

use std::sync::Arc;
use std::time::Duration;

use geowallet_proto::v1 as pb;
use geowallet_proto::v1::wallet_client::WalletClient;
use prost::Message;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tonic::transport::Channel;

/// Why an RPC gave no result for a command.
#[derive(Debug, Clone)]
pub(crate) enum CallError {
    /// The node is not the leader; the hint names the leader if known.
    NotLeader { endpoint: Option<String> },
    /// The node answered but could not take the command now.
    Unavailable(String),
    /// The request may or may not have reached the node (timeout, reset).
    Transport(String),
    /// The connection could not be made: the request was not sent.
    Unreachable(String),
    /// The node refused the whole call (malformed request).
    Invalid(String),
    /// The node does not offer this call (a cluster without a directory).
    Unsupported(String),
    /// The caller's identity may not make this call: nothing was done.
    PermissionDenied(String),
    /// The player is in another group (a read sent by a stale route).
    WrongGroup { group: u64, epoch: u64 },
}

struct Queued {
    command: pb::Command,
    reply: oneshot::Sender<Result<pb::CommandResult, CallError>>,
}

#[derive(Clone)]
pub(crate) struct Batcher {
    tx: mpsc::Sender<Queued>,
}

#[derive(Clone)]
pub(crate) struct BatchLimits {
    pub commands_per_rpc_max: usize,
    pub rpcs_in_flight_max: usize,
    pub rpc_timeout: Duration,
    /// Shard group every call is for (0: the node's default group).
    pub group: u64,
    /// The caller's region, sent with every call.
    pub region: String,
}

impl Batcher {
    pub(crate) fn start(client: WalletClient<Channel>, limits: BatchLimits) -> Batcher {
        let (tx, rx) = mpsc::channel(limits.commands_per_rpc_max * limits.rpcs_in_flight_max);
        tokio::spawn(run(client, rx, limits));
        Batcher { tx }
    }

    pub(crate) async fn submit(
        &self,
        command: pb::Command,
    ) -> Result<pb::CommandResult, CallError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Queued { command, reply })
            .await
            .map_err(|_| CallError::Unreachable("client connection task stopped".into()))?;
        rx.await
            .map_err(|_| CallError::Transport("client connection task dropped the call".into()))?
    }
}

async fn run(client: WalletClient<Channel>, mut rx: mpsc::Receiver<Queued>, limits: BatchLimits) {
    let slots = Arc::new(Semaphore::new(limits.rpcs_in_flight_max));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else { return };
        let mut batch = vec![first];
        while batch.len() < limits.commands_per_rpc_max {
            match rx.try_recv() {
                Ok(q) => batch.push(q),
                Err(_) => break,
            }
        }
        let client = client.clone();
        let (timeout, group, region) = (limits.rpc_timeout, limits.group, limits.region.clone());
        tokio::spawn(async move {
            send(client, batch, timeout, group, region).await;
            drop(slot);
        });
    }
}

/// Metadata key naming a call; the server's log lines for the call, up to
/// the apply of its commands, carry it.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// `<pid in hex>-<n>`: unique per process run, and the same inputs give the
/// same ids (no randomness, so simulations stay reproducible).
fn next_request_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{:x}-{n}", std::process::id())
}

async fn send(
    mut client: WalletClient<Channel>,
    batch: Vec<Queued>,
    timeout: Duration,
    group_id: u64,
    region: String,
) {
    let (commands, replies): (Vec<_>, Vec<_>) =
        batch.into_iter().map(|q| (q.command, q.reply)).unzip();
    let n = commands.len();
    let request_id = next_request_id();
    let mut req = tonic::Request::new(pb::ExecuteRequest {
        commands,
        region,
        group_id,
    });
    if let Ok(v) = request_id.parse() {
        req.metadata_mut().insert(REQUEST_ID_HEADER, v);
    }
    let result = match tokio::time::timeout(timeout, client.execute(req)).await {
        Err(_) => Err(CallError::Transport(format!(
            "no answer within {timeout:?} (request {request_id})"
        ))),
        Ok(Err(status)) => Err(call_error(&status)),
        Ok(Ok(resp)) => {
            let results = resp.into_inner().results;
            if results.len() == n {
                Ok(results)
            } else {
                Err(CallError::Transport(format!(
                    "server answered {} results for {n} commands",
                    results.len()
                )))
            }
        }
    };
    match result {
        Ok(results) => {
            for (reply, r) in replies.into_iter().zip(results) {
                let _ = reply.send(Ok(r));
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// Maps a gRPC status to what the retry loop needs to know.
pub(crate) fn call_error(status: &tonic::Status) -> CallError {
    if let Ok(detail) = pb::ErrorDetail::decode(status.details()) {
        match detail.kind {
            Some(pb::error_detail::Kind::NotLeader(n)) => {
                let endpoint = (!n.leader_endpoint.is_empty()).then_some(n.leader_endpoint);
                return CallError::NotLeader { endpoint };
            }
            Some(pb::error_detail::Kind::Unavailable(u)) => {
                return CallError::Unavailable(u.reason);
            }
            Some(pb::error_detail::Kind::WrongGroup(w)) => {
                return CallError::WrongGroup {
                    group: w.group_id,
                    epoch: w.epoch,
                };
            }
            None => {}
        }
    }
    if never_sent(status) {
        return CallError::Unreachable(status.message().to_string());
    }
    match status.code() {
        tonic::Code::InvalidArgument => CallError::Invalid(status.message().to_string()),
        tonic::Code::Unimplemented => CallError::Unsupported(status.message().to_string()),
        tonic::Code::PermissionDenied => CallError::PermissionDenied(status.message().to_string()),
        _ => CallError::Transport(format!("{}: {}", status.code(), status.message())),
    }
}

/// Whether the request certainly never left: the connection could not be
/// made. Decided by the kind of the `io::Error` in the status's source
/// chain (connection refused, no route, address not available), never by
/// its text, which hyper may reword. A reset or a timeout after connecting
/// may have carried the request: not this. Both this and the madsim path
/// are tested (`a_refused_connection_is_never_sent` on real sockets,
/// `refused_connect_is_never_sent` in the simulator).
fn never_sent(status: &tonic::Status) -> bool {
    use std::io::ErrorKind;
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::AddrNotAvailable
                    | ErrorKind::NetworkUnreachable
                    | ErrorKind::HostUnreachable
            );
        }
        source = s.source();
    }
    // madsim-tonic turns the io::Error of a failed connect into the status
    // itself, keeping no source; its connect step is the only place that
    // reports its transport error (a reset mid-call says "connection reset").
    cfg!(madsim)
        && status.code() == tonic::Code::Unavailable
        && status.message() == MADSIM_CONNECT_FAILED
}

/// madsim-tonic's status message for a connect that failed.
const MADSIM_CONNECT_FAILED: &str = "transport error";

#[cfg(test)]
mod tests {
    use super::*;

    fn status_from(kind: std::io::ErrorKind, text: &str) -> tonic::Status {
        tonic::Status::from_error(Box::new(std::io::Error::new(kind, text)))
    }

    // "Never sent" follows the io::Error's kind, whatever the wording: a
    // refused connect is never sent; a reset may have carried the request.
    #[test]
    fn never_sent_is_decided_by_the_io_error_kind() {
        use std::io::ErrorKind;
        let refused = status_from(ErrorKind::ConnectionRefused, "the peer said no");
        assert!(matches!(call_error(&refused), CallError::Unreachable(_)));
        let unreachable = status_from(ErrorKind::HostUnreachable, "no route");
        assert!(matches!(
            call_error(&unreachable),
            CallError::Unreachable(_)
        ));
        let reset = status_from(ErrorKind::ConnectionReset, "tcp connect error");
        assert!(matches!(call_error(&reset), CallError::Transport(_)));
        let plain = tonic::Status::unavailable("tcp connect error");
        assert!(matches!(call_error(&plain), CallError::Transport(_)));
    }
}
