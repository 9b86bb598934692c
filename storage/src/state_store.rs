use std::path::Path;

use geowallet_ledger::{
    Account, AccountId, Changes, Hold, HoldId, JournalEntry, LedgerConfig, LogIndex, Meta, State,
    TxId, TxRecord,
};

use crate::DefaultEngine;
use crate::engine::{Batch, Cf, Direction, Engine};
use crate::keys::{
    MetaTag, StateKind, account_key, decode_account, decode_system, group_end, group_prefix,
    hold_key, journal_account_prefix, journal_key, ledger_meta_key, system_key, tx_key,
};
use crate::seal::{decode, encode, seal, unseal};
use crate::snapshot_file;
use crate::{Db, GroupId, SnapshotFileInfo, StorageError};

/// The ledger state of one group: accounts, holds, transaction records,
/// system balances and the journal, plus the applied Raft position (opaque
/// bytes from the Raft layer) written in the same batch.
pub struct StateStore<E: Engine = DefaultEngine> {
    db: Db<E>,
    group: GroupId,
}

impl<E: Engine> Clone for StateStore<E> {
    fn clone(&self) -> Self {
        StateStore {
            db: self.db.clone(),
            group: self.group,
        }
    }
}

/// One page of an account's journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalPage {
    pub entries: Vec<JournalEntry>,
    /// Where the next page starts, if there is more.
    pub next: Option<(LogIndex, u32)>,
}

/// Journal entries per page at most.
pub const JOURNAL_PAGE_MAX: usize = 1000;

impl<E: Engine> StateStore<E> {
    pub(crate) fn new(db: Db<E>, group: GroupId) -> StateStore<E> {
        StateStore { db, group }
    }

    pub fn group(&self) -> GroupId {
        self.group
    }

    /// Loads the whole ledger state and the applied position. Finishes a
    /// snapshot install that a crash interrupted first.
    pub fn load(&self, config: LedgerConfig) -> Result<(State, Option<Vec<u8>>), StorageError> {
        if let Some(path) = self.db.get_meta(self.group, MetaTag::SnapshotInstall)? {
            let path = String::from_utf8_lossy(&path).into_owned();
            tracing::warn!(group = %self.group, %path, "resuming an interrupted snapshot install");
            self.install_snapshot(Path::new(&path))?;
        }
        let mut state = State::new(config);
        let (lower, upper) = (group_prefix(self.group), group_end(self.group));
        self.db.engine().scan(
            Cf::State,
            &lower,
            &upper,
            Direction::Forward,
            &mut |k, v| {
                restore_row(&mut state, k, v)?;
                Ok(true)
            },
        )?;
        let applied = self.db.get_meta(self.group, MetaTag::Applied)?;
        Ok((state, applied))
    }

    /// Writes what one apply changed together with the applied position, in
    /// one atomic batch (no fsync: the Raft log is the durable record).
    pub fn persist(&self, changes: &Changes, applied: &[u8]) -> Result<(), StorageError> {
        let mut batch = Batch::default();
        let g = self.group;
        for (id, account) in &changes.accounts {
            batch.put(Cf::State, account_key(g, id), encode("account", account)?);
        }
        for (id, hold_id, hold) in &changes.holds {
            match hold {
                Some(h) => batch.put(Cf::State, hold_key(g, id, hold_id), encode("hold", h)?),
                None => batch.delete(Cf::State, hold_key(g, id, hold_id)),
            }
        }
        for (tx, record) in &changes.tx_records {
            match record {
                Some(r) => batch.put(Cf::State, tx_key(g, tx), encode("tx record", r)?),
                None => batch.delete(Cf::State, tx_key(g, tx)),
            }
        }
        for (currency, which, balance) in &changes.system {
            batch.put(
                Cf::State,
                system_key(g, *currency, *which),
                seal(&balance.to_le_bytes()),
            );
        }
        if let Some(meta) = &changes.meta {
            batch.put(Cf::State, ledger_meta_key(g), encode("ledger meta", meta)?);
        }
        for e in &changes.journal {
            let key = journal_key(g, &e.account, e.log_index, e.position);
            batch.put(Cf::Journal, key, encode("journal entry", e)?);
        }
        Db::<E>::meta_put(&mut batch, g, MetaTag::Applied, applied);
        self.db.write(batch, false)
    }

