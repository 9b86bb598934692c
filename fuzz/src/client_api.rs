//! Target `client_api`: a client's bytes as the node's Wallet service gets
//! them. Input: one byte choosing the request message, then its protobuf
//! encoding. Every request must decode or fail without a panic and survive
//! a protobuf round trip; the node's conversions (`geowallet_node::wire`)
//! must turn each command into a ledger request or an `invalid_argument`
//! refusal, never a panic, and a converted command, sent again, converts to
//! the same request. The requests of an `Execute` are then applied as the
//! node's entry would apply them, and their results encoded as replies.

use geowallet_ledger::{
    AccountId, Command, CreditKind, DebitKind, EntryContext, LedgerConfig, LogIndex, Request, State,
};
use geowallet_node::wire;
use geowallet_proto::v1 as pb;
use pb::command::Op;
use prost::Message;

use crate::roundtrip::{postcard_value, prost_message};

/// The messages a client (or, for `ErrorDetail`, a peer's status) sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Execute,
    Balance,
    Journal,
    Audit,
    Status,
    Place,
    Placement,
    TransferLeader,
    Migrate,
    ErrorDetail,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Execute,
        Kind::Balance,
        Kind::Journal,
        Kind::Audit,
        Kind::Status,
        Kind::Place,
        Kind::Placement,
        Kind::TransferLeader,
        Kind::Migrate,
        Kind::ErrorDetail,
    ];

    /// Every byte chooses some kind, so no input is wasted.
    fn of(byte: u8) -> Kind {
        Kind::ALL[usize::from(byte) % Kind::ALL.len()]
    }

    fn byte(self) -> u8 {
        let i = Kind::ALL.iter().position(|k| *k == self).expect("listed");
        u8::try_from(i).expect("few kinds")
    }
}

/// The input for `message` sent as `kind`.
pub fn input(kind: Kind, message: &impl Message) -> Vec<u8> {
    let mut out = vec![kind.byte()];
    out.extend(message.encode_to_vec());
    out
}

pub fn run(data: &[u8]) {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    match Kind::of(kind) {
        Kind::Execute => {
            if let Some(req) = prost_message::<pb::ExecuteRequest>(body) {
                execute(&req);
            }
        }
        Kind::Balance => {
            if let Some(req) = prost_message::<pb::BalanceRequest>(body) {
                account(req.account.as_ref());
            }
        }
        Kind::Journal => {
            if let Some(req) = prost_message::<pb::JournalRequest>(body) {
                account(req.account.as_ref());
            }
        }
        Kind::Audit => {
            if let Some(req) = prost_message::<pb::AuditRequest>(body) {
                req.accounts.iter().for_each(|a| account(Some(a)));
            }
        }
        Kind::Status => drop(prost_message::<pb::StatusRequest>(body)),
        Kind::Place => drop(prost_message::<pb::PlaceRequest>(body)),
        Kind::Placement => drop(prost_message::<pb::PlacementRequest>(body)),
        Kind::TransferLeader => drop(prost_message::<pb::TransferLeaderRequest>(body)),
        Kind::Migrate => drop(prost_message::<pb::MigrateRequest>(body)),
        Kind::ErrorDetail => drop(prost_message::<pb::ErrorDetail>(body)),
    }
}

/// An account reference converts to the same player and currency, or is refused.
fn account(a: Option<&pb::AccountRef>) {
    match wire::account(a, "account") {
        Ok(id) => {
            let a = a.expect("a converted account was given");
            assert_eq!(account_ref(id), *a, "account conversion is lossy");
        }
        Err(invalid) => refused(invalid),
    }
}

fn refused(invalid: wire::Invalid) {
    assert!(!invalid.0.is_empty(), "a refusal without a reason");
    let refusal = pb::Refusal::from(invalid);
    assert_eq!(refusal.code, wire::INVALID_ARGUMENT);
}

/// What the node does with an `Execute`: convert each command, propose the
/// converted ones as one entry, encode one result per command.
fn execute(req: &pb::ExecuteRequest) {
    let mut requests = Vec::new();
    for c in &req.commands {
        match wire::request(c) {
            Ok(r) => {
                assert!(!r.tx.is_reserved(), "a client used a reserved tx id");
                assert_eq!(command(&r, c.placement_epoch), *c, "conversion is lossy");
                assert_eq!(
                    wire::request(&command(&r, c.placement_epoch)).as_ref(),
                    Ok(&r)
                );
                // The request travels in a Raft entry: postcard must keep it.
                let r: Request = postcard_value("request", &encode(&r)).expect("it decodes");
                requests.push(r);
            }
            Err(invalid) => refused(invalid),
        }
    }
    let mut state = State::new(LedgerConfig::default());
    let ctx = EntryContext {
        group: 1,
        log_index: LogIndex(1),
        leader_time_ns: crate::T0_NS,
    };
    let outcomes = state.apply(ctx, &requests);
    assert_eq!(outcomes.len(), requests.len());
    state.check_invariants();
    let results = outcomes.into_iter().map(wire::outcome).collect();
    prost_message::<pb::ExecuteResponse>(&pb::ExecuteResponse { results }.encode_to_vec())
        .expect("a reply decodes");
}

