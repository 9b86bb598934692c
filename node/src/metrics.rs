//! The node's Prometheus metrics: what an operator watches.
//!
//! Counters and histograms are updated where things happen (client API
//! calls, proposals, WAL syncs, moves); the per-group gauges (leader, term,
//! commit and apply lag, the dual-datacenter degraded flag, the clock
//! verdict) are read from openraft's metrics when the endpoint is scraped,
//! so they are never stale. `render` gives the text exposition format; the
//! production node serves it over HTTP at `/metrics` (`serve`).

use std::time::Duration;

use geowallet_proto::v1 as pb;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// Path the metrics are served at.
pub const METRICS_PATH: &str = "/metrics";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: u64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms .. ~8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

fn batch_histogram() -> Histogram {
    // 1 .. 4096 requests (or appends) per entry (or sync).
    Histogram::new(exponential_buckets(1.0, 2.0, 13))
}

/// Per-group gauges, set at every scrape.
#[derive(Default)]
struct GroupGauges {
    is_leader: Family<GroupLabels, Gauge>,
    leader_id: Family<GroupLabels, Gauge>,
    term: Family<GroupLabels, Gauge>,
    last_log_index: Family<GroupLabels, Gauge>,
    committed_index: Family<GroupLabels, Gauge>,
    applied_index: Family<GroupLabels, Gauge>,
    snapshot_index: Family<GroupLabels, Gauge>,
    commit_lag: Family<GroupLabels, Gauge>,
    apply_lag: Family<GroupLabels, Gauge>,
    degraded: Family<GroupLabels, Gauge>,
    clock_refusing_writes: Family<GroupLabels, Gauge>,
}

impl GroupGauges {
    fn all(&self) -> [&Family<GroupLabels, Gauge>; 11] {
        [
            &self.is_leader,
            &self.leader_id,
            &self.term,
            &self.last_log_index,
            &self.committed_index,
            &self.applied_index,
            &self.snapshot_index,
            &self.commit_lag,
            &self.apply_lag,
            &self.degraded,
            &self.clock_refusing_writes,
        ]
    }
}

/// One node's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<CodeLabels, Counter>,
    request_seconds: Family<MethodLabels, Histogram, fn() -> Histogram>,
    refusals: Family<CodeLabels, Counter>,
    proposal_requests: Family<GroupLabels, Histogram, fn() -> Histogram>,
    wal_sync_seconds: Histogram,
    wal_sync_appends: Histogram,
    moves: Family<OutcomeLabels, Counter>,
    groups: GroupGauges,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