    /// Journal entries of `account` from `from` on, oldest first.
    pub fn journal_page(
        &self,
        account: &AccountId,
        from: (LogIndex, u32),
        limit: usize,
    ) -> Result<JournalPage, StorageError> {
        let limit = limit.clamp(1, JOURNAL_PAGE_MAX);
        let lower = journal_key(self.group, account, from.0, from.1);
        let mut upper = journal_account_prefix(self.group, account);
        upper.push(0xff);
        let mut entries = Vec::new();
        let mut next = None;
        self.db.engine().scan(
            Cf::Journal,
            &lower,
            &upper,
            Direction::Forward,
            &mut |k, v| {
                let entry: JournalEntry = decode("journal entry", k, v)?;
                if entries.len() == limit {
                    next = Some((entry.log_index, entry.position));
                    return Ok(false);
                }
                entries.push(entry);
                Ok(true)
            },
        )?;
        Ok(JournalPage { entries, next })
    }

    /// Writes a snapshot of this group (state, journal, applied position) to
    /// `path`, from one consistent view of the store, in checksummed chunks.
    pub fn build_snapshot(&self, path: &Path) -> Result<SnapshotFileInfo, StorageError> {
        snapshot_file::build(&self.db, self.group, path)
    }

    /// Replaces this group's state with the snapshot at `path`. Crash-safe: a
    /// marker makes `load` finish an interrupted install. Returns the applied
    /// position recorded in the snapshot.
    pub fn install_snapshot(&self, path: &Path) -> Result<Vec<u8>, StorageError> {
        snapshot_file::install(&self.db, self.group, path)
    }
}

fn restore_row(state: &mut State, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
    let bad_key = || StorageError::Checksum {
        what: "state key",
        key: crate::seal::hex(key),
    };
    let kind = key
        .get(8)
        .and_then(|b| StateKind::from_byte(*b))
        .ok_or_else(bad_key)?;
    let rest = &key[9..];
    match kind {
        StateKind::Account => {
            let id = decode_account(rest).ok_or_else(bad_key)?;
            let account = decode::<Account>("account", key, value)?;
            // apply never writes such a row: it is damage, reported, not restored.
            if account.total().is_none() {
                let key = crate::seal::hex(key);
                return Err(StorageError::Checksum {
                    what: "account row (available + held overflows)",
                    key,
                });
            }
            state.restore_account(id, account);
        }
        StateKind::Hold => {
            let id = decode_account(rest).ok_or_else(bad_key)?;
            let hold_id = std::str::from_utf8(&rest[16..])
                .ok()
                .and_then(|s| HoldId::new(s).ok())
                .ok_or_else(bad_key)?;
            state.restore_hold(id, hold_id, decode::<Hold>("hold", key, value)?);
        }
        StateKind::Tx => {
            let tx = std::str::from_utf8(rest)
                .ok()
                .and_then(|s| TxId::new(s).ok())
                .ok_or_else(bad_key)?;
            state.restore_tx_record(tx, decode::<TxRecord>("tx record", key, value)?);
        }
        StateKind::System => {
            let (currency, which) = decode_system(rest).ok_or_else(bad_key)?;
            let raw: [u8; 16] = unseal(value, "system balance", key)?
                .try_into()
                .map_err(|_| bad_key())?;
            state.restore_system(currency, which, i128::from_le_bytes(raw));
        }
        StateKind::LedgerMeta => state.restore_meta(decode::<Meta>("ledger meta", key, value)?),
    }
    Ok(())
}
