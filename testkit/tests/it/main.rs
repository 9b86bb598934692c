//! Integration tests of geowallet-testkit (one test binary).

mod checkers;
mod cli;
mod recorder;
mod reference_histories;
mod wallet;

use std::path::PathBuf;

/// The reference histories carried in `testkit/testdata`, or `GEOWALLET_TESTDATA` if set.
pub fn testdata_dir() -> PathBuf {
    match std::env::var_os("GEOWALLET_TESTDATA") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata")),
    }
}
