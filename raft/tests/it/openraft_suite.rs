//! openraft's own storage test suite against our adapters over RocksDB.

use geowallet_ledger::LedgerConfig;
use geowallet_raft::{LedgerStateMachine, LogAdapter, TypeConfig};
use geowallet_storage::{Db, GroupId};
use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};

struct RocksBuilder;

impl StoreBuilder<TypeConfig, LogAdapter, LedgerStateMachine, tempfile::TempDir> for RocksBuilder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogAdapter, LedgerStateMachine), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("db")).unwrap();
        let log = LogAdapter::new(db.log_store(GroupId(1)));
        let sm = LedgerStateMachine::open(
            db.state_store(GroupId(1)),
            dir.path().join("snapshots"),
            LedgerConfig::default(),
        )
        .unwrap();
        Ok((dir, log, sm))
    }
}

// The log adapter and state machine pass every test of openraft's storage suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite() {
    Suite::test_all(RocksBuilder).await.unwrap();
}
