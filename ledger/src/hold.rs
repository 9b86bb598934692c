use serde::{Deserialize, Serialize};

/// Where a hold is in its life. Only `Active` holds hold money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum HoldStatus {
    Active,
    /// Fully captured (partial captures leave it `Active`).
    Captured,
    Released,
    Expired,
}

/// A hold on part of an account's money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// What the hold first took, minor units.
    pub amount: u64,
    /// What it still holds; 0 once closed.
    pub remaining: u64,
    pub expires_at_ns: u64,
    pub status: HoldStatus,
    /// Effective time at which it left `Active`; 0 while active.
    pub closed_at_ns: u64,
}

impl Hold {
    pub fn is_active(&self) -> bool {
        self.status == HoldStatus::Active
    }
}
