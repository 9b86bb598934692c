//! Target `apply`: log entries as the Raft log carries them (postcard
//! `Vec<Proposal>`), applied the way the state machine applies an entry:
//! directory commands to the directory, a wallet move step with
//! `apply_move`, ledger requests with `apply`. Each entry is applied twice,
//! to the in-memory ledger (`State`) and through storage's rows over
//! `MemEngine` (prefetch, apply, persist: the production path without
//! RocksDB); both must answer the same, the ledger's invariants must hold
//! after every entry, and at the end the store must hold exactly the
//! in-memory rows.

use std::collections::BTreeMap;

use geowallet_ledger::{
    AccountId, Amount, Command, CreditKind, Currency, DebitKind, EntryContext, HoldId,
    LedgerConfig, LogIndex, MoveCommand, MoveId, MoveOutcome, PlayerId, Request, State, TxId,
};
use geowallet_raft::Proposal;
use geowallet_raft::directory::{DirCommand, DirReply, DirRows, GroupEntry, Overlay};
use geowallet_storage::{Db, DirKey, GroupId, MemEngine, StateStore, SyncMode};

use crate::roundtrip::reencoded;

/// The shard group the entries are applied in.
const GROUP: GroupId = GroupId(1);

pub fn run(data: &[u8]) {
    let Ok(proposals) = postcard::from_bytes::<Vec<Proposal>>(data) else {
        return;
    };
    applied_store(&proposals);
}

/// One group's state, kept twice: in memory and in storage's rows.
struct Replica {
    state: State,
    store: StateStore<MemEngine>,
    directory: DirectoryRows,
}

impl Replica {
    fn new() -> Replica {
        let db = Db::with_engine(MemEngine::new(SyncMode::Immediate));
        Replica {
            state: State::new(LedgerConfig::default()),
            store: db.state_store(GROUP),
            directory: DirectoryRows::default(),
        }
    }

    /// Applies one entry as `LedgerStateMachine::apply_batch` does.
    fn apply(&mut self, index: LogIndex, proposal: &Proposal) {
        let ctx = EntryContext {
            group: GROUP.0,
            log_index: index,
            leader_time_ns: proposal.leader_time_ns,
        };
        if !proposal.directory.is_empty() {
            self.directory.apply(&proposal.directory);
        } else if let Some(step) = &proposal.wallet_move {
            self.apply_move(ctx, step);
        } else {
            self.apply_requests(ctx, &proposal.requests);
        }
        self.state.check_invariants();
    }

    fn apply_requests(&mut self, ctx: EntryContext, requests: &[Request]) {
        let expected = self.state.apply(ctx, requests);
        assert_eq!(expected.len(), requests.len(), "one outcome per request");
        let rows = self.store.rows();
        rows.prefetch(requests);
        let (outcomes, changes) =
            geowallet_ledger::apply(&rows, self.state.config(), ctx, requests);
        rows.finish().expect("the store's rows read");
        assert_eq!(
            outcomes, expected,
            "storage's rows answer otherwise at {ctx:?}"
        );
        assert_eq!(reencoded("outcomes", &outcomes), outcomes);
        self.persist(ctx, &changes);
    }

    fn apply_move(&mut self, ctx: EntryContext, step: &MoveCommand) {
        let expected = self.state.apply_move(ctx, step);
        let rows = self.store.rows();
        let (outcome, changes) =
            geowallet_ledger::apply_move(&rows, self.state.config(), ctx, step);
        rows.finish().expect("the store's rows read");
        assert_eq!(
            outcome, expected,
            "storage's rows answer otherwise at {ctx:?}"
        );
        // The outcome is a reply to another group's leader.
        assert_eq!(reencoded("move outcome", &outcome), outcome);
        self.persist(ctx, &changes);
    }

    fn persist(&mut self, ctx: EntryContext, changes: &geowallet_ledger::Changes) {
        self.state.take_changes();
        // The applied position as the state machine stores it.
        let applied = crate::raft_message::applied_state(ctx.log_index.0);
        let applied = geowallet_raft::encode(&applied).expect("encodes");
        self.store
            .persist(changes, &applied)
            .expect("the store writes");
    }

