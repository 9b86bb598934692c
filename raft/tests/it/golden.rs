//! Golden bytes of what the Raft layer stores, encoded with the functions
//! production stores them with: openraft's log entries (every payload kind,
//! every kind of proposal), votes, log ids, memberships, snapshot metadata
//! and our applied position, as the pinned openraft alpha serializes them;
//! and the directory's rows and replies. See `golden_file.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use geowallet_ledger::{
    AccountId, Amount, Command, CreditKind, Currency, DebitKind, MoveCommand, MoveId, PlayerId,
    Request, TxId,
};
use geowallet_raft::directory::{
    DirCommand, DirRefusal, DirReply, DirRows, GroupEntry, Overlay, Placement,
};
use geowallet_raft::{AppliedState, NodeInfo, Proposal, TypeConfig, decode, encode};
use geowallet_storage::DirKey;
use openraft::alias::{EntryOf, LogIdOf, SnapshotMetaOf, StoredMembershipOf, VoteOf};
use openraft::impls::leader_id_adv::LeaderId;
use openraft::{EntryPayload, LogId, Membership, StoredMembership};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::golden_file::GoldenFile;

const T0: u64 = 1_800_000_000_000_000_000;

fn check<T: Serialize + DeserializeOwned + PartialEq + Debug>(
    golden: &mut GoldenFile,
    case: &str,
    value: &T,
) {
    golden.check_value(
        case,
        value,
        |v| encode(v).expect("encodes"),
        |b| decode(case, b).map_err(|e| e.to_string()),
    );
}

fn log_id(term: u64, node_id: u64, index: u64) -> LogIdOf<TypeConfig> {
    LogId::new(LeaderId { term, node_id }, index)
}

fn node(n: u64) -> NodeInfo {
    NodeInfo {
        addr: format!("10.0.0.{n}:7000"),
        region: "eu".into(),
        dc: if n.is_multiple_of(2) { "b" } else { "a" }.into(),
    }
}

/// A joint configuration (voters 1-3 moving to 2-4) with a learner, 5.
fn membership() -> Membership<u64, NodeInfo> {
    let configs = vec![BTreeSet::from([1, 2, 3]), BTreeSet::from([2, 3, 4])];
    let nodes: BTreeMap<u64, NodeInfo> = (1..=5).map(|n| (n, node(n))).collect();
    Membership::new(configs, nodes).expect("a valid membership")
}

fn stored_membership() -> StoredMembershipOf<TypeConfig> {
    StoredMembership::new(Some(log_id(4, 1, 10)), membership())
}

fn request(tx: &str, command: Command) -> Request {
    Request {
        tx: TxId::new(tx).unwrap(),
        created_at_ns: T0,
        command,
    }
}

/// One proposal of every kind: ledger requests, directory commands (every
/// command), a wallet move step.
fn proposals() -> Vec<(&'static str, Proposal)> {
    let eur = AccountId {
        player: PlayerId(1),
        currency: Currency::parse("EUR").unwrap(),
    };
    let credit = Command::Credit {
        account: eur,
        amount: Amount(1_000),
        kind: CreditKind::Win,
    };
    let debit = Command::Debit {
        account: eur,
        amount: Amount(10),
        kind: DebitKind::Bet,
    };
    let ledger = vec![request("win-1", credit), request("bet-1", debit)];
    let directory = vec![
        DirCommand::SetGroups { groups: groups() },
        DirCommand::Place {
            player: 1,
            region: "eu".into(),
        },
        DirCommand::Repoint {
            player: 1,
            group: 2,
            expected_epoch: 1,
        },
    ];
    let step = MoveCommand::Refuse {
        player: PlayerId(1),
        id: MoveId {
            from_epoch: 1,
            attempt: 0,
            from_group: 1,
        },
    };
    vec![
        ("ledger", Proposal::ledger(T0, ledger)),
        ("directory", Proposal::directory(directory)),
        ("wallet_move", Proposal::wallet_move(T0, step)),
    ]
}

fn entry(index: u64, payload: EntryPayload<Proposal, u64, NodeInfo>) -> EntryOf<TypeConfig> {
    openraft::Entry {
        log_id: log_id(5, 2, index),
        payload,
    }
}

