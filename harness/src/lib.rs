//! What the simulator and jepsen-tests share: the testkit workload run
//! through the real client library with every call recorded
//! ([`Runner`]), the cluster's final state read back through the client
//! API ([`final_state`]), and the five history checkers run together
//! ([`check_all`]). The simulator drives it on madsim, jepsen-tests on
//! real processes; what it checks is the same.

mod checks;
mod final_state;
mod runner;

pub use checks::{Checked, check_all};
pub use final_state::{final_state, final_state_in_groups, history_accounts, nothing_in_transit};
pub use runner::{HOLD_TTL_NS, Rotation, Runner};
