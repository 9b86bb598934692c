//! Wing–Gong/Lowe linearizability search with memoisation of
//! (linearized set, model state), one partition at a time.

use crate::event_list::{END, EventList};
use crate::model::Model;
use crate::operation::Operation;
use crate::search_cache::{Bitset, SearchCache};
use crate::verdict::{CheckReport, Verdict, Violation};

/// Bounds on the search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckConfig {
    /// Search steps allowed per partition before the verdict is `Unknown`.
    pub steps_max_per_partition: u64,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            steps_max_per_partition: 10_000_000,
        }
    }
}

/// Steps each undecided partition gets per round: partitions are searched
/// round-robin, so the verdict costs about (partitions × the cheapest
/// violation) rather than an exhaustive search of a hard partition first.
const ROUND_STEPS: u64 = 10_000;

/// Checks `history` against `model`. A definite violation in any partition
/// wins over an undecided one.
pub fn check<M: Model>(
    model: &M,
    history: Vec<Operation<M::Input, M::Output>>,
    config: &CheckConfig,
) -> CheckReport {
    let operation_count = history.len();
    let partitions = model.partition(history);
    let mut searches: Vec<Search<'_, M>> = partitions
        .iter()
        .map(|partition| Search::new(model, partition))
        .collect();
    let mut undecided: Vec<usize> = (0..searches.len()).collect();
    let mut verdict = Verdict::Linearizable;
    let mut step_limit = 0;
    while !undecided.is_empty()
        && matches!(verdict, Verdict::Linearizable | Verdict::Unknown { .. })
    {
        step_limit = (step_limit + ROUND_STEPS).min(config.steps_max_per_partition);
        let mut still_undecided = Vec::with_capacity(undecided.len());
        for index in undecided {
            let search = &mut searches[index];
            match search.advance(step_limit) {
                Progress::Linearizable => {}
                Progress::Stuck { op, depth } => {
                    verdict = Verdict::NotLinearizable(Violation {
                        partition: index,
                        process: partitions[index][op].process,
                        operation: model.describe(&partitions[index][op]),
                        linearized_count: depth,
                    });
                    break;
                }
                Progress::Paused if search.steps >= config.steps_max_per_partition => {
                    if verdict == Verdict::Linearizable {
                        verdict = Verdict::Unknown {
                            partition: index,
                            steps: search.steps,
                        };
                    }
                }
                Progress::Paused => still_undecided.push(index),
            }
        }
        undecided = still_undecided;
    }
    CheckReport {
        verdict,
        operation_count,
        partition_count: partitions.len(),
        steps: searches.iter().map(|search| search.steps).sum(),
    }
}

enum Progress {
    Linearizable,
    /// `op` is the operation whose return was reached with the most
    /// operations (`depth`) linearized.
    Stuck {
        op: usize,
        depth: usize,
    },
    /// The step limit was reached first.
    Paused,
}

struct Frame<S> {
    op: usize,
    old_state: S,
    alternatives: Vec<S>,
    next_alternative: usize,
}

struct Search<'a, M: Model> {
    model: &'a M,
    ops: &'a [Operation<M::Input, M::Output>],
    list: EventList,
    state: M::State,
    bits: Bitset,
    cache: SearchCache<M::State>,
    stack: Vec<Frame<M::State>>,
    /// Determinate operations not yet linearized; indeterminate ones may stay out.
    required_left: usize,
    deepest: Option<(usize, usize)>,
    /// The next event to consider.
    cursor: usize,
    steps: u64,
}

impl<'a, M: Model> Search<'a, M> {
    fn new(model: &'a M, ops: &'a [Operation<M::Input, M::Output>]) -> Self {
        let times: Vec<_> = ops
            .iter()
            .map(|op| (op.call_time, op.return_time))
            .collect();
        let list = EventList::new(&times);
        Search {
            model,
            ops,
            cursor: list.first(),
            list,
            state: model.init(),
            bits: Bitset::new(ops.len()),
            cache: SearchCache::new(),
            stack: Vec::new(),
            required_left: ops.iter().filter(|op| !op.is_indeterminate()).count(),
            deepest: None,
            steps: 0,
        }
    }

