use serde::{Deserialize, Serialize};

use crate::{AccountId, Amount, HoldId, SystemAccount};

/// Why money comes into a player account; decides the paying system account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CreditKind {
    Deposit,
    Win,
    Bonus,
    Refund,
}

impl CreditKind {
    /// The system account the money comes from.
    pub fn source(self) -> SystemAccount {
        match self {
            CreditKind::Deposit => SystemAccount::Gateway,
            CreditKind::Win | CreditKind::Bonus | CreditKind::Refund => SystemAccount::House,
        }
    }
}

/// Why money leaves a player account; decides the receiving system account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DebitKind {
    Bet,
    Withdrawal,
    Fee,
}

impl DebitKind {
    /// The system account the money goes to.
    pub fn destination(self) -> SystemAccount {
        match self {
            DebitKind::Withdrawal => SystemAccount::Gateway,
            DebitKind::Bet | DebitKind::Fee => SystemAccount::House,
        }
    }
}

/// One wallet operation. Every one that moves money is a balanced transfer
/// between a player account and another player or a system account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Command {
    OpenAccount {
        account: AccountId,
    },
    Credit {
        account: AccountId,
        amount: Amount,
        kind: CreditKind,
    },
    Debit {
        account: AccountId,
        amount: Amount,
        kind: DebitKind,
    },
    /// Same currency required, `from != to`.
    Transfer {
        from: AccountId,
        to: AccountId,
        amount: Amount,
    },
    /// Moves `amount` from available to held until captured, released or expired.
    Hold {
        account: AccountId,
        hold: HoldId,
        amount: Amount,
        expires_at_ns: u64,
    },
    /// `None` captures all that remains; a partial capture leaves the hold
    /// active with the remainder. Captured money goes to `kind`'s system account.
    Capture {
        account: AccountId,
        hold: HoldId,
        amount: Option<Amount>,
        kind: DebitKind,
    },
    /// Returns what remains held to available.
    Release {
        account: AccountId,
        hold: HoldId,
    },
    Freeze {
        account: AccountId,
    },
    Unfreeze {
        account: AccountId,
    },
}

impl Command {
    /// The account the command is addressed to (a transfer's `from`).
    pub fn account(&self) -> AccountId {
        match self {
            Command::OpenAccount { account }
            | Command::Credit { account, .. }
            | Command::Debit { account, .. }
            | Command::Hold { account, .. }
            | Command::Capture { account, .. }
            | Command::Release { account, .. }
            | Command::Freeze { account }
            | Command::Unfreeze { account } => *account,
            Command::Transfer { from, .. } => *from,
        }
    }

    /// The players whose wallets the command touches: its account's, and a
    /// transfer's target's when another player's.
    pub fn players(&self) -> Vec<crate::PlayerId> {
        match self {
            Command::Transfer { from, to, .. } if from.player != to.player => {
                vec![from.player, to.player]
            }
            other => vec![other.account().player],
        }
    }

    /// Short stable name, for logs and metrics labels.
    pub fn name(&self) -> &'static str {
        match self {
            Command::OpenAccount { .. } => "open",
            Command::Credit { .. } => "credit",
            Command::Debit { .. } => "debit",
            Command::Transfer { .. } => "transfer",
            Command::Hold { .. } => "hold",
            Command::Capture { .. } => "capture",
            Command::Release { .. } => "release",
            Command::Freeze { .. } => "freeze",
            Command::Unfreeze { .. } => "unfreeze",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Currency, PlayerId};

    fn acct(p: u64) -> AccountId {
        AccountId {
            player: PlayerId(p),
            currency: Currency::parse("EUR").unwrap(),
        }
    }

    // Proves the primary account of each command, a transfer's being `from`.
    #[test]
    fn primary_account_and_name() {
        let hold = HoldId::new("h").unwrap();
        let cases = [
            (Command::OpenAccount { account: acct(1) }, "open"),
            (
                Command::Credit {
                    account: acct(1),
                    amount: Amount(1),
                    kind: CreditKind::Win,
                },
                "credit",
            ),
            (
                Command::Debit {
                    account: acct(1),
                    amount: Amount(1),
                    kind: DebitKind::Bet,
                },
                "debit",
            ),
            (
                Command::Transfer {
                    from: acct(1),
                    to: acct(2),
                    amount: Amount(1),
                },
                "transfer",
            ),
            (
                Command::Hold {
                    account: acct(1),
                    hold: hold.clone(),
                    amount: Amount(1),
                    expires_at_ns: 9,
                },
                "hold",
            ),
            (
                Command::Capture {
                    account: acct(1),
                    hold: hold.clone(),
                    amount: None,
                    kind: DebitKind::Fee,
                },
                "capture",
            ),
            (
                Command::Release {
                    account: acct(1),
                    hold,
                },
                "release",
            ),
            (Command::Freeze { account: acct(1) }, "freeze"),
            (Command::Unfreeze { account: acct(1) }, "unfreeze"),
        ];
        for (cmd, name) in cases {
            assert_eq!(cmd.account(), acct(1));
            assert_eq!(cmd.name(), name);
        }
    }

    // Proves the mapping of kinds to system accounts.
    #[test]
    fn kinds_map_to_system_accounts() {
        assert_eq!(CreditKind::Deposit.source(), SystemAccount::Gateway);
        for k in [CreditKind::Win, CreditKind::Bonus, CreditKind::Refund] {
            assert_eq!(k.source(), SystemAccount::House);
        }
        assert_eq!(DebitKind::Withdrawal.destination(), SystemAccount::Gateway);
        for k in [DebitKind::Bet, DebitKind::Fee] {
            assert_eq!(k.destination(), SystemAccount::House);
        }
    }
}
