//! Memo of configurations already explored: (set of linearized ops, state).

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, DefaultHasher, Hash, Hasher};
use std::marker::PhantomData;

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

/// Bytes the memo may hold before it is emptied.
pub const CACHE_BYTES_MAX: usize = 1 << 30;

/// Bytes one remembered configuration takes (a 128-bit fingerprint in a
/// hash set, with its overhead).
const ENTRY_BYTES: usize = 32;

/// Configurations seen so far. Two configurations with the same linearized
/// set and the same state have the same future, so the second is pruned.
///
/// A configuration is remembered by a 128-bit fingerprint (two SipHashes
/// with different salts over the linearized set and the state), not by a
/// copy of its state: wallet states carry every open hold, and copies of
/// them took a 60 s jepsen history's search to 11.5 GB (a 120 s one to the
/// OOM killer). Two different configurations share a fingerprint with
/// probability about n^2 / 2^129 (below 10^-24 for the 10^7 steps a
/// partition may take), the only way pruning could go wrong.
pub struct SearchCache<S> {
    seen: HashSet<(u64, u64), BuildHasherDefault<IdentityHasher>>,
    bytes_max: usize,
    state: PhantomData<fn(&S)>,
}

impl<S: Hash> SearchCache<S> {
    pub fn new() -> Self {
        Self::with_limit(CACHE_BYTES_MAX)
    }

    pub fn with_limit(bytes_max: usize) -> Self {
        SearchCache {
            seen: HashSet::default(),
            bytes_max,
            state: PhantomData,
        }
    }

    /// Records (`bits`, `state`); false if it was already recorded. The
    /// memo only prunes repeated configurations, so emptying it when it
    /// outgrows its limit keeps every verdict sound: the search
    /// re-explores, within its step budget, instead of exhausting memory.
    pub fn insert(&mut self, bits: &Bitset, state: &S) -> bool {
        let print = (
            fingerprint(0xa5, bits, state),
            fingerprint(0x5a, bits, state),
        );
        if self.seen.contains(&print) {
            return false;
        }
        if (self.seen.len() + 1) * ENTRY_BYTES > self.bytes_max {
            self.seen.clear();
        }
        self.seen.insert(print);
        true
    }

    /// Bytes held, as counted against the limit.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.seen.len() * ENTRY_BYTES
    }
}

fn fingerprint<S: Hash>(salt: u8, bits: &Bitset, state: &S) -> u64 {
    let mut h = DefaultHasher::new();
    salt.hash(&mut h);
    bits.words().hash(&mut h);
    state.hash(&mut h);
    h.finish()
}

/// Keys are already fingerprints; re-hashing them would waste time.
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
        let entry = ENTRY_BYTES;
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
        assert!(cache.bytes() <= 3 * entry);
        assert!(cache.insert(&bits, &0u32), "forgotten");
    }
}
