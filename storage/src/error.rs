use std::path::PathBuf;

/// Everything storage can fail with. Checksum failures are their own variant:
/// the data on disk is damaged and must not be used.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[cfg(feature = "rocksdb")]
    #[error("rocksdb failed to {context}: {source}")]
    Rocks {
        context: &'static str,
        #[source]
        source: rocksdb::Error,
    },
    #[error(
        "checksum mismatch in {what} at key {key}: the stored data is damaged; \
         restore this replica from a healthy one (wipe its data dir and let it catch up)"
    )]
    Checksum { what: &'static str, key: String },
    #[error("cannot decode {what} at key {key}: {source}")]
    Decode {
        what: &'static str,
        key: String,
        #[source]
        source: postcard::Error,
    },
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: postcard::Error,
    },
    #[error("i/o failed to {context} {path}: {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("snapshot file {path} is damaged at byte {offset}: {reason}")]
    SnapshotCorrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error(
        "a snapshot install of group {group} is in progress: no snapshot can be built \
         until it finishes (a restart resumes it)"
    )]
    InstallInProgress { group: crate::GroupId },
    #[error("column family {0} is missing: the data dir was not created by geowallet")]
    MissingColumnFamily(&'static str),
    #[error("the log syncer thread has stopped; the node must restart")]
    SyncerStopped,
}

impl StorageError {
    #[cfg(feature = "rocksdb")]
    pub(crate) fn rocks(context: &'static str) -> impl FnOnce(rocksdb::Error) -> StorageError {
        move |source| StorageError::Rocks { context, source }
    }

    /// True when the error means stored bytes are damaged (checksum or decode).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            StorageError::Checksum { .. }
                | StorageError::Decode { .. }
                | StorageError::SnapshotCorrupt { .. }
        )
    }
}
