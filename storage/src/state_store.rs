use std::collections::BTreeMap;
use std::path::Path;

use geowallet_ledger::{
    Account, AccountId, Changes, Currency, EntryEvents, Hold, HoldId, JournalEntry, LogIndex,
    MemRows, Meta, PendingTransfer, PlayerId, PlayerMove, SystemAccount, TimeKey, TxId, TxRecord,
};

use crate::DefaultEngine;
use crate::engine::{Batch, Cf, Direction, Engine, EngineView};
use crate::keys::{
    DirKey, MetaTag, StateKind, account_key, decode_account, decode_currency, decode_system,
    decode_time_key, directory_key, event_end, event_key, group_end, group_prefix, hold_key,
    journal_account_prefix, journal_key, ledger_meta_key, player_key, players_total_key,
    system_key, time_key, transfer_key, transfer_range, tx_key,
};
use crate::seal::{decode, encode, seal, unseal};
use crate::snapshot_file;
use crate::{CheckpointInfo, Db, GroupId, StorageError, StoreRows};

/// The ledger state of one group in RocksDB: accounts, holds, transaction
/// records, system balances, per-currency totals, the time indexes and the
/// journal, plus the applied Raft position (opaque bytes from the Raft
/// layer) written in the same batch. Nothing of it is kept in memory: apply
/// reads the rows an entry touches through [`StateStore::rows`].
pub struct StateStore<E: Engine = DefaultEngine> {
    pub(crate) db: Db<E>,
    pub(crate) group: GroupId,
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
    /// The first line of the next page, if there is more.
    pub next: Option<JournalEntry>,
}

/// Where a journal page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalFrom {
    /// At this wallet sequence number (lines are numbered from 1).
    Seq(u64),
    /// At the first line applied at or after (log index, position): the
    /// older cursor, which scans the wallet's earlier lines to find it.
    Position(LogIndex, u32),
}

/// Journal entries per page at most.
const JOURNAL_PAGE_MAX: usize = 1000;

/// One currency's money: players' total and the system accounts' position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CurrencyMoney {
    /// Sum of available + held over every player account.
    pub players: i128,
    /// Net position of the house, gateway and transit accounts; `-players`
    /// when the books balance.
    pub system: i128,
    /// The transit account's part of `system`.
    pub transit: i128,
}

/// Whether a read also sums up every currency's totals (an audit) or not
/// (a balance read, on the hot path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Totals {
    Read,
    Skip,
}

/// Accounts and every currency's totals, read at one applied position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRead {
    /// In the order asked; `None` for an account that does not exist.
    pub accounts: Vec<Option<Account>>,
    /// Empty unless read with `Totals::Read`.
    pub totals: BTreeMap<Currency, CurrencyMoney>,
    /// The applied position (opaque Raft bytes) the read reflects.
    pub applied: Option<Vec<u8>>,
    /// The move markers of the players of accounts that do not exist here
    /// (a wallet moving away, or gone), from the same view.
    pub moves: BTreeMap<PlayerId, PlayerMove>,
}

impl<E: Engine> StateStore<E> {
    pub(crate) fn new(db: Db<E>, group: GroupId) -> StateStore<E> {
        StateStore { db, group }
    }

    pub fn group(&self) -> GroupId {
        self.group
    }

    /// The applied position, after finishing a snapshot install that a
    /// crash interrupted. Reads no ledger row: a restart serves at once.
    pub fn open_applied(&self) -> Result<Option<Vec<u8>>, StorageError> {
        if let Some(path) = self.db.get_meta(self.group, MetaTag::SnapshotInstall)? {
            let path = String::from_utf8_lossy(&path).into_owned();
            tracing::warn!(group = %self.group, %path, "resuming an interrupted snapshot install");
            self.install_snapshot(Path::new(&path))?;
        }
        self.db.get_meta(self.group, MetaTag::Applied)
    }

