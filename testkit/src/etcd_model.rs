//! Porcupine's etcd register: initially absent; a refused cas observes that
//! the value differed.

use crate::model::Model;
use crate::operation::Operation;
use crate::register_input::RegisterInput;

/// What a register call returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtcdOutput {
    /// A read's result; `None` = key absent.
    Value(Option<i64>),
    /// A write or cas that succeeded.
    Done,
    /// A cas refused because the value was not `from`.
    CasRefused,
    /// Timed out: any result, and the call may or may not have taken effect.
    Unknown,
}

/// The etcd register model; state `None` = key absent.
#[derive(Debug, Clone, Copy, Default)]
pub struct EtcdModel;

impl Model for EtcdModel {
    type State = Option<i64>;
    type Input = RegisterInput;
    type Output = EtcdOutput;

    fn init(&self) -> Option<i64> {
        None
    }

    fn step(
        &self,
        state: &Option<i64>,
        input: &RegisterInput,
        output: &EtcdOutput,
    ) -> Option<Option<i64>> {
        match (input, output) {
            (RegisterInput::Read, EtcdOutput::Value(read)) => (read == state).then_some(*state),
            (RegisterInput::Read, EtcdOutput::Unknown) => Some(*state),
            (RegisterInput::Write(value), EtcdOutput::Done | EtcdOutput::Unknown) => {
                Some(Some(*value))
            }
            (RegisterInput::Cas { from, to }, EtcdOutput::Done) => {
                (*state == Some(*from)).then_some(Some(*to))
            }
            (RegisterInput::Cas { from, .. }, EtcdOutput::CasRefused) => {
                (*state != Some(*from)).then_some(*state)
            }
            (RegisterInput::Cas { from, to }, EtcdOutput::Unknown) => {
                Some(if *state == Some(*from) {
                    Some(*to)
                } else {
                    *state
                })
            }
            _ => None,
        }
    }

    fn describe(&self, operation: &Operation<RegisterInput, EtcdOutput>) -> String {
        let result = match operation.output {
            EtcdOutput::Value(Some(value)) => format!(":ok {value}"),
            EtcdOutput::Value(None) => ":ok nil".to_string(),
            EtcdOutput::Done => ":ok".to_string(),
            EtcdOutput::CasRefused => ":fail".to_string(),
            EtcdOutput::Unknown => ":info".to_string(),
        };
        format!("{} -> {result}", operation.input)
    }
}
