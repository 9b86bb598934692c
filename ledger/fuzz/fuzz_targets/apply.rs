//! Fuzzes `State::apply` with arbitrary entries: it must never panic, and
//! the ledger's invariants must hold after every entry.
#![no_main]

use geowallet_ledger::{EntryContext, LedgerConfig, LogIndex, Request, State};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // (leader_time_ns, requests) per log entry.
    let Ok(entries) = postcard::from_bytes::<Vec<(u64, Vec<Request>)>>(data) else {
        return;
    };
    let mut state = State::new(LedgerConfig::default());
    for (i, (leader_time_ns, requests)) in entries.iter().enumerate() {
        let ctx = EntryContext {
            group: 1,
            log_index: LogIndex(i as u64 + 1),
            leader_time_ns: *leader_time_ns,
        };
        let outcomes = state.apply(ctx, requests);
        assert_eq!(outcomes.len(), requests.len());
        state.check_invariants();
    }
    let _ = state.take_changes();
});
