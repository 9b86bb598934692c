//! Relative weights of the operation kinds a workload plans.

use crate::history::OpKind;
use crate::splitmix64::SplitMix64;

/// Weights (any scale) of each kind; a kind with weight 0 is planned only as
/// a fallback (e.g. an open before the first touch of an account).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpMix {
    pub open: u32,
    pub credit: u32,
    pub debit: u32,
    pub transfer: u32,
    pub hold: u32,
    pub capture: u32,
    pub release: u32,
    pub read: u32,
    pub read_all: u32,
}

const KINDS: [OpKind; 9] = [
    OpKind::Open,
    OpKind::Credit,
    OpKind::Debit,
    OpKind::Transfer,
    OpKind::Hold,
    OpKind::Capture,
    OpKind::Release,
    OpKind::Read,
    OpKind::ReadAll,
];

impl OpMix {
    /// Largest accepted sum of all weights.
    pub const WEIGHT_TOTAL_MAX: u64 = 1_000_000;

    /// The weight of one kind.
    pub fn weight(&self, f: OpKind) -> u32 {
        match f {
            OpKind::Open => self.open,
            OpKind::Credit => self.credit,
            OpKind::Debit => self.debit,
            OpKind::Transfer => self.transfer,
            OpKind::Hold => self.hold,
            OpKind::Capture => self.capture,
            OpKind::Release => self.release,
            OpKind::Read => self.read,
            OpKind::ReadAll => self.read_all,
        }
    }

    /// Sum of all weights.
    pub fn total(&self) -> u64 {
        KINDS.iter().map(|&f| u64::from(self.weight(f))).sum()
    }

    pub(crate) fn pick(&self, rng: &mut SplitMix64) -> OpKind {
        let mut ticket = rng.below(self.total());
        for f in KINDS {
            let weight = u64::from(self.weight(f));
            if ticket < weight {
                return f;
            }
            ticket -= weight;
        }
        unreachable!("a ticket below the total falls on some kind")
    }
}

impl Default for OpMix {
    /// Mostly money movement, some reads, an occasional full scan.
    fn default() -> Self {
        OpMix {
            open: 5,
            credit: 20,
            debit: 15,
            transfer: 20,
            hold: 10,
            capture: 6,
            release: 4,
            read: 15,
            read_all: 1,
        }
    }
}
