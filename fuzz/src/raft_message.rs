//! Target `raft_message`: a peer's bytes as the Raft transport gets them.
//! Input: one byte choosing the RPC, then the protobuf message it carries
//! (`RaftMessage`, `RaftBatch` or the first `SnapshotChunk`). The payloads
//! are decoded with the Raft codec into the openraft types
//! `RaftRpcService` decodes (requests) and `PeerClient` decodes (replies).
//! Every layer must fail as a typed error or round-trip unchanged.

use geowallet_ledger::{Amount, Command, CreditKind, PlayerId};
use geowallet_proto::raft::{RaftBatch, RaftMessage, SnapshotChunk};
use geowallet_raft::{AppliedState, NodeInfo, Proposal, TypeConfig};
use openraft::alias::{EntryOf, LogIdOf, SnapshotMetaOf, StoredMembershipOf, VoteOf};
use openraft::impls::leader_id_adv::LeaderId;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{EntryPayload, LogId, Membership, StoredMembership};
use prost::Message;

use crate::roundtrip::{postcard_fixed_point, postcard_value, prost_message};

/// What a node receives over `RaftService`: the requests it serves, and
/// the replies to the requests it sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    AppendEntries,
    AppendBatch,
    /// `Vote` and `PreVote` (the same request type).
    Vote,
    TransferLeader,
    InstallSnapshot,
    AppendEntriesReply,
    VoteReply,
    TransferLeaderReply,
    SnapshotReply,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::AppendEntries,
        Kind::AppendBatch,
        Kind::Vote,
        Kind::TransferLeader,
        Kind::InstallSnapshot,
        Kind::AppendEntriesReply,
        Kind::VoteReply,
        Kind::TransferLeaderReply,
        Kind::SnapshotReply,
    ];

    fn of(byte: u8) -> Kind {
        Kind::ALL[usize::from(byte) % Kind::ALL.len()]
    }

    fn byte(self) -> u8 {
        let i = Kind::ALL.iter().position(|k| *k == self).expect("listed");
        u8::try_from(i).expect("few kinds")
    }
}

pub fn run(data: &[u8]) {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let kind = Kind::of(kind);
    match kind {
        Kind::AppendBatch => {
            if let Some(batch) = prost_message::<RaftBatch>(body) {
                batch.messages.iter().for_each(|m| append_entries(&m.data));
            }
        }
        Kind::InstallSnapshot => {
            if let Some(first) = prost_message::<SnapshotChunk>(body) {
                postcard_value::<VoteOf<TypeConfig>>("snapshot vote", &first.vote);
                postcard_value::<SnapshotMetaOf<TypeConfig>>("snapshot meta", &first.meta);
            }
        }
        _ => {
            if let Some(m) = prost_message::<RaftMessage>(body) {
                payload(kind, &m.data);
            }
        }
    }
}

/// The payload of a `RaftMessage` sent as `kind`.
fn payload(kind: Kind, data: &[u8]) {
    match kind {
        Kind::AppendEntries => append_entries(data),
        Kind::Vote => drop(postcard_value::<VoteRequest<TypeConfig>>("vote", data)),
        Kind::TransferLeader => drop(postcard_value::<TransferLeaderRequest<TypeConfig>>(
            "transfer leader",
            data,
        )),
        Kind::AppendEntriesReply => drop(postcard_value::<AppendEntriesResponse<TypeConfig>>(
            "raft reply",
            data,
        )),
        Kind::VoteReply => drop(postcard_value::<VoteResponse<TypeConfig>>(
            "raft reply",
            data,
        )),
        Kind::TransferLeaderReply => drop(postcard_value::<TransferLeaderResponse<TypeConfig>>(
            "raft reply",
            data,
        )),
        Kind::SnapshotReply => drop(postcard_value::<SnapshotResponse<TypeConfig>>(
            "snapshot reply",
            data,
        )),
        Kind::AppendBatch | Kind::InstallSnapshot => unreachable!("not a RaftMessage payload"),
    }
}

/// An AppendEntries payload; its entries (and the proposals in them) must
/// come back equal from their encoding.
fn append_entries(data: &[u8]) {
    let Some(rpc) =
        postcard_fixed_point::<AppendEntriesRequest<TypeConfig>>("append entries", data)
    else {
        return;
    };
    let again: AppendEntriesRequest<TypeConfig> =
        crate::roundtrip::reencoded("append entries", &rpc);
    assert_eq!(again.vote, rpc.vote);
    assert_eq!(again.prev_log_id, rpc.prev_log_id);
    assert_eq!(again.entries, rpc.entries);
    assert_eq!(again.leader_commit, rpc.leader_commit);
}

fn message(kind: Kind, payload: &impl serde::Serialize) -> Vec<u8> {
    let m = RaftMessage {
        group_id: 1,
        data: geowallet_raft::encode(payload).expect("encodes"),
        ..Default::default()
    };
    let mut out = vec![kind.byte()];
    out.extend(m.encode_to_vec());
    out
}

fn log_id(term: u64, node_id: u64, index: u64) -> LogIdOf<TypeConfig> {
    LogId::new(LeaderId { term, node_id }, index)
}

