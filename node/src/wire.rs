//! Conversions between the gRPC messages and the ledger's types. Bad input
//! becomes an `invalid_argument` refusal for that command, never a panic.

use geowallet_ledger::{
    AccountId, Amount, Balance, Command, CreditKind, Currency, DebitKind, HoldId, JournalEntry,
    JournalKind, Outcome, PlayerId, Receipt, Refusal, Request, TxId,
};
use geowallet_proto::v1 as pb;
use pb::command::Op;

/// Stable code of a malformed command.
pub const INVALID_ARGUMENT: &str = "invalid_argument";

/// A malformed command: what is wrong with it, for an `invalid_argument` refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl From<Invalid> for pb::Refusal {
    fn from(e: Invalid) -> pb::Refusal {
        pb::Refusal {
            code: INVALID_ARGUMENT.into(),
            message: e.0,
            ..Default::default()
        }
    }
}

pub fn invalid(message: impl Into<String>) -> Invalid {
    Invalid(message.into())
}

pub fn account(a: Option<&pb::AccountRef>, field: &str) -> Result<AccountId, Invalid> {
    let a = a.ok_or_else(|| {
        invalid(format!(
            "{field} is missing: give a player id and a currency"
        ))
    })?;
    let currency = Currency::parse(&a.currency).map_err(|e| invalid(format!("{field}: {e}")))?;
    Ok(AccountId {
        player: PlayerId(a.player),
        currency,
    })
}

fn hold_id(s: &str) -> Result<HoldId, Invalid> {
    HoldId::new(s).map_err(|e| invalid(e.to_string()))
}

fn credit_kind(k: i32) -> Result<CreditKind, Invalid> {
    match pb::CreditKind::try_from(k) {
        Ok(pb::CreditKind::Deposit) => Ok(CreditKind::Deposit),
        Ok(pb::CreditKind::Win) => Ok(CreditKind::Win),
        Ok(pb::CreditKind::Bonus) => Ok(CreditKind::Bonus),
        Ok(pb::CreditKind::Refund) => Ok(CreditKind::Refund),
        _ => Err(invalid("credit kind must be deposit, win, bonus or refund")),
    }
}

fn debit_kind(k: i32) -> Result<DebitKind, Invalid> {
    match pb::DebitKind::try_from(k) {
        Ok(pb::DebitKind::Bet) => Ok(DebitKind::Bet),
        Ok(pb::DebitKind::Withdrawal) => Ok(DebitKind::Withdrawal),
        Ok(pb::DebitKind::Fee) => Ok(DebitKind::Fee),
        _ => Err(invalid("debit kind must be bet, withdrawal or fee")),
    }
}

/// A wire command as a ledger request.
pub fn request(c: &pb::Command) -> Result<Request, Invalid> {
    let tx = TxId::new(c.tx_id.as_str()).map_err(|e| invalid(e.to_string()))?;
    // Only a reserved id may be longer than 64 bytes (`TxId::new`).
    if tx.is_reserved() {
        return Err(invalid(format!(
            "tx id {:?} is reserved: ids starting with `~` name the ledger's own records; \
             choose another (1..=64 printable ASCII bytes)",
            c.tx_id
        )));
    }
    let command = match c
        .op
        .as_ref()
        .ok_or_else(|| invalid("command has no operation"))?
    {
        Op::Open(o) => Command::OpenAccount {
            account: account(o.account.as_ref(), "account")?,
        },
        Op::Credit(o) => Command::Credit {
            account: account(o.account.as_ref(), "account")?,
            amount: Amount(o.amount),
            kind: credit_kind(o.kind)?,
        },
        Op::Debit(o) => Command::Debit {
            account: account(o.account.as_ref(), "account")?,
            amount: Amount(o.amount),
            kind: debit_kind(o.kind)?,
        },
        Op::Transfer(o) => Command::Transfer {
            from: account(o.from.as_ref(), "from")?,
            to: account(o.to.as_ref(), "to")?,
            amount: Amount(o.amount),
        },
        Op::Hold(o) => Command::Hold {
            account: account(o.account.as_ref(), "account")?,
            hold: hold_id(&o.hold_id)?,
            amount: Amount(o.amount),
            expires_at_ns: o.expires_at_ns,
        },
        Op::Capture(o) => Command::Capture {
            account: account(o.account.as_ref(), "account")?,
            hold: hold_id(&o.hold_id)?,
            amount: (o.amount != 0).then_some(Amount(o.amount)),
            kind: debit_kind(o.kind)?,
        },
        Op::Release(o) => Command::Release {
            account: account(o.account.as_ref(), "account")?,
            hold: hold_id(&o.hold_id)?,
        },
        Op::Freeze(o) => Command::Freeze {
            account: account(o.account.as_ref(), "account")?,
        },
        Op::Unfreeze(o) => Command::Unfreeze {
            account: account(o.account.as_ref(), "account")?,
        },
    };
    Ok(Request {
        tx,
        created_at_ns: c.created_at_ns,
        command,
    })
}

