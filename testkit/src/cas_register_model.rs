//! Knossos's `(cas-register 0)`: a register starting at 0; a nil read
//! matches anything.

use crate::model::Model;
use crate::operation::Operation;
use crate::register_input::RegisterInput;

/// What a register call returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CasRegisterOutput {
    /// A read's result; `None` (nil) is legal in any state.
    Value(Option<i64>),
    /// A write or cas that succeeded.
    Done,
    /// Indeterminate (`:info` or never completed): if it took effect, it succeeded.
    Unknown,
}

/// The cas-register model with its initial value (`default()` starts at 0).
#[derive(Debug, Clone, Copy, Default)]
pub struct CasRegisterModel {
    pub initial: i64,
}

impl Model for CasRegisterModel {
    type State = i64;
    type Input = RegisterInput;
    type Output = CasRegisterOutput;

    fn init(&self) -> i64 {
        self.initial
    }

    fn step(&self, state: &i64, input: &RegisterInput, output: &CasRegisterOutput) -> Option<i64> {
        match (input, output) {
            (RegisterInput::Read, CasRegisterOutput::Value(Some(read))) => {
                (read == state).then_some(*state)
            }
            (RegisterInput::Read, CasRegisterOutput::Value(None) | CasRegisterOutput::Unknown) => {
                Some(*state)
            }
            (RegisterInput::Write(value), _) => Some(*value),
            (RegisterInput::Cas { from, to }, _) => (state == from).then_some(*to),
            (RegisterInput::Read, CasRegisterOutput::Done) => None,
        }
    }

    fn describe(&self, operation: &Operation<RegisterInput, CasRegisterOutput>) -> String {
        let result = match operation.output {
            CasRegisterOutput::Value(Some(value)) => format!(":ok {value}"),
            CasRegisterOutput::Value(None) => ":ok nil".to_string(),
            CasRegisterOutput::Done => ":ok".to_string(),
            CasRegisterOutput::Unknown => ":info".to_string(),
        };
        format!("{} -> {result}", operation.input)
    }
}
