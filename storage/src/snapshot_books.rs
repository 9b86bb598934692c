//! The check a snapshot passes before it replaces a group's rows: every
//! row in the group's key range and readable (checksums, encodings), each
//! column family's keys ascending, and the books balanced. A snapshot that
//! fails is refused with nothing of ours deleted, so a damaged or forged
//! one can neither empty a group nor leave rows a restart cannot read.

use std::collections::BTreeMap;

use geowallet_ledger::{Currency, JournalEntry, MemRows};

use crate::GroupId;
use crate::keys::group_prefix;
use crate::seal::decode;
use crate::state_store::dump_row;

/// Per-currency sums over a snapshot's rows.
pub(crate) struct SnapshotBooks {
    group: GroupId,
    /// Sum of available + held over the accounts.
    accounts: BTreeMap<Currency, i128>,
    /// The players' total rows.
    players: BTreeMap<Currency, i128>,
    /// Sum of the system accounts.
    system: BTreeMap<Currency, i128>,
    /// The last key seen of the state rows and of the journal rows.
    last_key: [Option<Vec<u8>>; 2],
}

impl SnapshotBooks {
    pub(crate) fn new(group: GroupId) -> SnapshotBooks {
        SnapshotBooks {
            group,
            accounts: BTreeMap::new(),
            players: BTreeMap::new(),
            system: BTreeMap::new(),
            last_key: [None, None],
        }
    }

    /// Checks one row and adds its money. `Err`: why the snapshot is bad.
    pub(crate) fn row(&mut self, journal: bool, key: &[u8], value: &[u8]) -> Result<(), String> {
        if key.get(..8) != Some(&group_prefix(self.group)[..]) {
            return Err(format!("a row outside group {}", self.group));
        }
        // Install writes each column family's rows, in stream order, to one
        // table file, which takes ascending keys only: a repeated or
        // out-of-order key would fail it after our rows were deleted (and a
        // repeated one would be counted twice here, once in the store).
        let last = &mut self.last_key[usize::from(journal)];
        if last.as_deref().is_some_and(|l| key <= l) {
            return Err("rows out of key order (a key repeated or going back)".to_string());
        }
        *last = Some(key.to_vec());
        if journal {
            return decode::<JournalEntry>("journal entry", key, value)
                .map(drop)
                .map_err(|e| e.to_string());
        }
        let mut row = MemRows::default();
        dump_row(&mut row, key, value).map_err(|e| e.to_string())?;
        for (id, a) in &row.accounts {
            let money = i128::from(a.available) + i128::from(a.held);
            *self.accounts.entry(id.currency).or_default() += money;
        }
        for ((currency, _), amount) in &row.system {
            // Forged balances could wrap the sum into balancing.
            let sum = self.system.entry(*currency).or_default();
            *sum = sum
                .checked_add(*amount)
                .ok_or_else(|| format!("{currency}: the system accounts overflow"))?;
        }
        for (currency, total) in &row.players_total {
            self.players.insert(*currency, *total);
        }
        Ok(())
    }

    /// Whether the books balance in every currency.
    pub(crate) fn balanced(&self) -> Result<(), String> {
        let currencies = self
            .accounts
            .keys()
            .chain(self.players.keys())
            .chain(self.system.keys());
        for c in currencies {
            let accounts = self.accounts.get(c).copied().unwrap_or(0);
            let players = self.players.get(c).copied().unwrap_or(0);
            let system = self.system.get(c).copied().unwrap_or(0);
            if accounts != players {
                return Err(format!(
                    "{c}: the accounts hold {accounts} but the players' total says {players}"
                ));
            }
            if players.checked_add(system) != Some(0) {
                return Err(format!(
                    "{c}: the books do not balance (players {players}, system {system})"
                ));
            }
        }
        Ok(())
    }
}
