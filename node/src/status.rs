use std::collections::BTreeMap;

use geowallet_proto::v1 as pb;
use geowallet_raft::{ClockQuorum, GroupRaft};
use geowallet_storage::Engine;
use openraft::async_runtime::WatchReceiver;

/// This node's view of its group, from openraft's metrics.
pub fn status<E: Engine>(
    node_id: u64,
    raft: &GroupRaft<E>,
    peers: &BTreeMap<u64, String>,
    clocks: &ClockQuorum,
) -> pb::StatusResponse {
    let m = raft.metrics().borrow_watched().clone();
    let offsets = clocks.offsets_ns();
    let matched: BTreeMap<u64, u64> = m
        .replication
        .as_ref()
        .map(|r| {
            r.iter()
                .map(|(id, log)| (*id, log.as_ref().map_or(0, |l| l.index)))
                .collect()
        })
        .unwrap_or_default();
    let members = m
        .membership_config
        .membership()
        .voter_ids()
        .map(|id| pb::Member {
            id,
            endpoint: peers.get(&id).cloned().unwrap_or_default(),
            matched_index: matched.get(&id).copied().unwrap_or(0),
            clock_offset_ns: offsets.get(&id).copied().unwrap_or(0),
        })
        .collect();
    let verdict = (m.state == openraft::ServerState::Leader)
        .then(|| clocks.verdict(m.membership_config.membership().voter_ids()));
    let refusing = verdict.as_ref().is_some_and(|v| !v.is_agreed());
    let leader_id = m.current_leader.unwrap_or(0);
    pb::StatusResponse {
        node_id,
        state: format!("{:?}", m.state).to_lowercase(),
        leader_id,
        leader_endpoint: peers.get(&leader_id).cloned().unwrap_or_default(),
        term: m.current_term,
        last_log_index: m.last_log_index.unwrap_or(0),
        committed_index: m.local_committed.as_ref().map_or(0, |l| l.index),
        applied_index: m.last_applied.as_ref().map_or(0, |l| l.index),
        members,
        snapshot_index: m.snapshot.as_ref().map_or(0, |l| l.index),
        clock_refusing_writes: refusing,
        clock_detail: verdict
            .filter(|_| refusing)
            .map(|v| v.to_string())
            .unwrap_or_default(),
    }
}