/// gRPC status codes as Prometheus label values (`ok`, `permission_denied`, ...).
pub fn code_label(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "ok",
        Cancelled => "cancelled",
        Unknown => "unknown",
        InvalidArgument => "invalid_argument",
        DeadlineExceeded => "deadline_exceeded",
        NotFound => "not_found",
        AlreadyExists => "already_exists",
        PermissionDenied => "permission_denied",
        ResourceExhausted => "resource_exhausted",
        FailedPrecondition => "failed_precondition",
        Aborted => "aborted",
        OutOfRange => "out_of_range",
        Unimplemented => "unimplemented",
        Internal => "internal",
        Unavailable => "unavailable",
        DataLoss => "data_loss",
        Unauthenticated => "unauthenticated",
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("geowallet");
        let requests = Family::<CodeLabels, Counter>::default();
        registry.register(
            "api_requests",
            "Client API calls answered, by method and gRPC status code",
            requests.clone(),
        );
        let request_seconds: Family<MethodLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "api_request",
            "Client API call latency, by method",
            Unit::Seconds,
            request_seconds.clone(),
        );
        let refusals = Family::<CodeLabels, Counter>::default();
        registry.register(
            "api_refusals",
            "Commands refused by the ledger or the router (in answered calls), by method and refusal code",
            refusals.clone(),
        );
        let proposal_requests: Family<GroupLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(batch_histogram);
        registry.register(
            "proposal_batch_requests",
            "Requests per proposed Raft entry (leader side), by group",
            proposal_requests.clone(),
        );
        let wal_sync_seconds = latency_histogram();
        registry.register_with_unit(
            "wal_fsync",
            "Time of one write-ahead log fsync (group commit for every group of the node)",
            Unit::Seconds,
            wal_sync_seconds.clone(),
        );
        let wal_sync_appends = batch_histogram();
        registry.register(
            "wal_fsync_batch_appends",
            "Log appends made durable by one fsync",
            wal_sync_appends.clone(),
        );
        let moves = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "wallet_moves",
            "Wallet moves between groups run by this node, by outcome",
            moves.clone(),
        );
        let groups = GroupGauges::default();
        let help: [(&str, &str); 11] = [
            ("group_is_leader", "1 if this node leads the group"),
            (
                "group_leader_id",
                "Node id of the group's leader as this node knows it (0: none)",
            ),
            ("group_term", "The group's current Raft term"),
            ("group_last_log_index", "Last index in this replica's log"),
            (
                "group_committed_index",
                "Last index this replica knows committed",
            ),
            (
                "group_applied_index",
                "Last index applied to this replica's ledger",
            ),
            (
                "group_snapshot_index",
                "Index of this replica's last snapshot",
            ),
            (
                "group_commit_lag",
                "Entries in the log not yet known committed",
            ),
            ("group_apply_lag", "Committed entries not yet applied"),
            (
                "group_dual_dc_degraded",
                "1 if the leader acknowledges writes without one datacenter of its home region",
            ),
            (
                "group_clock_refusing_writes",
                "1 if the leader refuses writes because its clock disagrees with a quorum",
            ),
        ];
        for ((name, text), family) in help.iter().zip(groups.all()) {
            registry.register(*name, *text, family.clone());
        }
        Metrics {
            registry,
            requests,
            request_seconds,
            refusals,
            proposal_requests,
            wal_sync_seconds,
            wal_sync_appends,
            moves,
            groups,
        }
    }

    /// One client API call answered with `code` after `took`.
    pub fn api_call(&self, method: &str, code: tonic::Code, took: Duration) {
        self.requests
            .get_or_create(&CodeLabels {
                method: method.to_string(),
                code: code_label(code).to_string(),
            })
            .inc();
        self.request_seconds
            .get_or_create(&MethodLabels {
                method: method.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// The refusals among `results` (one per command of an answered call).
    pub fn refusals<'a>(&self, method: &str, codes: impl IntoIterator<Item = &'a str>) {
        for code in codes {
            self.refusals
                .get_or_create(&CodeLabels {
                    method: method.to_string(),
                    code: code.to_string(),
                })
                .inc();
        }
    }

    /// A Raft entry of `requests` proposed by `group`'s leader.
    pub fn proposal(&self, group: u64, requests: usize) {
        self.proposal_requests
            .get_or_create(&GroupLabels { group })
            .observe(requests as f64);
    }

    /// One WAL fsync that took `took` and made `appends` appends durable.
    pub fn wal_sync(&self, took: Duration, appends: usize) {
        self.wal_sync_seconds.observe(took.as_secs_f64());
        self.wal_sync_appends.observe(appends as f64);
    }

    /// A wallet move this node ran ended with `outcome`.
    pub fn wallet_move(&self, outcome: &str) {
        self.moves
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// The text exposition of every metric, the per-group gauges set from
    /// `groups` (this node's status; groups it no longer hosts vanish).
    pub fn render(&self, groups: &[pb::GroupStatus]) -> String {
        for family in self.groups.all() {
            family.clear();
        }
        let g = &self.groups;
        for s in groups {
            let l = GroupLabels { group: s.id };
            let set = |family: &Family<GroupLabels, Gauge>, v: u64| {
                family
                    .get_or_create(&l)
                    .set(i64::try_from(v).unwrap_or(i64::MAX));
            };
            set(&g.is_leader, u64::from(s.state == "leader"));
            set(&g.leader_id, s.leader_id);
            set(&g.term, s.term);
            set(&g.last_log_index, s.last_log_index);
            set(&g.committed_index, s.committed_index);
            set(&g.applied_index, s.applied_index);
            set(&g.snapshot_index, s.snapshot_index);
            set(
                &g.commit_lag,
                s.last_log_index.saturating_sub(s.committed_index),
            );
            set(
                &g.apply_lag,
                s.committed_index.saturating_sub(s.applied_index),
            );
            set(&g.degraded, u64::from(s.degraded));
            set(&g.clock_refusing_writes, u64::from(s.clock_refusing_writes));
        }
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Serves `render()` at [`METRICS_PATH`] over plain HTTP/1.1 on `listener`
/// until the task is dropped. Any other path is 404, any other method 405.
/// (Prometheus' own exposition: no balances, no player data.)
#[cfg(not(madsim))]
pub async fn serve(
    listener: tokio::net::TcpListener,
    render: std::sync::Arc<dyn Fn() -> String + Send + Sync>,
) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::{Method, Response, StatusCode};

    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let render = render.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                let render = render.clone();
                async move {
                    let (status, body) = match (req.method(), req.uri().path()) {
                        (&Method::GET, METRICS_PATH) => (StatusCode::OK, render()),
                        (_, METRICS_PATH) => (
                            StatusCode::METHOD_NOT_ALLOWED,
                            format!("use GET {METRICS_PATH}\n"),
                        ),
                        (_, path) => (
                            StatusCode::NOT_FOUND,
                            format!("no {path} here; metrics are at {METRICS_PATH}\n"),
                        ),
                    };
                    let content_type = if status == StatusCode::OK {
                        "application/openmetrics-text; version=1.0.0; charset=utf-8"
                    } else {
                        "text/plain; charset=utf-8"
                    };
                    Response::builder()
                        .status(status)
                        .header("content-type", content_type)
                        .body(Full::new(Bytes::from(body)))
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
            // A scraper that stalls is dropped, not kept forever.
            match tokio::time::timeout(Duration::from_secs(60), conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "metrics connection ended"),
                Err(_) => tracing::debug!(%peer, "metrics connection timed out"),
            }
        });
    }
}

