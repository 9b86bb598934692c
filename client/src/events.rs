//! The change stream: a group's committed ledger events, in order, as an
//! async stream that survives disconnects and failovers.
//!
//! Every replica applies the same entries in the same order, so the stream
//! resumes on any node from the next log index; each entry's `prev_chain`
//! must equal the chain of the entry before it, which proves nothing was
//! skipped or altered in between (a mismatch ends the stream with
//! [`Error::ChainBroken`]). A consumer that keeps its [`Resume`] point with
//! its own results resumes exactly once after a restart of its own.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use geowallet_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::batcher::{CallError, call_error};
use crate::client::Client;
use crate::{Account, Error, JournalEntry};

/// A chain value (SHA-256).
pub type Chain = [u8; 32];

/// Where a change stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resume {
    /// The first log index wanted (0: the group's first event).
    pub next_index: u64,
    /// The chain of the last event the consumer saw, if any: the first
    /// event received must chain from it.
    pub chain: Option<Chain>,
}

impl Resume {
    /// From the group's first event.
    pub const START: Resume = Resume {
        next_index: 0,
        chain: None,
    };

    /// Right after `events`.
    pub fn after(events: &GroupEvents) -> Resume {
        Resume {
            next_index: events.log_index + 1,
            chain: Some(events.chain),
        }
    }
}

/// One journal line of the stream, with its account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLine {
    pub account: Account,
    pub line: JournalEntry,
}

/// The lines one Raft entry of a group created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEvents {
    pub group: u64,
    pub log_index: u64,
    /// Ledger time of the entry (ns since the Unix epoch).
    pub time_ns: u64,
    pub prev_chain: Chain,
    pub chain: Chain,
    pub lines: Vec<EventLine>,
}

/// Entries received and not yet taken by the consumer at most (then the
/// stream stops reading: back-pressure reaches the server).
const EVENTS_BUFFERED: usize = 1024;

/// The change stream of one group (see [`Client::events`]). Ends only with
/// an error it cannot get past, after `until`, or when dropped.
pub struct EventStream {
    rx: mpsc::Receiver<Result<GroupEvents, Error>>,
    task: tokio::task::JoinHandle<()>,
}

impl EventStream {
    /// The next entry's events; `None` once the stream ended.
    pub async fn next(&mut self) -> Option<Result<GroupEvents, Error>> {
        self.rx.recv().await
    }
}

impl futures_core::Stream for EventStream {
    type Item = Result<GroupEvents, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Client {
    /// Group `group`'s committed events from `from` on, in order, each once.
    /// Follows new events forever with `until` `None`; with `Some(i)` ends
    /// after the last event at or below log index `i` (a snapshot of the
    /// history, e.g. for an export). Reconnects to any node of the cluster
    /// after a disconnect or a failover and carries on from the next index.
    pub fn events(&self, group: u64, from: Resume, until: Option<u64>) -> EventStream {
        let (tx, rx) = mpsc::channel(EVENTS_BUFFERED);
        let client = self.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = follow(client, group, from, until, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        EventStream { rx, task }
    }
}

/// Pause between two attempts to (re)open the stream.
const REOPEN_PAUSE: Duration = Duration::from_millis(200);

async fn follow(
    client: Client,
    group: u64,
    mut at: Resume,
    until: Option<u64>,
    tx: &mpsc::Sender<Result<GroupEvents, Error>>,
) -> Result<(), Error> {
    let endpoints = client.seed_endpoints();
    if endpoints.is_empty() {
        return Err(Error::InvalidArgument {
            message: "no endpoints to stream from".into(),
        });
    }
    let budget = client.config().retry_budget;
    let mut progress_at = Instant::now();
    let mut last_error = String::new();
    for attempt in 0usize.. {
        // Without progress for the whole retry budget a bounded read gives
        // up; a follower keeps trying (it is meant to outlive outages).
        if until.is_some() && progress_at.elapsed() > budget {
            return Err(Error::Unavailable {
                message: format!("group {group}'s events: {last_error}"),
            });
        }
        if attempt > 0 {
            tokio::time::sleep(REOPEN_PAUSE).await;
        }
        let endpoint = &endpoints[attempt % endpoints.len()];
        let mut wallet = match client.wallet_client(endpoint) {
            Ok(w) => w,
            Err(e) => {
                last_error = format!("{endpoint}: {e:?}");
                continue;
            }
        };
        let req = pb::EventsRequest {
            group_id: group,
            from_index: at.next_index,
            until_index: until.unwrap_or(0),
        };
        let mut stream =
            match tokio::time::timeout(client.config().rpc_timeout, wallet.events(req)).await {
                Ok(Ok(resp)) => resp.into_inner(),
                Ok(Err(status)) => {
                    fatal(&status, group, at.next_index)?;
                    last_error = format!("{endpoint}: {}", status.message());
                    continue;
                }
                Err(_) => {
                    last_error = format!("{endpoint}: no answer");
                    continue;
                }
            };
        loop {
            match stream.message().await {
                Ok(Some(batch)) => {
                    for e in batch.entries {
                        let e = convert(e)?;
                        if e.log_index < at.next_index {
                            continue;
                        }
                        if let Some(chain) = at.chain
                            && chain != e.prev_chain
                        {
                            return Err(Error::ChainBroken {
                                group,
                                log_index: e.log_index,
                                message: "its prev_chain is not the chain of the event before it: \
                                          events were skipped, altered or reordered"
                                    .into(),
                            });
                        }
                        at = Resume::after(&e);
                        progress_at = Instant::now();
                        if tx.send(Ok(e)).await.is_err() {
                            return Ok(());
                        }
                    }
                }
                Ok(None) if until.is_some() => return Ok(()),
                Ok(None) => break,
                Err(status) => {
                    fatal(&status, group, at.next_index)?;
                    last_error = format!("{endpoint}: {}", status.message());
                    break;
                }
            }
        }
    }
    unreachable!("the attempts loop ends by returning")
}

/// Errors another node or a retry cannot fix (`at`: the index asked for).
fn fatal(status: &tonic::Status, group: u64, at: u64) -> Result<(), Error> {
    match call_error(status) {
        CallError::PermissionDenied(message) => Err(Error::PermissionDenied { message }),
        CallError::Invalid(message) => Err(Error::InvalidArgument { message }),
        CallError::Unsupported(message) => Err(Error::Unsupported { message }),
        _ if status.code() == tonic::Code::DataLoss => Err(Error::ChainBroken {
            group,
            log_index: at,
            message: status.message().to_string(),
        }),
        _ => Ok(()),
    }
}

fn chain(bytes: &[u8], what: &str) -> Result<Chain, Error> {
    bytes.try_into().map_err(|_| Error::Protocol {
        message: format!("{what} has {} bytes, not 32", bytes.len()),
    })
}

fn convert(e: pb::GroupEvents) -> Result<GroupEvents, Error> {
    Ok(GroupEvents {
        group: e.group_id,
        log_index: e.log_index,
        time_ns: e.time_ns,
        prev_chain: chain(&e.prev_chain, "prev_chain")?,
        chain: chain(&e.chain, "chain")?,
        lines: e
            .lines
            .into_iter()
            .map(|l| EventLine {
                account: Account::new(l.player, l.currency.clone()),
                line: JournalEntry {
                    seq: l.seq,
                    group: l.group,
                    log_index: l.log_index,
                    position: l.position,
                    tx_id: l.tx_id,
                    kind: l.kind,
                    amount: l.amount,
                    balance: l.balance.unwrap_or_default().into(),
                },
            })
            .collect(),
    })
}
