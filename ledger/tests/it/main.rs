//! Integration tests of geowallet-ledger: `State` against a reference model.

mod golden;
mod golden_file;
mod model;
mod retention;

use std::collections::BTreeMap;

use geowallet_ledger::{
    AccountId, Amount, Command, CreditKind, Currency, DebitKind, EntryContext, HoldId,
    LedgerConfig, LogIndex, Outcome, PlayerId, Refusal, Request, State, TxId,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

use model::Model;

const WINDOW_NS: u64 = 1_000;
const SKEW_NS: u64 = 100;

#[derive(Debug, Clone)]
enum Op {
    /// A new request; `created_offset` is relative to the entry's effective
    /// time, `Hold::expires_at_ns` is an offset from it too.
    New {
        tx: u8,
        created_offset: i64,
        command: Command,
    },
    /// Send an earlier request again, exactly.
    Retry(usize),
}

#[derive(Debug, Clone)]
struct Step {
    time_delta: i64,
    ops: Vec<Op>,
}

fn account() -> impl Strategy<Value = AccountId> {
    (1u64..=2, prop_oneof![3 => Just("EUR"), 1 => Just("JPY")]).prop_map(|(p, c)| AccountId {
        player: PlayerId(p),
        currency: Currency::parse(c).unwrap(),
    })
}

fn amount() -> impl Strategy<Value = Amount> {
    prop_oneof![
        1 => Just(0u64),
        8 => 1u64..200,
        1 => Just(u64::MAX / 2),
        1 => Just(u64::MAX),
    ]
    .prop_map(Amount)
}

fn hold_id() -> impl Strategy<Value = HoldId> {
    prop_oneof![Just("a"), Just("b")].prop_map(|h| HoldId::new(h).unwrap())
}

fn debit_kind() -> impl Strategy<Value = DebitKind> {
    prop_oneof![
        Just(DebitKind::Bet),
        Just(DebitKind::Withdrawal),
        Just(DebitKind::Fee)
    ]
}

fn command() -> impl Strategy<Value = Command> {
    let credit_kind = prop_oneof![
        Just(CreditKind::Deposit),
        Just(CreditKind::Win),
        Just(CreditKind::Bonus),
        Just(CreditKind::Refund)
    ];
    prop_oneof![
        3 => account().prop_map(|account| Command::OpenAccount { account }),
        4 => (account(), amount(), credit_kind)
            .prop_map(|(account, amount, kind)| Command::Credit { account, amount, kind }),
        3 => (account(), amount(), debit_kind())
            .prop_map(|(account, amount, kind)| Command::Debit { account, amount, kind }),
        3 => (account(), account(), amount())
            .prop_map(|(from, to, amount)| Command::Transfer { from, to, amount }),
        4 => (account(), hold_id(), amount(), 0u64..600).prop_map(|(account, hold, amount, e)| {
            Command::Hold { account, hold, amount, expires_at_ns: e }
        }),
        3 => (account(), hold_id(), prop::option::of(amount()), debit_kind())
            .prop_map(|(account, hold, amount, kind)| {
                Command::Capture { account, hold, amount, kind }
            }),
        2 => (account(), hold_id()).prop_map(|(account, hold)| Command::Release { account, hold }),
        1 => account().prop_map(|account| Command::Freeze { account }),
        1 => account().prop_map(|account| Command::Unfreeze { account }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..25, -1_200i64..=150, command())
            .prop_map(|(tx, created_offset, command)| Op::New { tx, created_offset, command }),
        1 => any::<usize>().prop_map(Op::Retry),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = (-300i64..=450, prop::collection::vec(op(), 0..6))
        .prop_map(|(time_delta, ops)| Step { time_delta, ops });
    prop::collection::vec(step, 1..50)
}

/// Turns an op into a concrete request at effective time `now_ns`.
fn request(op: &Op, now_ns: u64, history: &[Request]) -> Option<Request> {
    match op {
        Op::Retry(i) if history.is_empty() => {
            let _ = i;
            None
        }
        Op::Retry(i) => Some(history[i % history.len()].clone()),
        Op::New {
            tx,
            created_offset,
            command,
        } => {
            let mut command = command.clone();
            if let Command::Hold { expires_at_ns, .. } = &mut command {
                // Some holds are born expired (offset < 50).
                *expires_at_ns = (now_ns + *expires_at_ns).saturating_sub(50);
            }
            Some(Request {
                tx: TxId::new(format!("tx{tx}")).unwrap(),
                created_at_ns: now_ns.saturating_add_signed(*created_offset),
                command,
            })
        }
    }
}

fn config() -> LedgerConfig {
    LedgerConfig {
        idempotency_window_ns: WINDOW_NS,
        future_skew_ns_max: SKEW_NS,
        ..LedgerConfig::default()
    }
}

/// Was this outcome stored as the transaction's record?
fn recorded(outcome: &Outcome) -> bool {
    !matches!(
        outcome,
        Err(Refusal::TxIdExpired { .. }
            | Refusal::TxIdFromFuture { .. }
            | Refusal::TxIdConflict { .. })
    )
}

fn assert_same_state(state: &State, model: &Model) {
    let accounts = state.rows.accounts.clone();
    let expected: BTreeMap<_, _> = model
        .accounts
        .iter()
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    assert_eq!(accounts, expected);
    let holds: BTreeMap<_, _> = state
        .rows
        .holds
        .iter()
        .map(|((a, h), v)| {
            (
                (*a, h.as_str().to_owned()),
                (
                    v.amount,
                    v.remaining,
                    v.expires_at_ns,
                    v.status,
                    v.closed_at_ns,
                ),
            )
        })
        .collect();
    let expected: BTreeMap<_, _> = model
        .holds
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                (
                    v.amount,
                    v.remaining,
                    v.expires_at_ns,
                    v.status,
                    v.closed_at_ns,
                ),
            )
        })
        .collect();
    assert_eq!(holds, expected);
    for ((c, w), b) in &model.system {
        assert_eq!(state.system_balance(*c, *w), *b, "{c} {w}");
    }
    let records: BTreeMap<_, _> = state
        .rows
        .tx_records
        .iter()
        .map(|((w, tx), r)| ((*w, tx.as_str().to_owned()), (r.created_at_ns, &r.outcome)))
        .collect();
    let expected: BTreeMap<_, _> = model
        .txs
        .iter()
        .map(|(k, (created, _, o))| (k.clone(), (*created, o)))
        .collect();
    assert_eq!(records, expected);
    assert!(state.rows.currency_totals().values().all(|t| *t == 0));
    state.check_invariants();
}

