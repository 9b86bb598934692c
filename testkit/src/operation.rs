//! One completed or indeterminate call in a history, as the checker sees it.

/// A call of a model operation with its observed result.
///
/// `return_time == None` marks an indeterminate operation (Jepsen `:info`, or an
/// invocation that never completed): it may take effect at any instant after
/// `call_time`, or never.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// The client process that issued the call (for reports only).
    pub process: u64,
    pub input: I,
    pub output: O,
    pub call_time: u64,
    pub return_time: Option<u64>,
}

impl<I, O> Operation<I, O> {
    /// True when the operation has no known completion.
    pub fn is_indeterminate(&self) -> bool {
        self.return_time.is_none()
    }
}