fn encode(r: &Request) -> Vec<u8> {
    geowallet_raft::encode(r).expect("a request encodes")
}

fn account_ref(id: AccountId) -> pb::AccountRef {
    pb::AccountRef {
        player: id.player.0,
        currency: id.currency.as_str().to_string(),
    }
}

/// The wire command a client sends for `r` (the inverse of `wire::request`).
pub fn command(r: &Request, placement_epoch: u64) -> pb::Command {
    pb::Command {
        tx_id: r.tx.as_str().to_string(),
        created_at_ns: r.created_at_ns,
        placement_epoch,
        op: Some(op(&r.command)),
    }
}

fn op(c: &Command) -> Op {
    let a = |id: &AccountId| Some(account_ref(*id));
    match c {
        Command::OpenAccount { account } => Op::Open(pb::Open {
            account: a(account),
        }),
        Command::Credit {
            account,
            amount,
            kind,
        } => Op::Credit(pb::Credit {
            account: a(account),
            amount: amount.0,
            kind: credit_kind(*kind) as i32,
        }),
        Command::Debit {
            account,
            amount,
            kind,
        } => Op::Debit(pb::Debit {
            account: a(account),
            amount: amount.0,
            kind: debit_kind(*kind) as i32,
        }),
        Command::Transfer { from, to, amount } => Op::Transfer(pb::Transfer {
            from: a(from),
            to: a(to),
            amount: amount.0,
        }),
        Command::Hold {
            account,
            hold,
            amount,
            expires_at_ns,
        } => Op::Hold(pb::Hold {
            account: a(account),
            hold_id: hold.as_str().to_string(),
            amount: amount.0,
            expires_at_ns: *expires_at_ns,
        }),
        Command::Capture {
            account,
            hold,
            amount,
            kind,
        } => Op::Capture(pb::Capture {
            account: a(account),
            hold_id: hold.as_str().to_string(),
            amount: amount.map_or(0, |m| m.0),
            kind: debit_kind(*kind) as i32,
        }),
        Command::Release { account, hold } => Op::Release(pb::Release {
            account: a(account),
            hold_id: hold.as_str().to_string(),
        }),
        Command::Freeze { account } => Op::Freeze(pb::Freeze {
            account: a(account),
        }),
        Command::Unfreeze { account } => Op::Unfreeze(pb::Unfreeze {
            account: a(account),
        }),
    }
}

fn credit_kind(k: CreditKind) -> pb::CreditKind {
    match k {
        CreditKind::Deposit => pb::CreditKind::Deposit,
        CreditKind::Win => pb::CreditKind::Win,
        CreditKind::Bonus => pb::CreditKind::Bonus,
        CreditKind::Refund => pb::CreditKind::Refund,
    }
}

fn debit_kind(k: DebitKind) -> pb::DebitKind {
    match k {
        DebitKind::Bet => pb::DebitKind::Bet,
        DebitKind::Withdrawal => pb::DebitKind::Withdrawal,
        DebitKind::Fee => pb::DebitKind::Fee,
    }
}

/// One input per message kind, and an `Execute` with every command.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let eur = |player| pb::AccountRef {
        player,
        currency: "EUR".into(),
    };
    let commands = crate::apply::sample_requests()
        .iter()
        .map(|r| command(r, 0))
        .collect();
    let execute = pb::ExecuteRequest {
        commands,
        region: "eu".into(),
        group_id: 1,
    };
    let journal = pb::JournalRequest {
        account: Some(eur(1)),
        limit: 10,
        from_seq: 2,
        ..Default::default()
    };
    let audit = pb::AuditRequest {
        accounts: vec![eur(1), eur(2)],
        group_id: 1,
        group_view: true,
    };
    let not_leader = pb::ErrorDetail {
        kind: Some(pb::error_detail::Kind::NotLeader(pb::NotLeader {
            leader_id: 2,
            leader_endpoint: "10.0.0.2:7000".into(),
        })),
    };
    let balance = pb::BalanceRequest {
        account: Some(eur(1)),
        group_id: 1,
    };
    let place = pb::PlaceRequest {
        player: 7,
        region: "us".into(),
    };
    let migrate = pb::MigrateRequest {
        player: 7,
        region: "eu".into(),
    };
    let transfer_leader = pb::TransferLeaderRequest {
        group_id: 1,
        node_id: 2,
    };
    vec![
        ("execute".into(), input(Kind::Execute, &execute)),
        ("balance".into(), input(Kind::Balance, &balance)),
        ("journal".into(), input(Kind::Journal, &journal)),
        ("audit".into(), input(Kind::Audit, &audit)),
        ("status".into(), input(Kind::Status, &pb::StatusRequest {})),
        ("place".into(), input(Kind::Place, &place)),
        (
            "placement".into(),
            input(Kind::Placement, &pb::PlacementRequest { player: 7 }),
        ),
        (
            "transfer_leader".into(),
            input(Kind::TransferLeader, &transfer_leader),
        ),
        ("migrate".into(), input(Kind::Migrate, &migrate)),
        ("error_detail".into(), input(Kind::ErrorDetail, &not_leader)),
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