    /// Searches until decided or until `steps` reaches `step_limit`.
    fn advance(&mut self, step_limit: u64) -> Progress {
        while self.required_left > 0 {
            if self.steps >= step_limit {
                return Progress::Paused;
            }
            self.steps += 1;
            // A determinate op is left, so its return event lies ahead of every
            // call the cursor can reach.
            assert_ne!(self.cursor, END, "search ran off the end of the history");
            let op = self.list.op(self.cursor);
            if self.list.is_call(self.cursor) {
                let operation = &self.ops[op];
                let alternatives =
                    self.model
                        .step_all(&self.state, &operation.input, &operation.output);
                self.cursor = if self.try_enter(op, alternatives, 0) {
                    self.list.first()
                } else {
                    self.list.next(self.cursor)
                };
            } else {
                self.note_stuck(op);
                match self.backtrack() {
                    Some(next) => self.cursor = next,
                    None => {
                        let (depth, op) = self.deepest.expect("stuck op recorded");
                        return Progress::Stuck { op, depth };
                    }
                }
            }
        }
        Progress::Linearizable
    }

    /// Linearizes `op` next with the first alternative state from `from` on
    /// whose configuration is unexplored.
    fn try_enter(&mut self, op: usize, mut alternatives: Vec<M::State>, from: usize) -> bool {
        self.bits.set(op);
        for index in from..alternatives.len() {
            if !self.cache.insert(&self.bits, &alternatives[index]) {
                continue;
            }
            let new_state = if index + 1 == alternatives.len() {
                alternatives.pop().expect("index is in range")
            } else {
                alternatives[index].clone()
            };
            let old_state = std::mem::replace(&mut self.state, new_state);
            self.list.lift(op);
            if !self.ops[op].is_indeterminate() {
                self.required_left -= 1;
            }
            self.stack.push(Frame {
                op,
                old_state,
                alternatives,
                next_alternative: index + 1,
            });
            return true;
        }
        self.bits.clear(op);
        false
    }

    /// Undoes the latest linearization; returns where to continue, or `None`
    /// when nothing is left to undo.
    fn backtrack(&mut self) -> Option<usize> {
        let frame = self.stack.pop()?;
        self.list.unlift(frame.op);
        self.bits.clear(frame.op);
        if !self.ops[frame.op].is_indeterminate() {
            self.required_left += 1;
        }
        self.state = frame.old_state;
        if self.try_enter(frame.op, frame.alternatives, frame.next_alternative) {
            Some(self.list.first())
        } else {
            Some(self.list.next(self.list.call_node(frame.op)))
        }
    }

    fn note_stuck(&mut self, op: usize) {
        let depth = self.stack.len();
        if self.deepest.is_none_or(|(deepest, _)| depth > deepest) {
            self.deepest = Some((depth, op));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Toss` leaves the register at 0 or 1; `Read(v)` must see v.
    struct Coin;

    #[derive(Debug, Clone)]
    enum CoinInput {
        Toss,
        Read(u8),
    }

    impl Model for Coin {
        type State = u8;
        type Input = CoinInput;
        type Output = ();

        fn init(&self) -> u8 {
            0
        }

        fn step(&self, state: &u8, input: &CoinInput, _: &()) -> Option<u8> {
            self.step_all(state, input, &()).into_iter().next()
        }

        fn step_all(&self, state: &u8, input: &CoinInput, _: &()) -> Vec<u8> {
            match input {
                CoinInput::Toss => vec![0, 1],
                CoinInput::Read(value) => (value == state).then_some(*state).into_iter().collect(),
            }
        }
    }

    fn op(input: CoinInput, call_time: u64, return_time: u64) -> Operation<CoinInput, ()> {
        Operation {
            process: call_time,
            input,
            output: (),
            call_time,
            return_time: Some(return_time),
        }
    }

    // Proves the search backtracks into a nondeterministic step's later alternatives.
    #[test]
    fn nondeterministic_steps_are_all_explored() {
        let config = CheckConfig::default();
        let history = vec![op(CoinInput::Toss, 1, 2), op(CoinInput::Read(1), 3, 4)];
        assert_eq!(
            check(&Coin, history, &config).verdict,
            Verdict::Linearizable
        );
        let history = vec![
            op(CoinInput::Toss, 1, 2),
            op(CoinInput::Read(1), 3, 4),
            op(CoinInput::Read(0), 5, 6),
        ];
        let Verdict::NotLinearizable(violation) = check(&Coin, history, &config).verdict else {
            panic!("a single toss cannot be seen as both 1 and then 0");
        };
        assert_eq!((violation.process, violation.linearized_count), (5, 2));
    }
}
