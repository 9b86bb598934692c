use std::collections::BTreeMap;

use geowallet_proto::v1 as pb;
use geowallet_raft::{ClockQuorum, NodeInfo};
use geowallet_storage::Engine;
use openraft::async_runtime::WatchReceiver;

use crate::group_host::{Group, GroupHost};

/// This node's view of the cluster: every group it hosts, from openraft's
/// metrics, and the topology it knows. The top-level group fields describe
/// the default group (what older tools read).
pub fn status<E: Engine>(host: &GroupHost<E>) -> pb::StatusResponse {
    let groups: Vec<pb::GroupStatus> = host
        .groups()
        .iter()
        .map(|g| group_status(g, host.nodes(), host.clocks()))
        .collect();
    let me = host.me().cloned().unwrap_or_default();
    let nodes = host
        .nodes()
        .iter()
        .map(|(id, n)| pb::NodeRef {
            id: *id,
            endpoint: n.addr.clone(),
            region: n.region.clone(),
            dc: n.dc.clone(),
        })
        .collect();
    // The default group: the lowest shard group (the directory only when
    // this node hosts nothing else).
    let first = groups
        .iter()
        .find(|g| g.id != 0)
        .or(groups.first())
        .cloned()
        .unwrap_or_default();
    pb::StatusResponse {
        node_id: host.node_id(),
        state: first.state,
        leader_id: first.leader_id,
        leader_endpoint: host
            .nodes()
            .get(&first.leader_id)
            .map(|n| n.addr.clone())
            .unwrap_or_default(),
        term: first.term,
        last_log_index: first.last_log_index,
        committed_index: first.committed_index,
        applied_index: first.applied_index,
        members: first.members,
        snapshot_index: first.snapshot_index,
        clock_refusing_writes: first.clock_refusing_writes,
        clock_detail: first.clock_detail,
        groups,
        nodes,
        region: me.region,
        dc: me.dc,
        moves: None,
    }
}

fn group_status<E: Engine>(
    g: &Group<E>,
    nodes: &BTreeMap<u64, NodeInfo>,
    clocks: &ClockQuorum,
) -> pb::GroupStatus {
    let m = g.raft.metrics().borrow_watched().clone();
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
    let membership = m.membership_config.membership();
    let members = membership
        .voter_ids()
        .map(|id| {
            // The membership's own record first: it is what the group
            // replicates to; the address book only fills gaps.
            let info = membership
                .get_node(&id)
                .or_else(|| nodes.get(&id))
                .cloned()
                .unwrap_or_default();
            pb::Member {
                id,
                endpoint: info.addr,
                matched_index: matched.get(&id).copied().unwrap_or(0),
                clock_offset_ns: offsets.get(&id).copied().unwrap_or(0),
                region: info.region,
                dc: info.dc,
            }
        })
        .collect();
    let verdict =
        (m.state == openraft::ServerState::Leader).then(|| clocks.verdict(membership.voter_ids()));
    let refusing = verdict.as_ref().is_some_and(|v| !v.is_agreed());
    pb::GroupStatus {
        id: g.id.0,
        home_region: g.home_region.clone(),
        state: format!("{:?}", m.state).to_lowercase(),
        leader_id: m.current_leader.unwrap_or(0),
        term: m.current_term,
        last_log_index: m.last_log_index.unwrap_or(0),
        committed_index: m.local_committed.as_ref().map_or(0, |l| l.index),
        applied_index: m.last_applied.as_ref().map_or(0, |l| l.index),
        snapshot_index: m.snapshot.as_ref().map_or(0, |l| l.index),
        members,
        clock_refusing_writes: refusing,
        clock_detail: verdict
            .filter(|_| refusing)
            .map(|v| v.to_string())
            .unwrap_or_default(),
        degraded: m.state == openraft::ServerState::Leader && g.dual_dc.degraded(),
        dual_dc: g.dual_dc.policy().to_string(),
    }
}
