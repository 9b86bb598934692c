//! Weeks of leader time at a high request rate: what the idempotency window
//! no longer needs is purged as fast as it is written.

use geowallet_ledger::{
    AccountId, Amount, Command, CreditKind, Currency, DebitKind, EntryContext, HoldId,
    LedgerConfig, LogIndex, PlayerId, Request, State, TimeIndex, TxId,
};

const HOUR_NS: u64 = 3_600_000_000_000;
const WALLETS: u64 = 600;

fn eur(p: u64) -> AccountId {
    AccountId {
        player: PlayerId(p),
        currency: Currency::parse("EUR").unwrap(),
    }
}

/// One hour's entry: per wallet a bet, a hold that expires in 30 minutes,
/// and for every other wallet a release of that hold in the same entry:
/// 1,500 requests (each leaves a record), 600 holds closed.
fn hour(entry: u64, now_ns: u64) -> Vec<Request> {
    let mut requests = Vec::new();
    for w in 1..=WALLETS {
        let hold = HoldId::new(format!("h{entry}")).unwrap();
        let mut push = |n: u32, command| {
            requests.push(Request {
                tx: TxId::new(format!("e{entry}-w{w}-{n}")).unwrap(),
                created_at_ns: now_ns,
                command,
            })
        };
        push(
            0,
            Command::Debit {
                account: eur(w),
                amount: Amount(1),
                kind: DebitKind::Bet,
            },
        );
        push(
            1,
            Command::Hold {
                account: eur(w),
                hold: hold.clone(),
                amount: Amount(1),
                expires_at_ns: now_ns + HOUR_NS / 2,
            },
        );
        if w % 2 == 0 {
            push(
                2,
                Command::Release {
                    account: eur(w),
                    hold,
                },
            );
        }
    }
    requests
}

// Proves that over three weeks at 1,500 requests per entry (above the per-entry
// purge budget) tx records and closed holds stay bounded by one window's worth.
#[test]
fn records_and_closed_holds_purged_as_fast_as_written() {
    let config = LedgerConfig::default();
    let window_hours = config.idempotency_window_ns / HOUR_NS;
    assert!(
        1_500 > config.purges_per_entry_max,
        "the rate must exceed the base budget"
    );
    let mut state = State::new(config.clone());
    let start_ns = 1_000 * HOUR_NS;
    let setup: Vec<Request> = (1..=WALLETS)
        .flat_map(|w| {
            let open = Command::OpenAccount { account: eur(w) };
            let fund = Command::Credit {
                account: eur(w),
                amount: Amount(1_000_000),
                kind: CreditKind::Deposit,
            };
            [(0, open), (1, fund)].map(|(n, command)| Request {
                tx: TxId::new(format!("setup-{w}-{n}")).unwrap(),
                created_at_ns: start_ns,
                command,
            })
        })
        .collect();
    let ctx = |i: u64, now_ns: u64| EntryContext {
        group: 1,
        log_index: LogIndex(i),
        leader_time_ns: now_ns,
    };
    assert!(
        state
            .apply(ctx(1, start_ns), &setup)
            .iter()
            .all(Result::is_ok)
    );
    let hours = 3 * 7 * 24;
    let mut peak = (0, 0);
    for h in 1..=hours {
        let now_ns = start_ns + h * HOUR_NS;
        let outcomes = state.apply(ctx(h + 1, now_ns), &hour(h, now_ns));
        assert!(outcomes.iter().all(Result::is_ok), "hour {h}");
        let rows = (state.rows.tx_records.len(), state.rows.holds.len());
        if h > window_hours + 1 {
            peak = (peak.0.max(rows.0), peak.1.max(rows.1));
        }
        state.take_changes();
        if h % 24 == 0 {
            let oldest = state
                .rows
                .tx_records
                .values()
                .map(|r| r.created_at_ns)
                .min();
            let stale = oldest.unwrap() + config.idempotency_window_ns < now_ns;
            assert!(!stale, "hour {h}: a record older than the window is kept");
        }
    }
    // One window of hours (plus the entry at its edge) of records and closed
    // holds, plus the holds still open, no more.
    let per_hour = (1_500, WALLETS as usize);
    let bound = |n: usize| n * (window_hours as usize + 1);
    assert!(peak.0 <= bound(per_hour.0), "tx records grew to {}", peak.0);
    let open = WALLETS as usize / 2;
    assert!(
        peak.1 <= bound(per_hour.1) + open,
        "holds grew to {}",
        peak.1
    );
    assert!(
        peak.0 >= bound(per_hour.0) - 2 * per_hour.0,
        "the window was filled"
    );
    // Each walk starts where the last stopped (past the deleted keys).
    let end_ns = start_ns + hours * HOUR_NS;
    let swept = state.meta().swept_ns(TimeIndex::TxCreated);
    assert!(
        swept + config.idempotency_window_ns < end_ns,
        "never past the window"
    );
    assert!(
        swept + config.idempotency_window_ns + 2 * HOUR_NS >= end_ns,
        "keeps up"
    );
    assert!(state.meta().swept_ns(TimeIndex::HoldExpiry) + HOUR_NS >= end_ns);
    state.check_invariants();
}
