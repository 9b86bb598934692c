//! The workloads: each draws the next [`Script`] (one operation, or a hold
//! and the capture or release that settles it) from a seeded RNG.
//!
//! Every transaction id is `<run tag>-<stream>-<seq>`: the run tag is the
//! start time in hex, so ids never repeat across runs (a reused id with a
//! new creation time is refused `tx_id_conflict`); `stream` is the client
//! (closed loop) or the dispatcher (open loop). Hold ids are the hold's
//! transaction id.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::ValueEnum;
use geowallet_client::{CreditKind, DebitKind, Tx};
use rand::RngExt;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::key_picker::KeyPicker;
use crate::op::Op;
use crate::script::Script;

/// Amounts of bets, debits, transfers and holds, in minor units.
const AMOUNT_MIN: u64 = 1;
const AMOUNT_MAX: u64 = 100;
/// Wins, deposits and withdrawals of the mixed workload, in minor units.
const WIN_AMOUNT_MAX: u64 = 200;
const DEPOSIT_AMOUNT_MAX: u64 = 5_000;
const WITHDRAWAL_AMOUNT_MAX: u64 = 1_000;
/// bet-settle: share of holds captured (the rest are released), in percent.
const BET_CAPTURE_PERCENT: u32 = 50;
/// mixed: shares of scripts, in percent; withdrawals take the rest.
const MIXED_BET_PERCENT: u32 = 55;
const MIXED_WIN_PERCENT: u32 = 30;
const MIXED_DEPOSIT_PERCENT: u32 = 10;
/// mixed: share of withdrawal holds captured (the rest are released).
const WITHDRAWAL_CAPTURE_PERCENT: u32 = 80;
/// How long a hold stays valid: far beyond any run, so none expires mid-run.
const HOLD_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// A small debit of one wallet.
    Wallet,
    /// A small transfer between two wallets of one currency.
    Transfer,
    /// A hold, then a capture or release of it (two operations).
    BetSettle,
    /// Bets and wins mostly, some deposits, some withdrawals (hold, then
    /// capture or release).
    Mixed,
    /// A linearizable balance read.
    Read,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Wallet => "wallet",
            Workload::Transfer => "transfer",
            Workload::BetSettle => "bet-settle",
            Workload::Mixed => "mixed",
            Workload::Read => "read",
        }
    }
}

/// Draws scripts for one stream of operations.
pub struct ScriptGen {
    workload: Workload,
    picker: KeyPicker,
    rng: SmallRng,
    id_prefix: String,
    seq: u64,
}