/// The log (every payload kind) and the Raft metadata beside it.
fn check_log(golden: &mut GoldenFile) {
    check(golden, "entry.blank", &entry(300, EntryPayload::Blank));
    for (name, proposal) in proposals() {
        let normal = entry(301, EntryPayload::Normal(proposal));
        check(golden, &format!("entry.normal_{name}"), &normal);
    }
    let change = entry(302, EntryPayload::Membership(membership()));
    check(golden, "entry.membership", &change);
    check(golden, "vote", &VoteOf::<TypeConfig>::new(5, 2));
    check(
        golden,
        "vote.committed",
        &VoteOf::<TypeConfig>::new_committed(5, 2),
    );
    check(golden, "committed.none", &None::<LogIdOf<TypeConfig>>);
    check(golden, "committed", &Some(log_id(5, 2, 299)));
    check(golden, "last_purged", &log_id(3, 1, 100));
}

/// What the state machine stores with the ledger rows and in snapshots.
fn check_state(golden: &mut GoldenFile) {
    check(golden, "applied_state.empty", &AppliedState::default());
    let applied = AppliedState {
        last_applied: Some(log_id(5, 2, 301)),
        membership: stored_membership(),
    };
    check(golden, "applied_state", &applied);
    let meta = SnapshotMetaOf::<TypeConfig> {
        last_log_id: Some(log_id(5, 2, 301)),
        last_membership: stored_membership(),
    };
    check(golden, "snapshot_meta", &meta);
}

fn groups() -> Vec<GroupEntry> {
    [(1, "eu"), (2, "us")]
        .into_iter()
        .map(|(id, region)| GroupEntry {
            id,
            home_region: region.into(),
        })
        .collect()
}

#[derive(Default)]
struct Rows(BTreeMap<DirKey, Vec<u8>>);

impl DirRows for Rows {
    fn read(&self, key: DirKey) -> Option<Vec<u8>> {
        self.0.get(&key).cloned()
    }
}

/// The directory's rows, written by applying its commands as production
/// does, and read back by the directory from the committed bytes.
fn check_directory_rows(golden: &mut GoldenFile) {
    let mut rows = Rows::default();
    for command in [
        DirCommand::SetGroups { groups: groups() },
        DirCommand::Place {
            player: 7,
            region: "us".into(),
        },
    ] {
        let mut overlay = Overlay::new(&rows);
        overlay.apply(&command);
        let writes = overlay.into_writes();
        rows.0.extend(writes);
    }
    let placement = Placement {
        player: 7,
        group: 2,
        epoch: 1,
    };
    let mut committed = Rows::default();
    for (case, key) in [
        ("dir.groups", DirKey::Groups),
        ("dir.placement", DirKey::Placement(7)),
    ] {
        if let Some(parts) = golden.check(case, &[&rows.0[&key]]) {
            committed.0.insert(key, parts[0].clone());
        }
    }
    let read = Overlay::new(&committed);
    if read.groups() != groups() || read.placement(7) != Some(placement) {
        golden.fail("dir", "the committed rows read back otherwise".into());
    }
}

/// What directory commands answer (sent between nodes by the mover).
fn check_directory_replies(golden: &mut GoldenFile) {
    let refusals = [
        ("no_groups", DirRefusal::NoGroups),
        (
            "no_group_in_region",
            DirRefusal::NoGroupInRegion {
                region: "ap".into(),
                regions: vec!["eu".into(), "us".into()],
            },
        ),
        ("groups_differ", DirRefusal::GroupsDiffer),
        ("unknown_group", DirRefusal::UnknownGroup { group: 9 }),
        ("not_placed", DirRefusal::NotPlaced { player: 7 }),
        (
            "stale_epoch",
            DirRefusal::StaleEpoch {
                player: 7,
                epoch: 2,
                expected: 1,
            },
        ),
    ];
    check(golden, "dir_reply.groups_set", &DirReply::GroupsSet);
    let placed = DirReply::Placed(Placement {
        player: 7,
        group: 2,
        epoch: 3,
    });
    check(golden, "dir_reply.placed", &placed);
    for (name, why) in refusals {
        check(
            golden,
            &format!("dir_reply.refused_{name}"),
            &DirReply::Refused(why),
        );
    }
}

// Everything the Raft layer stores still encodes to the committed bytes
// (so an openraft, serde or postcard upgrade that changes it fails here),
// and the committed bytes still decode to the same values.
#[test]
fn raft_records_keep_their_encoding() {
    let mut golden = crate::golden_file::golden("raft.txt");
    check_log(&mut golden);
    check_state(&mut golden);
    check_directory_rows(&mut golden);
    check_directory_replies(&mut golden);
    golden.finish();
}