/// Replays every request that ran, and every exact copy of one, at the
/// current time: nothing may change. (A request that merely shares an id and
/// command but not the creation time is a different transaction.)
fn replay_changes_nothing(
    state: &mut State,
    model: &mut Model,
    history: &[(Request, Outcome, bool)],
    index: u64,
) {
    state.take_changes();
    let before = state.clone();
    let ran: Vec<&Request> = history.iter().filter(|h| h.2).map(|h| &h.0).collect();
    let replayed: Vec<&(Request, Outcome, bool)> =
        history.iter().filter(|h| ran.contains(&&h.0)).collect();
    let requests: Vec<Request> = replayed.iter().map(|h| h.0.clone()).collect();
    let ctx = EntryContext {
        group: 1,
        log_index: LogIndex(index),
        leader_time_ns: 0,
    };
    let outcomes = state.apply(ctx, &requests);
    assert_eq!(outcomes, model.apply(index, 0, &requests));
    // A purged id may have been reused by a newer request: a replay then meets that record.
    let latest: BTreeMap<(AccountId, &TxId), &Outcome> = history
        .iter()
        .filter(|h| recorded(&h.1))
        .map(|h| ((h.0.command.account(), &h.0.tx), &h.1))
        .collect();
    for (again, (request, first, _)) in outcomes.iter().zip(replayed) {
        let code = again.as_ref().err().map(Refusal::code);
        let key = (request.command.account(), &request.tx);
        let same = again == first || Some(&again) == latest.get(&key);
        assert!(
            same || matches!(code, Some("tx_id_expired" | "tx_id_conflict")),
            "{again:?} vs {first:?}"
        );
    }
    let changes = state.take_changes();
    assert!(changes.journal.is_empty() && changes.accounts.is_empty() && changes.holds.is_empty());
    assert!(changes.tx_records.is_empty() && changes.system.is_empty());
    assert_eq!(*state, before);
}