    /// The rows as of the last persisted apply, for `geowallet_ledger::apply`.
    pub fn rows(&self) -> StoreRows<'_, E> {
        StoreRows::new(self)
    }

    /// Writes what one apply changed together with the applied position, in
    /// one atomic batch (no fsync: the Raft log is the durable record).
    pub fn persist(&self, changes: &Changes, applied: &[u8]) -> Result<(), StorageError> {
        self.persist_with_events(changes, applied, None)
    }

    /// [`StateStore::persist`], and the entry's committed `events` (with
    /// their chain value) in the same batch.
    pub fn persist_with_events(
        &self,
        changes: &Changes,
        applied: &[u8],
        events: Option<&EntryEvents>,
    ) -> Result<(), StorageError> {
        let mut batch = Batch::default();
        let g = self.group;
        for (id, account) in &changes.accounts {
            match account {
                Some(a) => batch.put(Cf::State, account_key(g, id), encode("account", a)?),
                None => batch.delete(Cf::State, account_key(g, id)),
            }
        }
        for (player, m) in &changes.players {
            match m {
                Some(m) => batch.put(
                    Cf::State,
                    player_key(g, player.0),
                    encode("player move", m)?,
                ),
                None => batch.delete(Cf::State, player_key(g, player.0)),
            }
        }
        for ((id, hold_id), hold) in &changes.holds {
            match hold {
                Some(h) => batch.put(Cf::State, hold_key(g, id, hold_id), encode("hold", h)?),
                None => batch.delete(Cf::State, hold_key(g, id, hold_id)),
            }
        }
        for ((from, tx), t) in &changes.transfers {
            match t {
                Some(t) => batch.put(
                    Cf::State,
                    transfer_key(g, from, tx),
                    encode("pending transfer", t)?,
                ),
                None => batch.delete(Cf::State, transfer_key(g, from, tx)),
            }
        }
        for ((wallet, tx), record) in &changes.tx_records {
            match record {
                Some(r) => batch.put(Cf::State, tx_key(g, wallet, tx), encode("tx record", r)?),
                None => batch.delete(Cf::State, tx_key(g, wallet, tx)),
            }
        }
        for ((currency, which), balance) in &changes.system {
            let key = system_key(g, *currency, *which);
            batch.put(Cf::State, key, seal(&balance.to_le_bytes()));
        }
        for (currency, total) in &changes.players_total {
            let key = players_total_key(g, *currency);
            batch.put(Cf::State, key, seal(&total.to_le_bytes()));
        }
        for (key, present) in &changes.time_index {
            if *present {
                batch.put(Cf::State, time_key(g, key), seal(&[]));
            } else {
                batch.delete(Cf::State, time_key(g, key));
            }
        }
        if let Some(meta) = &changes.meta {
            batch.put(Cf::State, ledger_meta_key(g), encode("ledger meta", meta)?);
        }
        for e in &changes.journal {
            let key = journal_key(g, &e.account, e.seq);
            batch.put(Cf::Journal, key, encode("journal entry", e)?);
        }
        if let Some(e) = events {
            batch.put(Cf::State, event_key(g, e.log_index), encode("events", e)?);
        }
        Db::<E>::meta_put(&mut batch, g, MetaTag::Applied, applied);
        self.db.write(batch, false)
    }

    /// The group's committed events from entry `from_index` on, oldest
    /// first, at most `limit` entries.
    pub fn events_from(
        &self,
        from_index: u64,
        limit: usize,
    ) -> Result<Vec<EntryEvents>, StorageError> {
        let mut out = Vec::new();
        self.db.engine().scan(
            Cf::State,
            &event_key(self.group, from_index),
            &event_end(self.group),
            Direction::Forward,
            &mut |k, v| {
                out.push(decode::<EntryEvents>("events", k, v)?);
                Ok(out.len() < limit.max(1))
            },
        )?;
        Ok(out)
    }

    /// The group's last committed events (their chain is the group's
    /// current chain value); `None` before any.
    pub fn last_events(&self) -> Result<Option<EntryEvents>, StorageError> {
        let mut out = None;
        self.db.engine().scan(
            Cf::State,
            &event_key(self.group, 0),
            &event_end(self.group),
            Direction::Reverse,
            &mut |k, v| {
                out = Some(decode::<EntryEvents>("events", k, v)?);
                Ok(false)
            },
        )?;
        Ok(out)
    }

    /// `accounts` (and, with `Totals::Read`, every currency's totals) from
    /// one consistent view, with the applied position it reflects.
    pub fn read_at(
        &self,
        accounts: &[AccountId],
        totals: Totals,
    ) -> Result<AuditRead, StorageError> {
        let mut out = None;
        let g = self.group;
        self.db.engine().with_snapshot(&mut |view| {
            let keys: Vec<Vec<u8>> = accounts.iter().map(|a| account_key(g, a)).collect();
            let mut read = Vec::with_capacity(accounts.len());
            for (key, value) in keys.iter().zip(view.multi_get(Cf::State, &keys)?) {
                read.push(
                    value
                        .map(|v| decode::<Account>("account", key, &v))
                        .transpose()?,
                );
            }
            let totals = match totals {
                Totals::Read => read_totals(view, g)?,
                Totals::Skip => BTreeMap::new(),
            };
            let absent: std::collections::BTreeSet<PlayerId> = accounts
                .iter()
                .zip(&read)
                .filter(|(_, a)| a.is_none())
                .map(|(id, _)| id.player)
                .collect();
            let mut moves = BTreeMap::new();
            let keys: Vec<Vec<u8>> = absent.iter().map(|p| player_key(g, p.0)).collect();
            for ((player, key), value) in absent
                .iter()
                .zip(&keys)
                .zip(view.multi_get(Cf::State, &keys)?)
            {
                if let Some(v) = value {
                    moves.insert(*player, decode::<PlayerMove>("player move", key, &v)?);
                }
            }
            let applied = Db::<E>::meta_in(view, g, MetaTag::Applied)?;
            out = Some(AuditRead {
                accounts: read,
                totals,
                applied,
                moves,
            });
            Ok(())
        })?;
        Ok(out.expect("with_snapshot runs its closure"))
    }

    /// `player`'s move marker here, checksum verified.
    pub fn player_move(&self, player: PlayerId) -> Result<Option<PlayerMove>, StorageError> {
        let key = player_key(self.group, player.0);
        self.db
            .engine()
            .get(Cf::State, &key)?
            .map(|v| decode("player move", &key, &v))
            .transpose()
    }

    /// Every player of this group whose wallet is leaving it (a `Leaving`
    /// marker: a move the group's leader must drive on). Scans every move
    /// marker of the group: O(players that ever moved here or away).
    pub fn moves_leaving(&self) -> Result<Vec<(PlayerId, PlayerMove)>, StorageError> {
        let lower = player_key(self.group, 0);
        let mut upper = player_key(self.group, u64::MAX);
        upper.push(0);
        let mut out = Vec::new();
        self.db.engine().scan(
            Cf::State,
            &lower,
            &upper,
            Direction::Forward,
            &mut |k, v| {
                let marker: PlayerMove = decode("player move", k, v)?;
                if matches!(marker, PlayerMove::Leaving { .. }) {
                    let raw: [u8; 8] = k[k.len() - 8..].try_into().expect("8-byte player id");
                    out.push((PlayerId(u64::from_be_bytes(raw)), marker));
                }
                Ok(true)
            },
        )?;
        Ok(out)
    }

    /// Every transfer of this group to another group not settled yet, by
    /// payer account and tx id (settling deletes the row: O(pending)).
    pub fn transfers_pending(
        &self,
    ) -> Result<Vec<(AccountId, TxId, PendingTransfer)>, StorageError> {
        let (lower, upper) = transfer_range(self.group);
        let mut rows = MemRows::default();
        self.db.engine().scan(
            Cf::State,
            &lower,
            &upper,
            Direction::Forward,
            &mut |k, v| dump_row(&mut rows, k, v).map(|()| true),
        )?;
        Ok(rows
            .transfers
            .into_iter()
            .map(|((from, tx), t)| (from, tx, t))
            .collect())
    }

    /// Journal entries of `account` from `from` on, oldest first.
    pub fn journal_page(
        &self,
        account: &AccountId,
        from: JournalFrom,
        limit: usize,
    ) -> Result<JournalPage, StorageError> {
        let limit = limit.clamp(1, JOURNAL_PAGE_MAX);
        let (from_seq, at) = match from {
            JournalFrom::Seq(seq) => (seq, (LogIndex(0), 0)),
            JournalFrom::Position(index, position) => (0, (index, position)),
        };
        let lower = journal_key(self.group, account, from_seq);
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
                if (entry.log_index, entry.position) < at {
                    return Ok(true);
                }
                if entries.len() == limit {
                    next = Some(entry);
                    return Ok(false);
                }
                entries.push(entry);
                Ok(true)
            },
        )?;
        Ok(JournalPage { entries, next })
    }

    /// A directory row (the directory group's own rows; their encoding is
    /// the directory's), checksum verified.
    pub fn directory_get(&self, key: DirKey) -> Result<Option<Vec<u8>>, StorageError> {
        let k = directory_key(self.group, key);
        match self.db.engine().get(Cf::State, &k)? {
            Some(v) => Ok(Some(unseal(&v, "directory row", &k)?.to_vec())),
            None => Ok(None),
        }
    }

    /// Writes directory rows with the new applied position in one batch.
    pub fn directory_persist(
        &self,
        rows: &[(DirKey, Vec<u8>)],
        applied: &[u8],
    ) -> Result<(), StorageError> {
        let mut batch = Batch::default();
        for (key, value) in rows {
            batch.put(Cf::State, directory_key(self.group, *key), seal(value));
        }
        Db::<E>::meta_put(&mut batch, self.group, MetaTag::Applied, applied);
        self.db.write(batch, false)
    }

    /// Every ledger row of the group, in memory. O(state): for tests and the
    /// simulator's comparison of replicas, never the serving path.
    pub fn dump(&self) -> Result<MemRows, StorageError> {
        let mut rows = MemRows::default();
        let (lower, upper) = (group_prefix(self.group), group_end(self.group));
        self.db.engine().scan(
            Cf::State,
            &lower,
            &upper,
            Direction::Forward,
            &mut |k, v| {
                dump_row(&mut rows, k, v)?;
                Ok(true)
            },
        )?;
        Ok(rows)
    }

    /// Takes a snapshot of this group (state, journal, applied position) as
    /// a checkpoint directory at `dir`: O(1) in the size of the state.
    pub fn build_snapshot(&self, dir: &Path) -> Result<CheckpointInfo, StorageError> {
        snapshot_file::build(&self.db, self.group, dir)
    }

    /// Replaces this group's state with the snapshot at `path`. Crash-safe: a
    /// marker makes `open_applied` finish an interrupted install. Returns the
    /// applied position recorded in the snapshot.
    pub fn install_snapshot(&self, path: &Path) -> Result<Vec<u8>, StorageError> {
        snapshot_file::install(&self.db, self.group, path)
    }

    /// Test and fault-injection hook: an install that stops as if the node
    /// crashed just before ingesting `cf`'s rows (marker left, old rows gone).
    pub fn interrupt_install_for_test(&self, path: &Path, cf: Cf) -> Result<(), StorageError> {
        snapshot_file::install_upto(&self.db, self.group, path, Some(cf)).map(drop)
    }
}

