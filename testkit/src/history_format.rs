//! The history formats the checker understands, and checking a file in one.

use std::path::Path;

use crate::cas_register_model::CasRegisterModel;
use crate::checker::{CheckConfig, check};
use crate::error::TestkitError;
use crate::etcd_model::EtcdModel;
use crate::history::parse_history;
use crate::knossos_edn::parse_knossos_edn;
use crate::kv_model::KvModel;
use crate::porcupine_etcd::parse_porcupine_etcd;
use crate::porcupine_kv::parse_porcupine_kv;
use crate::verdict::CheckReport;
use crate::wallet_history::wallet_operations;
use crate::wallet_model::WalletModel;

/// A history file format, each with its model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum HistoryFormat {
    /// porcupine's jepsen etcd logs, etcd register model.
    PorcupineEtcd,
    /// porcupine's kv files, kv model partitioned by key.
    PorcupineKv,
    /// Knossos EDN, cas-register starting at 0.
    KnossosEdn,
    /// geowallet JSON lines, wallet model partitioned by account.
    Geowallet,
}

impl HistoryFormat {
    /// Parses `text` in this format and checks it.
    pub fn check_text(self, text: &str, config: &CheckConfig) -> Result<CheckReport, TestkitError> {
        Ok(match self {
            HistoryFormat::PorcupineEtcd => check(&EtcdModel, parse_porcupine_etcd(text)?, config),
            HistoryFormat::PorcupineKv => check(&KvModel, parse_porcupine_kv(text)?, config),
            HistoryFormat::KnossosEdn => check(
                &CasRegisterModel::default(),
                parse_knossos_edn(text)?,
                config,
            ),
            HistoryFormat::Geowallet => {
                let operations = wallet_operations(&parse_history(text)?)?;
                check(&WalletModel, operations, config)
            }
        })
    }

    /// Reads `path` and checks it.
    pub fn check_file(
        self,
        path: &Path,
        config: &CheckConfig,
    ) -> Result<CheckReport, TestkitError> {
        let text = std::fs::read_to_string(path).map_err(|source| TestkitError::Io {
            action: "read history",
            path: path.to_path_buf(),
            source,
        })?;
        self.check_text(&text, config)
    }
}