pub fn balance(b: Balance) -> pb::Balance {
    pb::Balance {
        available: b.available,
        held: b.held,
    }
}

fn receipt(r: Receipt) -> pb::Receipt {
    pb::Receipt {
        log_index: r.log_index.0,
        balance: Some(balance(r.balance)),
        counterpart: r.counterpart.map(balance),
    }
}

/// A ledger refusal on the wire, its typed fields filled.
pub fn refusal(r: &Refusal) -> pb::Refusal {
    let mut out = pb::Refusal {
        code: r.code().into(),
        message: r.to_string(),
        ..Default::default()
    };
    match r {
        Refusal::InsufficientFunds {
            available,
            requested,
            ..
        } => {
            out.available = *available;
            out.requested = *requested;
        }
        Refusal::OverCapture {
            held, requested, ..
        } => {
            out.held = *held;
            out.requested = *requested;
        }
        Refusal::CurrencyMismatch { from, to } => {
            out.currency_from = from.as_str().into();
            out.currency_to = to.as_str().into();
        }
        Refusal::HoldExpired { expired_at_ns, .. } => out.time_ns = *expired_at_ns,
        Refusal::TxIdExpired {
            oldest_allowed_ns, ..
        } => out.time_ns = *oldest_allowed_ns,
        Refusal::TxIdFromFuture { leader_time_ns, .. } => out.time_ns = *leader_time_ns,
        Refusal::Moved { group, epoch, .. } => {
            out.group_id = *group;
            out.epoch = *epoch;
        }
        _ => {}
    }
    out
}

pub fn outcome(o: Outcome) -> pb::CommandResult {
    let result = match o {
        Ok(r) => pb::command_result::Result::Ok(receipt(r)),
        Err(r) => pb::command_result::Result::Refused(refusal(&r)),
    };
    pb::CommandResult {
        result: Some(result),
    }
}

pub fn refused(r: impl Into<pb::Refusal>) -> pb::CommandResult {
    let r = r.into();
    pb::CommandResult {
        result: Some(pb::command_result::Result::Refused(r)),
    }
}

pub fn journal_kind(k: &JournalKind) -> String {
    k.name()
}

pub fn journal_entry(e: &JournalEntry) -> pb::JournalEntry {
    pb::JournalEntry {
        log_index: e.log_index.0,
        position: e.position,
        tx_id: e
            .tx
            .as_ref()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        kind: journal_kind(&e.kind),
        amount: e.amount,
        balance: Some(balance(e.balance)),
        seq: e.seq,
        group: e.group,
        player: e.account.player.0,
        currency: e.account.currency.to_string(),
    }
}

/// One entry's events as sent on the change stream.
pub fn group_events(e: &geowallet_ledger::EntryEvents) -> pb::GroupEvents {
    pb::GroupEvents {
        group_id: e.group,
        log_index: e.log_index,
        time_ns: e.time_ns,
        prev_chain: e.prev_chain.to_vec(),
        chain: e.chain.to_vec(),
        lines: e.lines.iter().map(journal_entry).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn debit(tx_id: &str) -> pb::Command {
        pb::Command {
            tx_id: tx_id.into(),
            created_at_ns: 1,
            op: Some(Op::Debit(pb::Debit {
                account: Some(pb::AccountRef {
                    player: 1,
                    currency: "EUR".into(),
                }),
                amount: 1,
                kind: pb::DebitKind::Bet as i32,
            })),
            ..Default::default()
        }
    }

    // Proves a client cannot use the ids the ledger derives for its own
    // records (a payee's credit of a transfer from another group): the
    // `~` prefix and the longer length are refused, other ids pass.
    #[test]
    fn reserved_tx_ids_are_refused() {
        assert!(request(&debit("bet-1")).is_ok());
        assert!(request(&debit("a~b")).is_ok());
        for reserved in ["~1/EUR/bet-1", "~", &format!("~{}", "x".repeat(80))] {
            let refused = request(&debit(reserved)).unwrap_err();
            assert!(refused.0.contains("reserved"), "{reserved}: {}", refused.0);
        }
    }
}
