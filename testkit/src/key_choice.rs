//! How the workload picks the player an operation touches.

/// Player selection: every player alike, or a few hot ones taking most calls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyChoice {
    Uniform,
    /// Zipf-like: the player of rank `k` (player id `k`, counting from 0) is
    /// chosen with weight `1 / (k + 1)^skew`. `skew` 0 is uniform; 1 is the
    /// classic Zipf law.
    Hot {
        skew: f64,
    },
}
