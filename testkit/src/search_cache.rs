//! Memo of configurations already explored: (set of linearized ops, state).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// Set of operation indexes, one bit each.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bitset {
    words: Vec<u64>,
}

impl Bitset {
    pub fn new(bit_count: usize) -> Self {
        Bitset {
            words: vec![0; bit_count.div_ceil(64)],
        }
    }

    pub fn set(&mut self, bit: usize) {
        self.words[bit / 64] |= 1 << (bit % 64);
    }

    pub fn clear(&mut self, bit: usize) {
        self.words[bit / 64] &= !(1 << (bit % 64));
    }

    pub fn words(&self) -> &[u64] {
        &self.words
    }
}

/// Configurations whose (linearized set, state) hash collides.
type Bucket<S> = Vec<(Box<[u64]>, S)>;

/// Configurations seen so far. Two configurations with the same linearized
/// set and the same state have the same future, so the second is pruned.
/// Bytes the memo may hold (counting each entry's bitset and the state's
/// inline size; heap parts of states come on top) before it is emptied.
pub const CACHE_BYTES_MAX: usize = 1 << 30;

pub struct SearchCache<S> {
    buckets: HashMap<u64, Bucket<S>, BuildHasherDefault<IdentityHasher>>,
    bytes: usize,
    bytes_max: usize,
}

impl<S: Eq + Hash + Clone> SearchCache<S> {
    pub fn new() -> Self {
        Self::with_limit(CACHE_BYTES_MAX)
    }

    pub fn with_limit(bytes_max: usize) -> Self {
        SearchCache {
            buckets: HashMap::default(),
            bytes: 0,
            bytes_max,
        }
    }

    /// Records (`bits`, `state`); false if it was already recorded. The
    /// memo only prunes repeated configurations, so emptying it when it
    /// outgrows `CACHE_BYTES_MAX` keeps every verdict sound: the search
    /// re-explores, within its step budget, instead of exhausting memory
    /// (a 120 s jepsen history took 22 GB and the OOM killer).
    pub fn insert(&mut self, bits: &Bitset, state: &S) -> bool {
        let mut hasher = MixHasher::default();
        bits.words().hash(&mut hasher);
        state.hash(&mut hasher);
        let key = hasher.finish();
        let seen = self.buckets.get(&key).is_some_and(|bucket| {
            bucket
                .iter()
                .any(|(words, seen_state)| words[..] == *bits.words() && seen_state == state)
        });
        if seen {
            return false;
        }
        let entry_bytes = bits.words().len() * 8 + std::mem::size_of::<S>() + 64;
        if self.bytes + entry_bytes > self.bytes_max {
            self.buckets.clear();
            self.bytes = 0;
        }
        let bucket = self.buckets.entry(key).or_default();
        bucket.push((bits.words().into(), state.clone()));
        self.bytes += entry_bytes;
        true
    }
}

/// Keys are already mixed hashes; re-hashing them would waste time.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 << 8) | u64::from(*byte);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// A fast non-cryptographic hasher: the search hashes millions of small keys
/// and has no adversary.
#[derive(Default)]
struct MixHasher(u64);

impl MixHasher {
    const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::MULTIPLIER);
    }
}

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        // Final avalanche so that low bits depend on every input word.
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^ (x >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        for byte in chunks.remainder() {
            self.add(u64::from(*byte));
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }
    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves the cache reports a configuration as new exactly once.
    #[test]
    fn insert_reports_duplicates() {
        let mut cache = SearchCache::new();
        let mut bits = Bitset::new(70);
        bits.set(65);
        assert!(cache.insert(&bits, &7u32));
        assert!(!cache.insert(&bits, &7u32));
        assert!(cache.insert(&bits, &8u32));
        bits.clear(65);
        assert!(cache.insert(&bits, &7u32));
    }

    // Proves the memo stays within its byte limit: past it, it forgets
    // (a configuration seen before counts as new again) instead of growing.
    #[test]
    fn outgrown_cache_forgets_instead_of_growing() {
        let entry = 8 + std::mem::size_of::<u32>() + 64;
        let mut cache = SearchCache::with_limit(3 * entry);
        let bits = Bitset::new(10);
        for state in 0..3u32 {
            assert!(cache.insert(&bits, &state));
        }
        assert!(!cache.insert(&bits, &0u32), "still remembered");
        assert!(
            cache.insert(&bits, &3u32),
            "a fourth entry empties the memo"
        );
        assert!(cache.bytes <= 3 * entry);
        assert!(cache.insert(&bits, &0u32), "forgotten");
    }
}
