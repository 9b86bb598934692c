use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{AccountId, Currency, HoldId, PlayerId, TxId};

/// Why a request was not applied. A refusal changes no balance.
///
/// Each variant maps to a stable wire code ([`Refusal::code`]) that clients
/// map back to a typed error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    UnknownAccount {
        account: AccountId,
    },
    AccountExists {
        account: AccountId,
    },
    CurrencyMismatch {
        from: Currency,
        to: Currency,
    },
    SameAccount {
        account: AccountId,
    },
    ZeroAmount,
    Overflow {
        account: AccountId,
    },
    InsufficientFunds {
        account: AccountId,
        available: u64,
        requested: u64,
    },
    Frozen {
        account: AccountId,
    },
    UnknownHold {
        account: AccountId,
        hold: HoldId,
    },
    HoldExists {
        account: AccountId,
        hold: HoldId,
    },
    HoldExpired {
        account: AccountId,
        hold: HoldId,
        expired_at_ns: u64,
    },
    /// Already fully captured or released.
    HoldClosed {
        account: AccountId,
        hold: HoldId,
    },
    OverCapture {
        account: AccountId,
        hold: HoldId,
        held: u64,
        requested: u64,
    },
    TxIdExpired {
        tx: TxId,
        created_at_ns: u64,
        oldest_allowed_ns: u64,
    },
    TxIdFromFuture {
        tx: TxId,
        created_at_ns: u64,
        leader_time_ns: u64,
    },
    /// The id was already used with a different command.
    TxIdConflict {
        tx: TxId,
    },
    /// The player's wallet is moving to another group: retry shortly (with
    /// the same tx id); it will be served there.
    Moving {
        player: PlayerId,
    },
    /// The player's wallet moved to `group`, placed there at `epoch`: send
    /// the command there (with the same tx id).
    Moved {
        player: PlayerId,
        group: u64,
        epoch: u64,
    },
    /// The transfer under this tx id was begun as a transfer between
    /// groups and is not settled yet (its payee is in this group now): a
    /// node hands it to its transfer coordinator, never applies it again.
    TransferPending {
        tx: TxId,
    },
}

impl Refusal {
    /// Stable snake_case code for the wire; never renamed.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::UnknownAccount { .. } => "unknown_account",
            Refusal::AccountExists { .. } => "account_exists",
            Refusal::CurrencyMismatch { .. } => "currency_mismatch",
            Refusal::SameAccount { .. } => "same_account",
            Refusal::ZeroAmount => "zero_amount",
            Refusal::Overflow { .. } => "overflow",
            Refusal::InsufficientFunds { .. } => "insufficient_funds",
            Refusal::Frozen { .. } => "frozen",
            Refusal::UnknownHold { .. } => "unknown_hold",
            Refusal::HoldExists { .. } => "hold_exists",
            Refusal::HoldExpired { .. } => "hold_expired",
            Refusal::HoldClosed { .. } => "hold_closed",
            Refusal::OverCapture { .. } => "over_capture",
            Refusal::TxIdExpired { .. } => "tx_id_expired",
            Refusal::TxIdFromFuture { .. } => "tx_id_from_future",
            Refusal::TxIdConflict { .. } => "tx_id_conflict",
            Refusal::Moving { .. } => "moving",
            Refusal::Moved { .. } => "moved",
            Refusal::TransferPending { .. } => "transfer_pending",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnknownAccount { account } => {
                write!(f, "account {account} does not exist; open it first")
            }
            Refusal::AccountExists { account } => {
                write!(f, "account {account} already exists; use it as it is")
            }
            Refusal::CurrencyMismatch { from, to } => write!(
                f,
                "cannot transfer from {from} to {to}; use two accounts of one currency"
            ),
            Refusal::SameAccount { account } => {
                write!(
                    f,
                    "transfer from {account} to itself; choose another destination"
                )
            }
            Refusal::ZeroAmount => write!(f, "amount is zero; send a positive amount"),
            Refusal::Overflow { account } => {
                write!(f, "account {account} would overflow; use a smaller amount")
            }
            Refusal::InsufficientFunds {
                account,
                available,
                requested,
            } => write!(
                f,
                "insufficient funds in {account}: {available} available, {requested} \
                 requested; request less or add funds first"
            ),
            Refusal::Frozen { account } => {
                write!(f, "account {account} is frozen; unfreeze it first")
            }
            Refusal::UnknownHold { account, hold } => {
                write!(
                    f,
                    "hold {hold} on {account} does not exist; check the hold id"
                )
            }
            Refusal::HoldExists { account, hold } => {
                write!(
                    f,
                    "hold {hold} on {account} already exists; use a new hold id"
                )
            }
            Refusal::HoldExpired {
                account,
                hold,
                expired_at_ns,
            } => write!(
                f,
                "hold {hold} on {account} expired at {expired_at_ns} ns; place a new hold"
            ),
            Refusal::HoldClosed { account, hold } => write!(
                f,
                "hold {hold} on {account} is already captured or released; nothing is left to do"
            ),
            Refusal::OverCapture {
                account,
                hold,
                held,
                requested,
            } => write!(
                f,
                "capture of {requested} exceeds the {held} held by hold {hold} on {account}; \
                 capture at most what is held"
            ),
            Refusal::TxIdExpired {
                tx,
                created_at_ns,
                oldest_allowed_ns,
            } => write!(
                f,
                "transaction {tx} created at {created_at_ns} ns is older than the idempotency \
                 window (oldest allowed {oldest_allowed_ns} ns); check its outcome, do not retry"
            ),
            Refusal::TxIdFromFuture {
                tx,
                created_at_ns,
                leader_time_ns,
            } => write!(
                f,
                "transaction {tx} created at {created_at_ns} ns is ahead of leader time \
                 {leader_time_ns} ns; fix the client clock"
            ),
            Refusal::TxIdConflict { tx } => write!(
                f,
                "transaction id {tx} was already used for another command; use a new id"
            ),
            Refusal::Moving { player } => write!(
                f,
                "player {player}'s wallet is moving to another group; retry with the same \
                 transaction id"
            ),
            Refusal::Moved {
                player,
                group,
                epoch,
            } => write!(
                f,
                "player {player}'s wallet moved to group {group} (placement epoch {epoch}); \
                 send the command there with the same transaction id"
            ),
            Refusal::TransferPending { tx } => write!(
                f,
                "transfer {tx} between shard groups is not settled yet; retry with the same \
                 transaction id for its outcome"
            ),
        }
    }
}

