//! Target `move_step`: a peer's bytes as `MoveService` gets them (the
//! steps of wallet moves and transfers between groups, sent by another
//! group's leader), and the replies a node decodes after sending one.
//! Input: one byte choosing the message, then its protobuf encoding. A
//! step's command decodes as `MoveStepService` decodes it (a `DirCommand`
//! for the directory, group 0; else a `MoveCommand`) and is then applied,
//! to the directory's rows or to a group holding a funded wallet: the
//! ledger's invariants must hold after it, and its reply must survive its
//! encoding.

use std::sync::OnceLock;

use geowallet_ledger::{
    EntryContext, LedgerConfig, LogIndex, MoveCommand, MoveId, MoveOutcome, PlayerId, State, TxId,
};
use geowallet_proto::raft::{MoveStep, MoveStepReply};
use geowallet_raft::directory::{DirCommand, DirReply, GroupEntry, Placement};
use geowallet_storage::GroupId;
use prost::Message;

use crate::apply::{DirectoryRows, eur, sample_requests};
use crate::roundtrip::{postcard_value, prost_message, reencoded};

/// The shard group the steps are applied in.
const GROUP: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Step,
    /// A shard group's reply: a `MoveOutcome`.
    ShardReply,
    /// The directory's reply: a `DirReply`.
    DirectoryReply,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Step, Kind::ShardReply, Kind::DirectoryReply];

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
    match Kind::of(kind) {
        Kind::Step => {
            if let Some(step) = prost_message::<MoveStep>(body) {
                apply(&step);
            }
        }
        Kind::ShardReply => {
            if let Some(reply) = prost_message::<MoveStepReply>(body) {
                postcard_value::<MoveOutcome>("move outcome", &reply.outcome);
            }
        }
        Kind::DirectoryReply => {
            if let Some(reply) = prost_message::<MoveStepReply>(body) {
                postcard_value::<DirReply>("directory reply", &reply.outcome);
            }
        }
    }
}

fn apply(step: &MoveStep) {
    // An empty command is a probe of leadership: nothing to decode.
    if step.command.is_empty() {
        return;
    }
    if step.group_id == GroupId::DIRECTORY.0 {
        if let Some(cmd) = postcard_value::<DirCommand>("directory step", &step.command) {
            let mut rows = base_directory().clone();
            rows.apply(&[cmd]);
        }
        return;
    }
    let Some(cmd) = postcard_value::<MoveCommand>("move step", &step.command) else {
        return;
    };
    let mut state = base_group().clone();
    let ctx = EntryContext {
        group: GROUP,
        log_index: LogIndex(3),
        leader_time_ns: crate::T0_NS + 10_000,
    };
    let outcome = state.apply_move(ctx, &cmd);
    state.check_invariants();
    assert_eq!(reencoded("move outcome", &outcome), outcome);
}

/// A group holding player 2's funded wallet (player 1 is not here).
fn base_group() -> &'static State {
    static BASE: OnceLock<State> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut state = State::new(LedgerConfig::default());
        let requests: Vec<_> = sample_requests()
            .into_iter()
            .filter(|r| r.command.account() == eur(2))
            .collect();
        let ctx = EntryContext {
            group: GROUP,
            log_index: LogIndex(1),
            leader_time_ns: crate::T0_NS,
        };
        state.apply(ctx, &requests);
        state.take_changes();
        state
    })
}

/// The directory with two groups and players 1 and 2 placed.
fn base_directory() -> &'static DirectoryRows {
    static BASE: OnceLock<DirectoryRows> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut rows = DirectoryRows::default();
        let groups = [(1, "eu"), (2, "us")].map(|(id, region)| GroupEntry {
            id,
            home_region: region.into(),
        });
        rows.apply(&[DirCommand::SetGroups {
            groups: groups.to_vec(),
        }]);
        for player in [1, 2] {
            let region = "eu".to_string();
            rows.apply(&[DirCommand::Place { player, region }]);
        }
        rows
    })
}

fn input(kind: Kind, message: &impl Message) -> Vec<u8> {
    let mut out = vec![kind.byte()];
    out.extend(message.encode_to_vec());
    out
}

fn step(group_id: u64, command: &impl serde::Serialize) -> Vec<u8> {
    let command = postcard::to_stdvec(command).expect("encodes");
    input(Kind::Step, &MoveStep { group_id, command })
}

fn reply(kind: Kind, outcome: &impl serde::Serialize) -> Vec<u8> {
    let outcome = postcard::to_stdvec(outcome).expect("encodes");
    input(
        kind,
        &MoveStepReply {
            outcome,
            log_index: 7,
        },
    )
}

/// The steps another group's leader sends (arrival, refusal, a transfer's
/// credit, the directory's repoint), a probe, and both kinds of reply.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let id = MoveId {
        from_epoch: 1,
        attempt: 0,
        from_group: 2,
    };
    let arrive = MoveCommand::Arrive {
        player: PlayerId(1),
        id,
        wallet: crate::apply::leaving_wallet(),
    };
    let credit = MoveCommand::TransferCredit {
        from: eur(8),
        to: eur(2),
        amount: 30,
        tx: TxId::new("xfer-8").expect("a tx id"),
        created_at_ns: crate::T0_NS,
    };
    let refuse = MoveCommand::Refuse {
        player: PlayerId(5),
        id,
    };
    let repoint = DirCommand::Repoint {
        player: 1,
        group: 2,
        expected_epoch: 1,
    };
    let placed = DirReply::Placed(Placement {
        player: 1,
        group: 2,
        epoch: 2,
    });
    let probe = input(
        Kind::Step,
        &MoveStep {
            group_id: GROUP,
            command: Vec::new(),
        },
    );
    vec![
        ("arrive".into(), step(GROUP, &arrive)),
        ("transfer_credit".into(), step(GROUP, &credit)),
        ("refuse".into(), step(GROUP, &refuse)),
        ("repoint".into(), step(GroupId::DIRECTORY.0, &repoint)),
        ("probe".into(), probe),
        (
            "shard_reply".into(),
            reply(Kind::ShardReply, &MoveOutcome::Arrived),
        ),
        (
            "directory_reply".into(),
            reply(Kind::DirectoryReply, &placed),
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
