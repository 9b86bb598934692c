//! Calls on a single read/write/compare-and-set register.

use std::fmt;

/// A register call as invoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegisterInput {
    Read,
    Write(i64),
    Cas { from: i64, to: i64 },
}

impl fmt::Display for RegisterInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterInput::Read => write!(f, ":read"),
            RegisterInput::Write(value) => write!(f, ":write {value}"),
            RegisterInput::Cas { from, to } => write!(f, ":cas [{from} {to}]"),
        }
    }
}