impl std::error::Error for Refusal {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PlayerId;

    fn all() -> Vec<Refusal> {
        let account = AccountId {
            player: PlayerId(7),
            currency: Currency::parse("EUR").unwrap(),
        };
        let hold = HoldId::new("h1").unwrap();
        let tx = TxId::new("t1").unwrap();
        let eur = account.currency;
        let usd = Currency::parse("USD").unwrap();
        vec![
            Refusal::UnknownAccount { account },
            Refusal::AccountExists { account },
            Refusal::CurrencyMismatch { from: eur, to: usd },
            Refusal::SameAccount { account },
            Refusal::ZeroAmount,
            Refusal::Overflow { account },
            Refusal::InsufficientFunds {
                account,
                available: 3,
                requested: 5,
            },
            Refusal::Frozen { account },
            Refusal::UnknownHold {
                account,
                hold: hold.clone(),
            },
            Refusal::HoldExists {
                account,
                hold: hold.clone(),
            },
            Refusal::HoldExpired {
                account,
                hold: hold.clone(),
                expired_at_ns: 9,
            },
            Refusal::HoldClosed {
                account,
                hold: hold.clone(),
            },
            Refusal::OverCapture {
                account,
                hold,
                held: 2,
                requested: 3,
            },
            Refusal::TxIdExpired {
                tx: tx.clone(),
                created_at_ns: 1,
                oldest_allowed_ns: 2,
            },
            Refusal::TxIdFromFuture {
                tx: tx.clone(),
                created_at_ns: 9,
                leader_time_ns: 2,
            },
            Refusal::TxIdConflict { tx },
            Refusal::Moving {
                player: account.player,
            },
            Refusal::Moved {
                player: account.player,
                group: 2,
                epoch: 3,
            },
            Refusal::TransferPending {
                tx: TxId::new("t2").unwrap(),
            },
        ]
    }

    // Proves codes are unique snake_case and messages are one lowercase line with advice.
    #[test]
    fn codes_and_messages() {
        let refusals = all();
        let mut codes: Vec<_> = refusals.iter().map(Refusal::code).collect();
        for r in &refusals {
            let msg = r.to_string();
            assert!(!msg.contains('\n'), "{msg}");
            assert!(msg.starts_with(|c: char| c.is_ascii_lowercase()), "{msg}");
            assert!(msg.contains(';'), "no advice in {msg}");
            assert!(
                r.code()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), refusals.len());
        assert_eq!(refusals[6].code(), "insufficient_funds");
        assert!(refusals[6].to_string().contains("7/EUR"));
    }
}