/// Counts and times every call of the gRPC services it wraps, by method
/// (the last segment of the path) and the gRPC status it was answered
/// with; and gives each call a request id (the client's `x-request-id`, or
/// a new one) on a tracing span that the handler's logs carry.
#[cfg(not(madsim))]
#[derive(Clone)]
pub struct ApiLayer {
    pub metrics: std::sync::Arc<Metrics>,
    pub node_id: u64,
}

#[cfg(not(madsim))]
impl<S> tower::Layer<S> for ApiLayer {
    type Service = ApiService<S>;

    fn layer(&self, inner: S) -> ApiService<S> {
        ApiService {
            inner,
            layer: self.clone(),
        }
    }
}

#[cfg(not(madsim))]
#[derive(Clone)]
pub struct ApiService<S> {
    inner: S,
    layer: ApiLayer,
}

/// Header a client names its call with, carried into the server's logs.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

#[cfg(not(madsim))]
static NEXT_REQUEST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

#[cfg(not(madsim))]
impl<S, B, RB> tower::Service<tonic::codegen::http::Request<B>> for ApiService<S>
where
    S: tower::Service<
            tonic::codegen::http::Request<B>,
            Response = tonic::codegen::http::Response<RB>,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: tonic::codegen::http::Request<B>) -> Self::Future {
        use tracing::Instrument;
        let method = req
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let request_id = req
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 64)
            .map(str::to_string)
            .unwrap_or_else(|| {
                let n = NEXT_REQUEST.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                format!("n{}-{n}", self.layer.node_id)
            });
        let span = tracing::info_span!("request", id = %request_id, method = %method);
        let metrics = self.layer.metrics.clone();
        let started = std::time::Instant::now();
        let call = self.inner.call(req).instrument(span);
        Box::pin(async move {
            let answer = call.await;
            if let Ok(resp) = &answer {
                // Errors are trailers-only responses: the status is in the
                // headers. A response without one is a success whose status
                // comes in the trailers.
                let code = resp
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map_or(tonic::Code::Ok, tonic::Code::from_i32);
                // A path no service implements is any string a caller
                // likes: one label for all of them keeps the series bounded.
                let method = if code == tonic::Code::Unimplemented {
                    "unknown"
                } else {
                    method.as_str()
                };
                metrics.api_call(method, code, started.elapsed());
            }
            answer
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_every_family_and_drops_groups_no_longer_hosted() {
        let m = Metrics::new();
        m.api_call("Execute", tonic::Code::Ok, Duration::from_millis(3));
        m.api_call(
            "Execute",
            tonic::Code::PermissionDenied,
            Duration::from_millis(1),
        );
        m.refusals("Execute", ["insufficient_funds", "insufficient_funds"]);
        m.proposal(1, 7);
        m.wal_sync(Duration::from_micros(800), 3);
        m.wallet_move("moved");
        let leader = pb::GroupStatus {
            id: 1,
            state: "leader".into(),
            leader_id: 2,
            term: 5,
            last_log_index: 10,
            committed_index: 8,
            applied_index: 7,
            degraded: true,
            ..Default::default()
        };
        let text = m.render(std::slice::from_ref(&leader));
        for line in [
            "geowallet_api_requests_total{method=\"Execute\",code=\"ok\"} 1",
            "geowallet_api_requests_total{method=\"Execute\",code=\"permission_denied\"} 1",
            "geowallet_api_refusals_total{method=\"Execute\",code=\"insufficient_funds\"} 2",
            "geowallet_api_request_seconds_count{method=\"Execute\"} 2",
            "geowallet_proposal_batch_requests_sum{group=\"1\"} 7.0",
            "geowallet_wal_fsync_seconds_count 1",
            "geowallet_wallet_moves_total{outcome=\"moved\"} 1",
            "geowallet_group_is_leader{group=\"1\"} 1",
            "geowallet_group_term{group=\"1\"} 5",
            "geowallet_group_commit_lag{group=\"1\"} 2",
            "geowallet_group_apply_lag{group=\"1\"} 1",
            "geowallet_group_dual_dc_degraded{group=\"1\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        let text = m.render(&[]);
        assert!(!text.contains("geowallet_group_term{"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
