//! The sequential specification a history is checked against.

use std::fmt::Debug;
use std::hash::Hash;

use crate::operation::Operation;

/// A sequential object: initial state and a transition relation.
///
/// `step` answers "could this call have returned this output from that state,
/// and if so, in which state does it leave the object?". Nondeterministic
/// objects override `step_all` to return every possible next state.
pub trait Model {
    type State: Clone + Eq + Hash + Debug;
    type Input: Clone + Debug;
    type Output: Clone + Debug;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The next state if `input` returning `output` is legal in `state`.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: &Self::Output,
    ) -> Option<Self::State>;

    /// Every legal next state; empty means illegal. Defaults to `step`.
    fn step_all(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: &Self::Output,
    ) -> Vec<Self::State> {
        self.step(state, input, output).into_iter().collect()
    }

    /// Splits a history into independent sub-histories (P-compositionality).
    /// Each part is checked alone, from `init()`. Defaults to one part.
    fn partition(
        &self,
        history: Vec<Operation<Self::Input, Self::Output>>,
    ) -> Vec<Vec<Operation<Self::Input, Self::Output>>> {
        vec![history]
    }

    /// Human-readable form of an operation for violation reports.
    fn describe(&self, operation: &Operation<Self::Input, Self::Output>) -> String {
        format!("{:?} -> {:?}", operation.input, operation.output)
    }
}
