use std::fmt;

use serde::{Deserialize, Serialize};

/// The group's own per-currency accounts, the other side of every player
/// operation. Signed: they go negative as players are paid in.
///
/// `Gateway` faces payment providers (deposits and withdrawals); `House`
/// faces the games (bets, wins, bonuses, refunds, fees); `Transit` faces
/// the other shard groups: a wallet moving out leaves its money there, one
/// moving in takes it from there, so each group's books balance at every
/// index and the transit positions of all groups sum to the money in
/// flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SystemAccount {
    House,
    Gateway,
    Transit,
}

impl SystemAccount {
    /// Every system account, in order.
    pub const ALL: [SystemAccount; 3] = [
        SystemAccount::House,
        SystemAccount::Gateway,
        SystemAccount::Transit,
    ];
}

impl fmt::Display for SystemAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SystemAccount::House => "house",
            SystemAccount::Gateway => "gateway",
            SystemAccount::Transit => "transit",
        })
    }
}
