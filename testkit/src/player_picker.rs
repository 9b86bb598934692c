//! Draws player ids according to a [`KeyChoice`].

use crate::key_choice::KeyChoice;
use crate::splitmix64::SplitMix64;

/// Samples players; a hot choice precomputes its cumulative distribution once.
#[derive(Debug, Clone)]
pub(crate) struct PlayerPicker {
    players: u64,
    /// `cdf[k]` = probability of a player id `<= k`; `None` when uniform.
    cdf: Option<Vec<f64>>,
}

impl PlayerPicker {
    pub(crate) fn new(players: u64, key_choice: KeyChoice) -> Self {
        assert!(players > 0, "no players to pick from");
        let cdf = match key_choice {
            KeyChoice::Uniform => None,
            KeyChoice::Hot { skew } => Some(zipf_cdf(players, skew)),
        };
        PlayerPicker { players, cdf }
    }

    pub(crate) fn pick(&self, rng: &mut SplitMix64) -> u64 {
        let Some(cdf) = &self.cdf else {
            return rng.below(self.players);
        };
        let u = rng.unit_f64();
        let player = cdf.partition_point(|&c| c <= u).min(cdf.len() - 1);
        player as u64
    }
}

fn zipf_cdf(players: u64, skew: f64) -> Vec<f64> {
    let mut cdf = Vec::with_capacity(players as usize);
    let mut total = 0.0;
    for rank in 1..=players {
        total += (rank as f64).powf(-skew);
        cdf.push(total);
    }
    for c in &mut cdf {
        *c /= total;
    }
    debug_assert!(
        cdf.windows(2).all(|w| w[0] <= w[1]),
        "a CDF never decreases"
    );
    cdf
}