fn run(steps: &[Step]) {
    let mut state = State::new(config());
    let mut model = Model::new(WINDOW_NS, SKEW_NS);
    let mut history: Vec<(Request, Outcome, bool)> = Vec::new();
    let mut leader_time_ns: u64 = 5_000;
    for (i, step) in steps.iter().enumerate() {
        leader_time_ns = leader_time_ns.saturating_add_signed(step.time_delta);
        let now_ns = model.now_ns.max(leader_time_ns);
        let past: Vec<Request> = history.iter().map(|h| h.0.clone()).collect();
        let requests: Vec<Request> = step
            .ops
            .iter()
            .filter_map(|op| request(op, now_ns, &past))
            .collect();
        let index = i as u64 + 1;
        let ctx = EntryContext {
            group: 1,
            log_index: LogIndex(index),
            leader_time_ns,
        };
        let outcomes = state.apply(ctx, &requests);
        let expected = model.apply(index, leader_time_ns, &requests);
        assert_eq!(outcomes, expected, "entry {index}");
        assert_eq!(state.meta().leader_time_ns, model.now_ns);
        state.check_invariants();
        let ran = model.executed[history.len()..].to_vec();
        history.extend(
            requests
                .into_iter()
                .zip(outcomes)
                .zip(ran)
                .map(|((r, o), e)| (r, o, e)),
        );
    }
    assert_same_state(&state, &model);
    replay_changes_nothing(&mut state, &mut model, &history, steps.len() as u64 + 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    // Proves State gives the same outcomes and balances as the reference model,
    // keeps its invariants, and ignores a replay of everything it recorded.
    #[test]
    fn state_matches_model(steps in steps()) {
        run(&steps);
    }
}

// Proves the property test's generator reaches the interesting outcomes at all.
#[test]
fn generator_reaches_every_outcome_kind() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut codes = std::collections::BTreeSet::new();
    for _ in 0..300 {
        let steps = steps().new_tree(&mut runner).unwrap().current();
        let mut state = State::new(config());
        let mut history = Vec::new();
        let mut leader_time_ns: u64 = 5_000;
        for (i, step) in steps.iter().enumerate() {
            leader_time_ns = leader_time_ns.saturating_add_signed(step.time_delta);
            let now_ns = state.meta().leader_time_ns.max(leader_time_ns);
            let requests: Vec<_> = step
                .ops
                .iter()
                .filter_map(|op| request(op, now_ns, &history))
                .collect();
            let ctx = EntryContext {
                group: 1,
                log_index: LogIndex(i as u64 + 1),
                leader_time_ns,
            };
            for o in state.apply(ctx, &requests) {
                codes.insert(o.map_or_else(|r| r.code(), |_| "ok"));
            }
            history.extend(requests);
        }
    }
    for code in [
        "ok",
        "unknown_account",
        "account_exists",
        "currency_mismatch",
        "same_account",
        "zero_amount",
        "overflow",
        "insufficient_funds",
        "frozen",
        "unknown_hold",
        "hold_exists",
        "hold_expired",
        "hold_closed",
        "over_capture",
        "tx_id_expired",
        "tx_id_from_future",
        "tx_id_conflict",
    ] {
        assert!(
            codes.contains(code),
            "generator never produced {code}: {codes:?}"
        );
    }
}
