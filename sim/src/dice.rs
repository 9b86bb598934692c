/// Seeded choices for the harness (SplitMix64), seeded from madsim's RNG so
/// a run is a function of its seed.
pub struct Dice(u64);

impl Dice {
    /// Dice seeded from the simulation's seed.
    pub fn from_sim() -> Dice {
        Dice(madsim::rand::random::<u64>())
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}