/// Every currency's players' total and system position: the few rows of
/// those two kinds.
fn read_totals(
    view: &dyn EngineView,
    group: GroupId,
) -> Result<BTreeMap<Currency, CurrencyMoney>, StorageError> {
    let mut totals: BTreeMap<Currency, CurrencyMoney> = BTreeMap::new();
    for kind in [StateKind::PlayersTotal, StateKind::System] {
        let mut lower = group_prefix(group).to_vec();
        lower.push(kind as u8);
        let mut upper = lower.clone();
        *upper.last_mut().expect("non-empty") += 1;
        view.scan(
            Cf::State,
            &lower,
            &upper,
            Direction::Forward,
            &mut |k, v| {
                let (currency, amount) = decode_money_row(k, v)?;
                let m = totals.entry(currency).or_default();
                match kind {
                    StateKind::PlayersTotal => m.players = amount,
                    _ => {
                        m.system = m.system.wrapping_add(amount);
                        let transit = k.get(9..).and_then(decode_system);
                        if matches!(transit, Some((_, SystemAccount::Transit))) {
                            m.transit = amount;
                        }
                    }
                }
                Ok(true)
            },
        )?;
    }
    Ok(totals)
}

fn bad_key(key: &[u8]) -> StorageError {
    StorageError::Checksum {
        what: "state key",
        key: crate::seal::hex(key),
    }
}

