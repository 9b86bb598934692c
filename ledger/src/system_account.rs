use std::fmt;

use serde::{Deserialize, Serialize};

/// The group's own per-currency accounts, the other side of every player
/// operation. Signed: they go negative as players are paid in.
///
/// `Gateway` faces payment providers (deposits and withdrawals); `House`
/// faces the games (bets, wins, bonuses, refunds, fees).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SystemAccount {
    House,
    Gateway,
}

impl fmt::Display for SystemAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SystemAccount::House => "house",
            SystemAccount::Gateway => "gateway",
        })
    }
}
