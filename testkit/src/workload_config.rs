//! The knobs of a [`crate::Workload`], with their bounds.

use crate::error::TestkitError;
use crate::key_choice::KeyChoice;
use crate::op_mix::OpMix;

/// What a workload plans and how often. Raw integers with unit suffixes:
/// this is a config edge.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadConfig {
    /// Player ids are `0..players`; each has one account per currency.
    pub players: u64,
    /// Currency codes, distinct, as the ledger accepts them (`[A-Z][A-Z0-9]{2,7}`).
    pub currencies: Vec<String>,
    pub key_choice: KeyChoice,
    pub mix: OpMix,
    /// Share of operations that re-issue a recent write with its tx id.
    pub duplicate_tx_pct: u32,
    /// Share of operations that must be refused (see [`crate::DELIBERATE_REFUSALS`]).
    pub refusal_pct: u32,
    /// Amounts are drawn from `1..=amount_max` minor units.
    pub amount_max: u64,
    /// How long a planned hold should live; the harness adds it to its clock.
    pub hold_ttl_ns: u64,
}

impl WorkloadConfig {
    pub const PLAYERS_MIN: u64 = 2;
    /// Bounds the hot-key table (8 bytes per player).
    pub const PLAYERS_MAX: u64 = 1_000_000;
    pub const CURRENCIES_MAX: usize = 16;
    /// Keeps sums of many amounts far from `i64::MAX`.
    pub const AMOUNT_MAX_LIMIT: u64 = 1 << 40;
    pub const SKEW_MAX: f64 = 4.0;
    /// `duplicate_tx_pct + refusal_pct` may not exceed this.
    pub const SPECIAL_PCT_MAX: u32 = 50;

    /// The first player id of workload generation `generation` (see
    /// [`crate::Workload::enter_generation`]); ids `players..2 * players`
    /// above it are never opened.
    pub fn generation_first_player(&self, generation: u64) -> u64 {
        generation
            .checked_mul(2 * self.players)
            .expect("a generation far beyond any run")
    }

    /// Every account of generation `generation`, by player, then currency.
    pub fn generation_accounts(&self, generation: u64) -> Vec<(u64, String)> {
        let first = self.generation_first_player(generation);
        (first..first + self.players)
            .flat_map(|p| self.currencies.iter().map(move |c| (p, c.clone())))
            .collect()
    }

    /// The generation player id `player` belongs to.
    pub fn generation_of(&self, player: u64) -> u64 {
        player / (2 * self.players)
    }

    /// Checks every field against its bound.
    pub fn validate(&self) -> Result<(), TestkitError> {
        let invalid =
            |field, message: String| Err(TestkitError::InvalidWorkload { field, message });
        if !(Self::PLAYERS_MIN..=Self::PLAYERS_MAX).contains(&self.players) {
            let (min, max) = (Self::PLAYERS_MIN, Self::PLAYERS_MAX);
            return invalid(
                "players",
                format!("{} is outside {min}..={max}", self.players),
            );
        }
        if let Err(message) = check_currencies(&self.currencies) {
            return invalid("currencies", message);
        }
        if let KeyChoice::Hot { skew } = self.key_choice
            && !(0.0..=Self::SKEW_MAX).contains(&skew)
        {
            return invalid(
                "key_choice",
                format!("skew {skew} is outside 0..={}", Self::SKEW_MAX),
            );
        }
        let total = self.mix.total();
        if total == 0 || total > OpMix::WEIGHT_TOTAL_MAX {
            let max = OpMix::WEIGHT_TOTAL_MAX;
            return invalid("mix", format!("weights sum to {total}, outside 1..={max}"));
        }
        let special_pct = u64::from(self.duplicate_tx_pct) + u64::from(self.refusal_pct);
        if special_pct > u64::from(Self::SPECIAL_PCT_MAX) {
            let max = Self::SPECIAL_PCT_MAX;
            return invalid(
                "duplicate_tx_pct",
                format!("plus refusal_pct exceeds {max}"),
            );
        }
        if !(1..=Self::AMOUNT_MAX_LIMIT).contains(&self.amount_max) {
            let max = Self::AMOUNT_MAX_LIMIT;
            return invalid(
                "amount_max",
                format!("{} is outside 1..={max}", self.amount_max),
            );
        }
        if self.hold_ttl_ns == 0 {
            return invalid("hold_ttl_ns", "must be positive".to_string());
        }
        Ok(())
    }
}

fn check_currencies(currencies: &[String]) -> Result<(), String> {
    if currencies.is_empty() || currencies.len() > WorkloadConfig::CURRENCIES_MAX {
        let max = WorkloadConfig::CURRENCIES_MAX;
        return Err(format!(
            "{} currencies, outside 1..={max}",
            currencies.len()
        ));
    }
    for (index, code) in currencies.iter().enumerate() {
        let bytes = code.as_bytes();
        let well_formed = (3..=8).contains(&bytes.len())
            && bytes[0].is_ascii_uppercase()
            && bytes
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !well_formed {
            return Err(format!("{code:?} is not a currency code"));
        }
        if currencies[..index].contains(code) {
            return Err(format!("{code} appears twice"));
        }
    }
    Ok(())
}

impl Default for WorkloadConfig {
    /// 1000 players in three currencies, uniform keys, 5% duplicates, 3% refusals.
    fn default() -> Self {
        WorkloadConfig {
            players: 1_000,
            currencies: ["EUR", "USD", "GBP"].map(String::from).to_vec(),
            key_choice: KeyChoice::Uniform,
            mix: OpMix::default(),
            duplicate_tx_pct: 5,
            refusal_pct: 3,
            amount_max: 10_000,
            hold_ttl_ns: 60_000_000_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves the default is valid and each bound is enforced.
    #[test]
    fn validates_bounds() {
        assert!(WorkloadConfig::default().validate().is_ok());
        let broken = [
            WorkloadConfig {
                players: 1,
                ..WorkloadConfig::default()
            },
            WorkloadConfig {
                currencies: vec![],
                ..WorkloadConfig::default()
            },
            WorkloadConfig {
                currencies: ["EUR", "EUR"].map(String::from).to_vec(),
                ..WorkloadConfig::default()
            },
            WorkloadConfig {
                currencies: vec!["eu/r".into()],
                ..WorkloadConfig::default()
            },
            WorkloadConfig {
                key_choice: KeyChoice::Hot { skew: f64::NAN },
                ..WorkloadConfig::default()
            },
            WorkloadConfig {
                amount_max: 0,
                ..WorkloadConfig::default()
            },
            WorkloadConfig {
                refusal_pct: 60,
                ..WorkloadConfig::default()
            },
            WorkloadConfig {
                hold_ttl_ns: 0,
                ..WorkloadConfig::default()
            },
        ];
        for config in broken {
            assert!(config.validate().is_err(), "{config:?} passed");
        }
    }
}
