//! Jepsen's pairing rule: a process runs one call at a time, so its next
//! completion completes its open invocation.

use std::collections::HashMap;

use crate::error::TestkitError;

/// An invocation waiting for its completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCall<T> {
    pub process: u64,
    pub call: T,
    pub call_time: u64,
}

/// Open invocations by process.
pub struct CallPairing<T> {
    format: &'static str,
    open: HashMap<u64, OpenCall<T>>,
}

impl<T> CallPairing<T> {
    pub fn new(format: &'static str) -> Self {
        CallPairing {
            format,
            open: HashMap::new(),
        }
    }

    /// Opens a call; a process with a call already open is malformed.
    pub fn invoke(
        &mut self,
        process: u64,
        call: T,
        call_time: u64,
        line: usize,
    ) -> Result<(), TestkitError> {
        let open = OpenCall {
            process,
            call,
            call_time,
        };
        if self.open.insert(process, open).is_some() {
            return Err(TestkitError::malformed(
                self.format,
                line,
                format!("process {process} invoked while its previous call is open"),
            ));
        }
        Ok(())
    }

    /// Takes the open call of `process`; completing nothing is malformed.
    pub fn complete(&mut self, process: u64, line: usize) -> Result<OpenCall<T>, TestkitError> {
        self.open.remove(&process).ok_or_else(|| {
            TestkitError::malformed(
                self.format,
                line,
                format!("process {process} completed a call it never invoked"),
            )
        })
    }

    /// Calls never completed, in invocation order.
    pub fn into_open(self) -> Vec<OpenCall<T>> {
        let mut open: Vec<_> = self.open.into_values().collect();
        open.sort_by_key(|call| (call.call_time, call.process));
        open
    }
}
