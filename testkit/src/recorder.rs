//! Writes a geowallet history file while a workload runs.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;

use crate::error::TestkitError;
use crate::history::{EventType, HistoryEvent, OpKind, OpValue};

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "moved once per call; boxing would only burden every caller"
)]
pub enum Completion {
    /// It took effect; the value carries results (balance, ...).
    Ok(OpValue),
    /// It certainly did not take effect (`insufficient_funds` is also an observation).
    Fail { reason: String },
    /// Unknown whether it took effect (timeout, lost connection).
    Info,
}

/// An invoked call waiting for [`Recorder::complete`].
#[must_use = "every invoked call must be completed, or it is recorded as indeterminate"]
#[derive(Debug)]
pub struct OpHandle {
    process: u64,
    f: OpKind,
    account: Option<String>,
}

struct Sink {
    writer: BufWriter<File>,
    last_time_ns: u64,
}

/// Thread-safe history writer; share it behind an `Arc`. The clock is
/// injected so a simulation can supply virtual time.
pub struct Recorder {
    clock: Box<dyn Fn() -> u64 + Send + Sync>,
    sink: Mutex<Sink>,
}

impl Recorder {
    /// Creates (truncates) `path`.
    pub fn create(
        path: &Path,
        clock: impl Fn() -> u64 + Send + Sync + 'static,
    ) -> Result<Self, TestkitError> {
        let file = File::create(path).map_err(|source| TestkitError::Io {
            action: "create history",
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Recorder {
            clock: Box::new(clock),
            sink: Mutex::new(Sink {
                writer: BufWriter::new(file),
                last_time_ns: 0,
            }),
        })
    }

    /// The recorder's clock now (recorded times may sit above it: they are
    /// made strictly increasing).
    pub fn now_ns(&self) -> u64 {
        (self.clock)()
    }

    /// Records the start of a call. `account` is `None` only for `read_all`.
    pub fn invoke(
        &self,
        process: u64,
        f: OpKind,
        account: Option<&str>,
        value: OpValue,
    ) -> Result<OpHandle, TestkitError> {
        let handle = OpHandle {
            process,
            f,
            account: account.map(str::to_string),
        };
        self.write(&handle, EventType::Invoke, value)?;
        Ok(handle)
    }

    /// Records the end of a call.
    pub fn complete(&self, handle: OpHandle, completion: Completion) -> Result<(), TestkitError> {
        let (kind, value) = match completion {
            Completion::Ok(value) => (EventType::Ok, value),
            Completion::Fail { reason } => (
                EventType::Fail,
                OpValue {
                    reason: Some(reason),
                    ..OpValue::default()
                },
            ),
            Completion::Info => (EventType::Info, OpValue::default()),
        };
        self.write(&handle, kind, value)
    }

    /// Pushes buffered lines to the file.
    pub fn flush(&self) -> Result<(), TestkitError> {
        let mut sink = self
            .sink
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sink.writer
            .flush()
            .map_err(|source| TestkitError::Record { source })
    }

    fn write(
        &self,
        handle: &OpHandle,
        kind: EventType,
        value: OpValue,
    ) -> Result<(), TestkitError> {
        let mut sink = self
            .sink
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Time is read under the lock and kept strictly increasing: the
        // order lines are written in is a real order (a completion is
        // written after its reply arrived, an invoke before its call is
        // sent), so two events never share a time the checker would read
        // as overlap. With equal times, a process's next call would overlap
        // its previous one, and a stale read right after its own
        // acknowledged credit would pass as linearizable.
        let time_ns = (self.clock)().max(sink.last_time_ns.saturating_add(1));
        sink.last_time_ns = time_ns;
        let event = HistoryEvent {
            process: handle.process,
            kind,
            f: handle.f,
            account: handle.account.clone(),
            value,
            time_ns,
        };
        let line = serde_json::to_string(&event).expect("history events always serialize");
        writeln!(sink.writer, "{line}").map_err(|source| TestkitError::Record { source })
    }
}
