//! Raft crate integration tests.

use geowallet_raft::sim_runtime::MadsimRuntime;
use openraft_rt::AsyncRuntime;
use openraft_rt::testing::Suite;

mod golden;
mod golden_file;
mod openraft_suite;
mod snapshot_race;
mod wallet_move;

// MadsimRuntime meets openraft-rt's runtime contract (spawn, time, timeouts, channels, mutex,
// watch) on real tokio; the same file is openraft's runtime under `--cfg madsim`.
#[test]
fn sim_runtime_conformance() {
    Suite::<MadsimRuntime>::test_all_on(&mut MadsimRuntime::new(1));
}
