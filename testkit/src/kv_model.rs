//! Porcupine's key-value model: get/put/append per key, missing key = "".

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::model::Model;
use crate::operation::Operation;

/// What a kv call does to its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KvAction {
    Get,
    Put(String),
    Append(String),
}

/// A kv call as invoked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KvInput {
    pub key: String,
    pub action: KvAction,
}

/// What a kv call returned: the value read by a get, nothing for put/append.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KvOutput {
    Value(String),
    Done,
}

/// One key's value; partitioned by key, so the state is a single string
/// (shared, because the search clones states often).
#[derive(Debug, Clone, Copy, Default)]
pub struct KvModel;

impl Model for KvModel {
    type State = Rc<str>;
    type Input = KvInput;
    type Output = KvOutput;

    fn init(&self) -> Rc<str> {
        Rc::from("")
    }

    fn step(&self, state: &Rc<str>, input: &KvInput, output: &KvOutput) -> Option<Rc<str>> {
        match (&input.action, output) {
            (KvAction::Get, KvOutput::Value(read)) => (**state == **read).then(|| state.clone()),
            (KvAction::Put(value), KvOutput::Done) => Some(Rc::from(value.as_str())),
            (KvAction::Append(value), KvOutput::Done) => {
                Some(Rc::from(format!("{state}{value}").as_str()))
            }
            _ => None,
        }
    }

    fn partition(
        &self,
        history: Vec<Operation<KvInput, KvOutput>>,
    ) -> Vec<Vec<Operation<KvInput, KvOutput>>> {
        let mut by_key: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for operation in history {
            by_key
                .entry(operation.input.key.clone())
                .or_default()
                .push(operation);
        }
        by_key.into_values().collect()
    }

    fn describe(&self, operation: &Operation<KvInput, KvOutput>) -> String {
        let key = &operation.input.key;
        match (&operation.input.action, &operation.output) {
            (KvAction::Get, KvOutput::Value(read)) => format!(":get {key:?} -> {read:?}"),
            (KvAction::Put(value), _) => format!(":put {key:?} {value:?}"),
            (KvAction::Append(value), _) => format!(":append {key:?} {value:?}"),
            (KvAction::Get, KvOutput::Done) => format!(":get {key:?}"),
        }
    }
}