    /// The store holds exactly the in-memory rows.
    fn check_same_rows(&self) {
        let rows = self.store.dump().expect("the store's rows read back");
        let e = &self.state.rows;
        assert_eq!(rows.accounts, e.accounts);
        assert_eq!(rows.holds, e.holds);
        assert_eq!(rows.tx_records, e.tx_records);
        assert_eq!(rows.system, e.system);
        assert_eq!(rows.players_total, e.players_total);
        assert_eq!(rows.time_index, e.time_index);
        assert_eq!(rows.players, e.players);
        assert_eq!(rows.transfers, e.transfers);
        assert_eq!(rows.meta, e.meta);
    }
}

/// The directory's rows, as the directory group's state machine keeps them.
#[derive(Debug, Clone, Default)]
pub struct DirectoryRows(BTreeMap<DirKey, Vec<u8>>);

impl DirRows for DirectoryRows {
    fn read(&self, key: DirKey) -> Option<Vec<u8>> {
        self.0.get(&key).cloned()
    }
}

impl DirectoryRows {
    /// Applies one entry's commands; every reply must survive its encoding.
    pub fn apply(&mut self, commands: &[DirCommand]) -> Vec<DirReply> {
        let mut overlay = Overlay::new(&*self);
        let replies: Vec<DirReply> = commands.iter().map(|c| overlay.apply(c)).collect();
        assert_eq!(overlay.undecodable(), None, "a row the directory wrote");
        let writes = overlay.into_writes();
        self.0.extend(writes);
        assert_eq!(reencoded("directory replies", &replies), replies);
        replies
    }
}

pub fn eur(player: u64) -> AccountId {
    AccountId {
        player: PlayerId(player),
        currency: Currency::parse("EUR").expect("a currency code"),
    }
}

fn request(tx: &str, command: Command) -> Request {
    Request {
        tx: TxId::new(tx).expect("a tx id"),
        created_at_ns: crate::T0_NS,
        command,
    }
}

/// One request of every command, on players 1 and 2 (both funded).
pub fn sample_requests() -> Vec<Request> {
    let hold = || HoldId::new("h1").expect("a hold id");
    let credit = |player, amount| Command::Credit {
        account: eur(player),
        amount: Amount(amount),
        kind: CreditKind::Deposit,
    };
    let open = |player| Command::OpenAccount {
        account: eur(player),
    };
    vec![
        request("open-1", open(1)),
        request("open-2", open(2)),
        request("dep-1", credit(1, 10_000)),
        request("dep-2", credit(2, 500)),
        request(
            "bet-1",
            Command::Debit {
                account: eur(1),
                amount: Amount(250),
                kind: DebitKind::Bet,
            },
        ),
        request(
            "tr-1",
            Command::Transfer {
                from: eur(1),
                to: eur(2),
                amount: Amount(100),
            },
        ),
        request(
            "hold-1",
            Command::Hold {
                account: eur(1),
                hold: hold(),
                amount: Amount(300),
                expires_at_ns: crate::T0_NS + 60_000_000_000,
            },
        ),
        request(
            "cap-1",
            Command::Capture {
                account: eur(1),
                hold: hold(),
                amount: Some(Amount(100)),
                kind: DebitKind::Fee,
            },
        ),
        request(
            "rel-1",
            Command::Release {
                account: eur(1),
                hold: hold(),
            },
        ),
        request("frz-2", Command::Freeze { account: eur(2) }),
        request("ufz-2", Command::Unfreeze { account: eur(2) }),
    ]
}

fn move_id(from_group: u64) -> MoveId {
    MoveId {
        from_epoch: 1,
        attempt: 0,
        from_group,
    }
}

