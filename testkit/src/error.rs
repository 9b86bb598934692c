//! The one error enum of the test kit.

use std::path::PathBuf;

/// Everything that can go wrong while reading, writing or checking a history.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// A file could not be opened, read or written.
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing to the history recorder failed.
    #[error("write history record")]
    Record {
        #[source]
        source: std::io::Error,
    },
    /// A history line or EDN form could not be understood.
    #[error("parse {format} history at line {line}: {message}")]
    Parse {
        format: &'static str,
        line: usize,
        message: String,
    },
    /// An operation completed that had no open invocation, or similar pairing error.
    #[error("malformed {format} history at line {line}: {message}")]
    Malformed {
        format: &'static str,
        line: usize,
        message: String,
    },
    /// A workload configuration field is out of its bounds.
    #[error("invalid workload config {field}: {message}")]
    InvalidWorkload {
        field: &'static str,
        message: String,
    },
}

impl TestkitError {
    /// Builds a [`TestkitError::Parse`].
    pub fn parse(format: &'static str, line: usize, message: impl Into<String>) -> Self {
        TestkitError::Parse {
            format,
            line,
            message: message.into(),
        }
    }

    /// Builds a [`TestkitError::Malformed`].
    pub fn malformed(format: &'static str, line: usize, message: impl Into<String>) -> Self {
        TestkitError::Malformed {
            format,
            line,
            message: message.into(),
        }
    }
}