fn membership() -> Membership<u64, NodeInfo> {
    let node = |n: u64| NodeInfo {
        addr: format!("10.0.0.{n}:7000"),
        region: "eu".into(),
        dc: if n == 2 { "b" } else { "a" }.into(),
    };
    let voters = std::collections::BTreeSet::from([1, 2, 3]);
    let nodes: std::collections::BTreeMap<u64, NodeInfo> = (1..=3).map(|n| (n, node(n))).collect();
    Membership::new(vec![voters], nodes).expect("a valid membership")
}

fn stored_membership() -> StoredMembershipOf<TypeConfig> {
    StoredMembership::new(Some(log_id(1, 1, 1)), membership())
}

/// The applied position a snapshot of the seeds' group records.
pub fn applied_state(index: u64) -> AppliedState {
    AppliedState {
        last_applied: Some(log_id(2, 1, index)),
        membership: stored_membership(),
    }
}

fn entries() -> Vec<EntryOf<TypeConfig>> {
    let credit = Command::Credit {
        account: crate::apply::eur(1),
        amount: Amount(500),
        kind: CreditKind::Win,
    };
    let mut win = crate::apply::sample_requests()[0].clone();
    win.command = credit;
    let step = geowallet_ledger::MoveCommand::Refuse {
        player: PlayerId(1),
        id: geowallet_ledger::MoveId {
            from_epoch: 1,
            attempt: 0,
            from_group: 2,
        },
    };
    let payloads = [
        EntryPayload::Blank,
        EntryPayload::Membership(membership()),
        EntryPayload::Normal(Proposal::ledger(crate::T0_NS, vec![win])),
        EntryPayload::Normal(Proposal::wallet_move(crate::T0_NS, step)),
    ];
    payloads
        .into_iter()
        .zip(10..)
        .map(|(payload, index)| openraft::Entry {
            log_id: log_id(2, 1, index),
            payload,
        })
        .collect()
}

/// Every request and reply, with plausible contents.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let vote = VoteOf::<TypeConfig>::new_committed(2, 1);
    let append = AppendEntriesRequest::<TypeConfig> {
        vote,
        prev_log_id: Some(log_id(2, 1, 9)),
        entries: entries(),
        leader_commit: Some(log_id(2, 1, 9)),
    };
    let heartbeat = AppendEntriesRequest::<TypeConfig> {
        vote,
        prev_log_id: Some(log_id(2, 1, 13)),
        entries: Vec::new(),
        leader_commit: Some(log_id(2, 1, 13)),
    };
    let batch = RaftBatch {
        messages: [1, 2]
            .map(|group_id| RaftMessage {
                group_id,
                data: geowallet_raft::encode(&heartbeat).expect("encodes"),
                ..Default::default()
            })
            .to_vec(),
    };
    let meta = SnapshotMetaOf::<TypeConfig> {
        last_log_id: Some(log_id(2, 1, 13)),
        last_membership: stored_membership(),
    };
    let chunk = SnapshotChunk {
        group_id: 1,
        vote: geowallet_raft::encode(&vote).expect("encodes"),
        meta: geowallet_raft::encode(&meta).expect("encodes"),
        ..Default::default()
    };
    let candidate = VoteOf::<TypeConfig>::new(3, 2);
    let last = Some(log_id(2, 1, 13));
    let transfer = TransferLeaderRequest::<TypeConfig>::new(vote, 2, last);
    let transferred: TransferLeaderResponse<TypeConfig> = Ok(());
    vec![
        (
            "append_entries".into(),
            message(Kind::AppendEntries, &append),
        ),
        ("heartbeat".into(), message(Kind::AppendEntries, &heartbeat)),
        ("append_batch".into(), {
            let mut out = vec![Kind::AppendBatch.byte()];
            out.extend(batch.encode_to_vec());
            out
        }),
        (
            "vote".into(),
            message(Kind::Vote, &VoteRequest::<TypeConfig>::new(candidate, last)),
        ),
        (
            "transfer_leader".into(),
            message(Kind::TransferLeader, &transfer),
        ),
        ("install_snapshot".into(), {
            let mut out = vec![Kind::InstallSnapshot.byte()];
            out.extend(chunk.encode_to_vec());
            out
        }),
        (
            "append_entries_reply".into(),
            message(
                Kind::AppendEntriesReply,
                &AppendEntriesResponse::<TypeConfig>::HigherVote(candidate),
            ),
        ),
        (
            "vote_reply".into(),
            message(
                Kind::VoteReply,
                &VoteResponse::<TypeConfig>::new(vote, last, true),
            ),
        ),
        (
            "transfer_leader_reply".into(),
            message(Kind::TransferLeaderReply, &transferred),
        ),
        (
            "snapshot_reply".into(),
            message(
                Kind::SnapshotReply,
                &SnapshotResponse::<TypeConfig>::new(vote),
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves the seeds pass the target's checks.
    #[test]
    fn seeds_pass() {
        for (name, input) in seeds() {
            println!("{name}");
            run(&input);
        }
    }
}