/// Entries of a group: the sample requests, then a hold left to expire.
fn ledger_entries() -> Vec<Proposal> {
    let hold = request(
        "hold-2",
        Command::Hold {
            account: eur(2),
            hold: HoldId::new("h2").expect("a hold id"),
            amount: Amount(50),
            expires_at_ns: crate::T0_NS + 1_000,
        },
    );
    vec![
        Proposal::ledger(crate::T0_NS, sample_requests()),
        Proposal::ledger(crate::T0_NS + 1, vec![hold]),
        Proposal::ledger(crate::T0_NS + 2_000, Vec::new()),
    ]
}

/// The wallet player 1 carries when it leaves a group after the sample.
pub fn leaving_wallet() -> geowallet_ledger::WalletRows {
    let mut state = State::new(LedgerConfig::default());
    let ctx = |i| EntryContext {
        group: 2,
        log_index: LogIndex(i),
        leader_time_ns: crate::T0_NS,
    };
    state.apply(ctx(1), &sample_requests());
    let leave = MoveCommand::Leave {
        player: PlayerId(1),
        id: move_id(2),
        to_group: GROUP.0,
    };
    match state.apply_move(ctx(2), &leave) {
        MoveOutcome::Left { wallet } => wallet,
        other => panic!("the sample wallet cannot leave: {other:?}"),
    }
}

/// A few histories: plain ledger entries, a wallet leaving, a wallet
/// arriving, transfers between groups, the directory's commands.
pub fn histories() -> Vec<(String, Vec<Proposal>)> {
    let at = |step| Proposal::wallet_move(crate::T0_NS + 5_000, step);
    let mut leaving = ledger_entries();
    leaving.push(at(MoveCommand::Leave {
        player: PlayerId(1),
        id: move_id(1),
        to_group: 2,
    }));
    leaving.push(at(MoveCommand::Finish {
        player: PlayerId(1),
        id: move_id(1),
        epoch: 2,
    }));
    let arriving = vec![
        at(MoveCommand::Arrive {
            player: PlayerId(1),
            id: move_id(2),
            wallet: leaving_wallet(),
        }),
        Proposal::ledger(crate::T0_NS + 6_000, sample_requests()[4..6].to_vec()),
    ];
    let transfer = request(
        "xfer-1",
        Command::Transfer {
            from: eur(1),
            to: eur(9),
            amount: Amount(70),
        },
    );
    let mut transfers = ledger_entries();
    transfers.push(at(MoveCommand::TransferBegin { request: transfer }));
    transfers.push(at(MoveCommand::TransferCredit {
        from: eur(8),
        to: eur(2),
        amount: 30,
        tx: TxId::new("xfer-8").expect("a tx id"),
        created_at_ns: crate::T0_NS,
    }));
    let groups = [(1, "eu"), (2, "us")].map(|(id, region)| GroupEntry {
        id,
        home_region: region.into(),
    });
    let directory = vec![Proposal::directory(vec![
        DirCommand::SetGroups {
            groups: groups.to_vec(),
        },
        DirCommand::Place {
            player: 1,
            region: "eu".into(),
        },
        DirCommand::Repoint {
            player: 1,
            group: 2,
            expected_epoch: 1,
        },
    ])];
    [
        ("ledger", ledger_entries()),
        ("wallet_leaves", leaving),
        ("wallet_arrives", arriving),
        ("transfers", transfers),
        ("directory", directory),
    ]
    .into_iter()
    .map(|(name, entries)| (name.to_string(), entries))
    .collect()
}

/// The store of a group after `entries` were applied there (at indexes
/// 1, 2, ...), checked against the in-memory ledger.
pub fn applied_store(entries: &[Proposal]) -> StateStore<MemEngine> {
    let mut replica = Replica::new();
    for (i, proposal) in entries.iter().enumerate() {
        replica.apply(LogIndex(i as u64 + 1), proposal);
    }
    replica.check_same_rows();
    replica.store
}

pub fn seeds() -> Vec<(String, Vec<u8>)> {
    histories()
        .into_iter()
        .map(|(name, entries)| (name, postcard::to_stdvec(&entries).expect("encodes")))
        .collect()
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