/// Nanoseconds since the Unix epoch (0 before it).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl ScriptGen {
    pub fn new(
        workload: Workload,
        picker: KeyPicker,
        seed: u64,
        run_tag: &str,
        stream: u64,
    ) -> ScriptGen {
        ScriptGen {
            workload,
            picker,
            rng: SmallRng::seed_from_u64(seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            id_prefix: format!("{run_tag}-{stream}"),
            seq: 0,
        }
    }

    fn tx(&mut self) -> Tx {
        self.seq += 1;
        Tx::new(format!("{}-{}", self.id_prefix, self.seq))
    }

    fn amount(&mut self, max: u64) -> u64 {
        self.rng.random_range(AMOUNT_MIN..=max)
    }

    pub fn next_script(&mut self) -> Script {
        match self.workload {
            Workload::Wallet => self.single_debit(DebitKind::Bet),
            Workload::Transfer => {
                let (from, to) = self.picker.pick_pair(&mut self.rng);
                let amount = self.amount(AMOUNT_MAX);
                let tx = self.tx();
                Script {
                    first: Op::Transfer {
                        tx,
                        from,
                        to,
                        amount,
                    },
                    then: None,
                }
            }
            Workload::BetSettle => self.hold_then_settle(AMOUNT_MAX, BET_CAPTURE_PERCENT),
            Workload::Mixed => self.mixed(),
            Workload::Read => {
                let wallet = self.picker.pick(&mut self.rng);
                Script {
                    first: Op::Balance { wallet },
                    then: None,
                }
            }
        }
    }

    fn single_debit(&mut self, kind: DebitKind) -> Script {
        let wallet = self.picker.pick(&mut self.rng);
        let amount = self.amount(AMOUNT_MAX);
        let tx = self.tx();
        Script {
            first: Op::Debit {
                tx,
                wallet,
                amount,
                kind,
            },
            then: None,
        }
    }

    fn single_credit(&mut self, kind: CreditKind, max: u64) -> Script {
        let wallet = self.picker.pick(&mut self.rng);
        let amount = self.amount(max);
        let tx = self.tx();
        Script {
            first: Op::Credit {
                tx,
                wallet,
                amount,
                kind,
            },
            then: None,
        }
    }

    fn mixed(&mut self) -> Script {
        let roll = self.rng.random_range(0..100u32);
        if roll < MIXED_BET_PERCENT {
            self.single_debit(DebitKind::Bet)
        } else if roll < MIXED_BET_PERCENT + MIXED_WIN_PERCENT {
            self.single_credit(CreditKind::Win, WIN_AMOUNT_MAX)
        } else if roll < MIXED_BET_PERCENT + MIXED_WIN_PERCENT + MIXED_DEPOSIT_PERCENT {
            self.single_credit(CreditKind::Deposit, DEPOSIT_AMOUNT_MAX)
        } else {
            self.hold_then_settle(WITHDRAWAL_AMOUNT_MAX, WITHDRAWAL_CAPTURE_PERCENT)
        }
    }

    /// A hold and, decided now, the capture (of all of it) or release that
    /// settles it.
    fn hold_then_settle(&mut self, amount_max: u64, capture_percent: u32) -> Script {
        let wallet = self.picker.pick(&mut self.rng);
        let amount = self.amount(amount_max);
        let tx = self.tx();
        let hold_id = tx.id.clone();
        let expires_at_ns = now_ns() + HOLD_TTL.as_nanos() as u64;
        let capture = self.rng.random_range(0..100u32) < capture_percent;
        let settle_tx = self.tx();
        let then = if capture {
            Op::Capture {
                tx: settle_tx,
                wallet,
                hold_id: hold_id.clone(),
                amount,
            }
        } else {
            Op::Release {
                tx: settle_tx,
                wallet,
                hold_id: hold_id.clone(),
            }
        };
        Script {
            first: Op::Hold {
                tx,
                wallet,
                hold_id,
                amount,
                expires_at_ns,
            },
            then: Some(then),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::key_picker::Dist;

    const TX_ID_LEN_MAX: usize = 64;

    fn tx_of(op: &Op) -> Option<&Tx> {
        match op {
            Op::Debit { tx, .. }
            | Op::Credit { tx, .. }
            | Op::Transfer { tx, .. }
            | Op::Hold { tx, .. }
            | Op::Capture { tx, .. }
            | Op::Release { tx, .. } => Some(tx),
            Op::Balance { .. } => None,
        }
    }

    // Proves every workload draws fresh, valid tx ids and settles each hold on its own wallet.
    #[test]
    fn scripts_have_unique_ids_and_matching_settles() {
        let workloads = [
            Workload::Wallet,
            Workload::Transfer,
            Workload::BetSettle,
            Workload::Mixed,
            Workload::Read,
        ];
        let mut ids = HashSet::new();
        let tag = format!("{:x}", u64::MAX);
        for (stream, workload) in workloads.into_iter().enumerate() {
            let picker = KeyPicker::new(100, Dist::Hot);
            let mut scripts = ScriptGen::new(workload, picker, 5, &tag, u64::MAX - stream as u64);
            for _ in 0..2_000 {
                let s = scripts.next_script();
                for op in std::iter::once(&s.first).chain(s.then.as_ref()) {
                    if let Some(tx) = tx_of(op) {
                        assert!(tx.id.len() <= TX_ID_LEN_MAX, "{}", tx.id);
                        assert!(ids.insert(tx.id.clone()), "repeated id {}", tx.id);
                    }
                }
                if let (
                    Op::Hold {
                        wallet,
                        hold_id,
                        amount,
                        ..
                    },
                    Some(then),
                ) = (&s.first, &s.then)
                {
                    match then {
                        Op::Capture {
                            wallet: w,
                            hold_id: h,
                            amount: a,
                            ..
                        } => {
                            assert_eq!((w, h, a), (wallet, hold_id, amount));
                        }
                        Op::Release {
                            wallet: w,
                            hold_id: h,
                            ..
                        } => assert_eq!((w, h), (wallet, hold_id)),
                        other => panic!("hold settled by {other:?}"),
                    }
                }
            }
        }
    }
}