pub(crate) fn decode_i128(
    key: &[u8],
    value: &[u8],
    what: &'static str,
) -> Result<i128, StorageError> {
    let raw: [u8; 16] = unseal(value, what, key)?
        .try_into()
        .map_err(|_| bad_key(key))?;
    Ok(i128::from_le_bytes(raw))
}

/// A players' total or system balance row: its currency and amount.
fn decode_money_row(key: &[u8], value: &[u8]) -> Result<(Currency, i128), StorageError> {
    let rest = key.get(9..).ok_or_else(|| bad_key(key))?;
    let currency = match key.get(8).and_then(|b| StateKind::from_byte(*b)) {
        Some(StateKind::System) => decode_system(rest).ok_or_else(|| bad_key(key))?.0,
        Some(StateKind::PlayersTotal) => decode_currency(rest).ok_or_else(|| bad_key(key))?,
        _ => return Err(bad_key(key)),
    };
    Ok((currency, decode_i128(key, value, "money row")?))
}

pub(crate) fn dump_row(rows: &mut MemRows, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
    let kind = key
        .get(8)
        .and_then(|b| StateKind::from_byte(*b))
        .ok_or_else(|| bad_key(key))?;
    let rest = &key[9..];
    let token = |bytes: &[u8]| std::str::from_utf8(bytes).ok().map(str::to_owned);
    match kind {
        StateKind::Account => {
            let id = decode_account(rest).ok_or_else(|| bad_key(key))?;
            rows.accounts
                .insert(id, decode::<Account>("account", key, value)?);
        }
        StateKind::Hold => {
            let id = rest.get(..16).and_then(decode_account);
            let id = id.ok_or_else(|| bad_key(key))?;
            let hold = token(&rest[16..]).and_then(|s| HoldId::new(s).ok());
            let hold = hold.ok_or_else(|| bad_key(key))?;
            rows.holds
                .insert((id, hold), decode::<Hold>("hold", key, value)?);
        }
        StateKind::Tx => {
            let wallet = rest.get(..16).and_then(decode_account);
            let wallet = wallet.ok_or_else(|| bad_key(key))?;
            let tx = token(&rest[16..]).and_then(|s| TxId::new(s).ok());
            let tx = tx.ok_or_else(|| bad_key(key))?;
            let record = decode::<TxRecord>("tx record", key, value)?;
            rows.tx_records.insert((wallet, tx), record);
        }
        StateKind::System => {
            let (currency, which) = decode_system(rest).ok_or_else(|| bad_key(key))?;
            rows.system.insert(
                (currency, which),
                decode_i128(key, value, "system balance")?,
            );
        }
        StateKind::PlayersTotal => {
            let currency = decode_currency(rest).ok_or_else(|| bad_key(key))?;
            let total = decode_i128(key, value, "players' total")?;
            rows.players_total.insert(currency, total);
        }
        StateKind::TimeIndex => {
            unseal(value, "time index", key)?;
            let t: TimeKey = decode_time_key(rest).ok_or_else(|| bad_key(key))?;
            rows.time_index.entry(t.index()).or_default().insert(t);
        }
        StateKind::LedgerMeta if rest.is_empty() => {
            rows.meta = decode::<Meta>("ledger meta", key, value)?;
        }
        StateKind::LedgerMeta => return Err(bad_key(key)),
        StateKind::Transfer => {
            let from = rest.get(..16).and_then(decode_account);
            let from = from.ok_or_else(|| bad_key(key))?;
            let tx = token(&rest[16..]).and_then(|s| TxId::new(s).ok());
            let tx = tx.ok_or_else(|| bad_key(key))?;
            let t = decode::<PendingTransfer>("pending transfer", key, value)?;
            rows.transfers.insert((from, tx), t);
        }
        StateKind::Player => {
            let bytes: [u8; 8] = rest.try_into().map_err(|_| bad_key(key))?;
            let player = PlayerId(u64::from_be_bytes(bytes));
            rows.players
                .insert(player, decode::<PlayerMove>("player move", key, value)?);
        }
        // Not ledger rows: checked for damage, for being where their key
        // says and for their chain value matching their content.
        StateKind::Event => {
            let index: [u8; 8] = rest.try_into().map_err(|_| bad_key(key))?;
            let e = decode::<EntryEvents>("events", key, value)?;
            if e.log_index != u64::from_be_bytes(index) || !e.is_sealed() {
                return Err(bad_key(key));
            }
        }
        StateKind::Directory => {
            unseal(value, "directory row", key)?;
        }
    }
    Ok(())
}
