//! Which wallet an operation touches.
//!
//! The hot rule, exactly: the hot set is wallets `0..H` with
//! `H = max(1, wallets * HOT_WALLETS_PERCENT / 100)`; each pick draws
//! `r` uniform in `0..100`; if `r < HOT_OPS_PERCENT` the wallet is uniform
//! in the hot set, otherwise uniform in `H..wallets` (when `H == wallets`
//! every pick is in the hot set). With the defaults, 80% of operations go
//! to the first 1% of wallets. A transfer's partner is drawn by the same
//! rule, then moved to the same currency (see [`KeyPicker::pick_pair`]).

use clap::ValueEnum;
use rand::RngExt;

use crate::wallet_set::{CURRENCIES, WalletSet};

/// Share of wallets in the hot set, in percent (at least one wallet).
pub const HOT_WALLETS_PERCENT: u64 = 1;
/// Share of operations that go to the hot set, in percent.
pub const HOT_OPS_PERCENT: u64 = 80;
/// Draws for a transfer partner distinct from the payer before falling back
/// to a fixed neighbour.
const PAIR_ATTEMPTS_MAX: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dist {
    Uniform,
    Hot,
}

impl Dist {
    pub fn name(self) -> &'static str {
        match self {
            Dist::Uniform => "uniform",
            Dist::Hot => "hot",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct KeyPicker {
    wallets: u64,
    dist: Dist,
}

impl KeyPicker {
    pub fn new(wallets: u64, dist: Dist) -> KeyPicker {
        assert!(
            wallets >= 2 * CURRENCIES.len() as u64,
            "two wallets per currency"
        );
        KeyPicker { wallets, dist }
    }

    /// Size of the hot set for `wallets` wallets.
    pub fn hot_set_len(wallets: u64) -> u64 {
        (wallets * HOT_WALLETS_PERCENT / 100).max(1)
    }

    pub fn pick(&self, rng: &mut impl RngExt) -> u64 {
        let hot = KeyPicker::hot_set_len(self.wallets);
        let wallet = match self.dist {
            Dist::Uniform => rng.random_range(0..self.wallets),
            Dist::Hot if hot >= self.wallets => rng.random_range(0..self.wallets),
            Dist::Hot if rng.random_range(0..100) < HOT_OPS_PERCENT => rng.random_range(0..hot),
            Dist::Hot => rng.random_range(hot..self.wallets),
        };
        debug_assert!(wallet < self.wallets);
        wallet
    }

    /// Two distinct wallets of the same currency: the payer by [`Self::pick`];
    /// the payee drawn the same way and moved to the payer's currency within
    /// its block of `CURRENCIES.len()` neighbours (so it stays hot if it was).
    pub fn pick_pair(&self, rng: &mut impl RngExt) -> (u64, u64) {
        let from = self.pick(rng);
        for _ in 0..PAIR_ATTEMPTS_MAX {
            let to = self.same_currency(self.pick(rng), from);
            if to != from {
                return (from, to);
            }
        }
        let step = CURRENCIES.len() as u64;
        let to = if from + step < self.wallets {
            from + step
        } else {
            from - step
        };
        (from, to)
    }

    /// The wallet in `candidate`'s block of neighbours that has `of`'s currency.
    fn same_currency(&self, candidate: u64, of: u64) -> u64 {
        let step = CURRENCIES.len() as u64;
        let moved = candidate - candidate % step + of % step;
        let wallet = if moved >= self.wallets {
            moved - step
        } else {
            moved
        };
        debug_assert_eq!(
            WalletSet::currency_index(wallet),
            WalletSet::currency_index(of)
        );
        wallet
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;

    // Proves the hot rule: 80% of picks fall in the first 1% of wallets, the rest outside it.
    #[test]
    fn hot_rule_sends_80_percent_to_first_percent() {
        let picker = KeyPicker::new(10_000, Dist::Hot);
        assert_eq!(KeyPicker::hot_set_len(10_000), 100);
        let mut rng = SmallRng::seed_from_u64(7);
        let picks = 200_000u64;
        let mut hot = 0u64;
        let mut seen_cold_max = 0;
        for _ in 0..picks {
            let w = picker.pick(&mut rng);
            assert!(w < 10_000);
            if w < 100 {
                hot += 1;
            } else {
                seen_cold_max = seen_cold_max.max(w);
            }
        }
        let hot_percent = hot as f64 * 100.0 / picks as f64;
        assert!(
            (79.0..81.0).contains(&hot_percent),
            "hot share {hot_percent}%"
        );
        assert!(seen_cold_max > 9_900, "cold picks cover the range");
    }

    // Proves the hot set is never empty and uniform picks cover every wallet.
    #[test]
    fn small_sets_and_uniform_cover_everything() {
        assert_eq!(KeyPicker::hot_set_len(50), 1);
        assert_eq!(KeyPicker::hot_set_len(250), 2);
        let picker = KeyPicker::new(8, Dist::Uniform);
        let mut rng = SmallRng::seed_from_u64(1);
        let mut seen = [false; 8];
        for _ in 0..1_000 {
            seen[picker.pick(&mut rng) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    // Proves transfer pairs are distinct, in range and same-currency, even with one hot wallet.
    #[test]
    fn pairs_are_distinct_same_currency() {
        for (wallets, dist) in [
            (4, Dist::Hot),
            (5, Dist::Uniform),
            (50, Dist::Hot),
            (10_000, Dist::Hot),
        ] {
            let picker = KeyPicker::new(wallets, dist);
            let mut rng = SmallRng::seed_from_u64(wallets);
            for _ in 0..10_000 {
                let (a, b) = picker.pick_pair(&mut rng);
                assert!(a < wallets && b < wallets && a != b, "{a} {b} of {wallets}");
                assert_eq!(WalletSet::currency_index(a), WalletSet::currency_index(b));
            }
        }
    }
}
