//! geowallet's test kit: a deterministic workload generator, the history format
//! and recorder, a generic linearizability checker (Wing–Gong/Lowe search with
//! memoisation, P-compositional, indeterminate operations allowed) with models for
//! the wallet and for the public porcupine/Knossos reference histories, and the
//! bank, lost-ack, double-apply and negative-balance checkers. It serves `sim`,
//! `jepsen-tests` and `bench`, and it must never depend on node internals
//! (`storage`, `raft`, `node`, RocksDB, tokio): it only plans calls and sees
//! histories and final-state dumps.

mod ack_check;
mod balance;
mod bank_check;
mod call_pairing;
mod cas_register_model;
mod checker;
mod double_apply_check;
mod edn_export;
mod edn_value;
mod error;
mod etcd_model;
mod event_list;
mod expect;
mod final_state;
pub mod golden_file;
mod history;
mod history_format;
mod key_choice;
mod knossos_edn;
mod kv_model;
mod model;
mod negative_balance_check;
mod op_mix;
mod opened_accounts;
mod operation;
mod planned_op;
mod player_picker;
mod porcupine_etcd;
mod porcupine_kv;
mod recorder;
mod register_input;
mod search_cache;
mod splitmix64;
mod verdict;
mod wallet_history;
mod wallet_model;
mod workload;
mod workload_config;

pub use ack_check::{LostAck, LostAckReport, check_acknowledged};
pub use balance::Balance;
pub use bank_check::{BankReport, BankViolation, TotalSource, check_bank};
pub use cas_register_model::{CasRegisterModel, CasRegisterOutput};
pub use checker::{CheckConfig, check};
pub use double_apply_check::{DoubleApply, DoubleApplyReport, check_double_apply};
pub use edn_export::to_edn;
pub use edn_value::EdnValue;
pub use error::TestkitError;
pub use etcd_model::{EtcdModel, EtcdOutput};
pub use expect::{
    CURRENCY_MISMATCH, DELIBERATE_REFUSALS, Expect, SAME_ACCOUNT, UNKNOWN_ACCOUNT, UNKNOWN_HOLD,
    ZERO_AMOUNT,
};
pub use final_state::FinalState;
pub use history::{
    CompletedCall, EventType, HistoryEvent, OpKind, OpValue, account_currency, completed_calls,
    parse_history, read_history,
};
pub use history_format::HistoryFormat;
pub use key_choice::KeyChoice;
pub use knossos_edn::parse_knossos_edn;
pub use kv_model::{KvAction, KvInput, KvModel, KvOutput};
pub use model::Model;
pub use negative_balance_check::{
    BalanceSite, NegativeBalance, NegativeBalanceReport, check_no_negative_balance,
};
pub use op_mix::OpMix;
pub use operation::Operation;
pub use planned_op::PlannedOp;
pub use porcupine_etcd::parse_porcupine_etcd;
pub use porcupine_kv::parse_porcupine_kv;
pub use recorder::{Completion, OpHandle, Recorder};
pub use register_input::RegisterInput;
pub use splitmix64::SplitMix64;
pub use verdict::{CheckReport, Verdict, Violation};
pub use wallet_history::{INSUFFICIENT_FUNDS, wallet_operations, wallet_operations_returning};
pub use wallet_model::{
    Refusal, StoredResult, WalletAction, WalletCall, WalletModel, WalletOutput, WalletState,
};
pub use workload::Workload;
pub use workload_config::WorkloadConfig;
