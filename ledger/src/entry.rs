use std::collections::BTreeMap;

use crate::{AccountId, Balance, Currency, JournalEntry, JournalKind, LogIndex, Receipt, TxId};

/// The work of applying one log entry: its index, its effective time, the
/// journal it writes, and the money it moved per currency.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) group: u64,
    pub(crate) log_index: LogIndex,
    /// max(previous leader time, this entry's leader time).
    pub(crate) now_ns: u64,
    pub(crate) journal: Vec<JournalEntry>,
    /// Net change of all balances (players and system) per currency; every
    /// operation is a balanced transfer, so each must end at 0.
    net_by_currency: BTreeMap<Currency, i128>,
}

impl Entry {
    pub(crate) fn new(group: u64, log_index: LogIndex, now_ns: u64) -> Entry {
        Entry {
            group,
            log_index,
            now_ns,
            journal: Vec::new(),
            net_by_currency: BTreeMap::new(),
        }
    }

    pub(crate) fn record_net(&mut self, currency: Currency, delta: i128) {
        let net = self.net_by_currency.entry(currency).or_insert(0);
        // Wrapping: a sum that cannot be trusted must fail the assert, not panic earlier.
        *net = net.wrapping_add(delta);
    }

    /// The always-on conservation check: O(currencies touched by this entry).
    pub(crate) fn assert_balanced(&self) {
        for (currency, net) in &self.net_by_currency {
            assert_eq!(
                *net, 0,
                "entry {} created or destroyed {currency}",
                self.log_index
            );
        }
    }

    /// The currencies whose money this entry moved.
    pub(crate) fn currencies(&self) -> impl Iterator<Item = Currency> + '_ {
        self.net_by_currency.keys().copied()
    }

    pub(crate) fn journal(
        &mut self,
        account: AccountId,
        seq: u64,
        tx: Option<&TxId>,
        kind: JournalKind,
        amount: u64,
        balance: Balance,
    ) {
        // A log entry cannot carry 2^32 requests; saturate rather than panic.
        let position = u32::try_from(self.journal.len()).unwrap_or(u32::MAX);
        self.journal.push(JournalEntry {
            account,
            seq,
            group: self.group,
            log_index: self.log_index,
            position,
            tx: tx.cloned(),
            kind,
            amount,
            balance,
        });
    }

    pub(crate) fn receipt(&self, balance: Balance, counterpart: Option<Balance>) -> Receipt {
        Receipt {
            log_index: self.log_index,
            balance,
            counterpart,
        }
    }
}
