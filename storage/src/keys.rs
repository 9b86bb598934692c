//! Key layout. All integers big-endian so RocksDB's byte order is numeric
//! order; every key starts with the 8-byte group id.

use geowallet_ledger::{
    AccountId, Currency, HoldId, PlayerId, SystemAccount, TimeIndex, TimeKey, TxId,
};
use serde::{Deserialize, Serialize};

/// A shard group (one Raft group). Group 0 is reserved for the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupId(pub u64);

impl GroupId {
    /// The directory's group.
    pub const DIRECTORY: GroupId = GroupId(0);
}

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "g{}", self.0)
    }
}

/// Tags of the per-group rows in the meta column family.
#[derive(Debug, Clone, Copy)]
pub(crate) enum MetaTag {
    Vote = 1,
    Committed = 2,
    LastPurged = 3,
    Applied = 4,
    SnapshotInstall = 5,
}

/// Kinds of rows in the state column family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateKind {
    Account = 1,
    Hold = 2,
    Tx = 3,
    System = 4,
    LedgerMeta = 5,
    PlayersTotal = 6,
    TimeIndex = 7,
    /// The directory's own rows (group 0): opaque to storage.
    Directory = 8,
    /// A player's move marker (`geowallet_ledger::PlayerMove`).
    Player = 9,
    /// A transfer to another group not settled yet
    /// (`geowallet_ledger::PendingTransfer`), by payer account and tx id.
    Transfer = 10,
    /// A group's committed events of one Raft entry
    /// (`geowallet_ledger::EntryEvents`), by log index.
    Event = 11,
}

impl StateKind {
    pub(crate) fn from_byte(b: u8) -> Option<StateKind> {
        Some(match b {
            1 => StateKind::Account,
            2 => StateKind::Hold,
            3 => StateKind::Tx,
            4 => StateKind::System,
            5 => StateKind::LedgerMeta,
            6 => StateKind::PlayersTotal,
            7 => StateKind::TimeIndex,
            8 => StateKind::Directory,
            9 => StateKind::Player,
            10 => StateKind::Transfer,
            11 => StateKind::Event,
            _ => return None,
        })
    }
}

pub(crate) fn group_prefix(group: GroupId) -> [u8; 8] {
    group.0.to_be_bytes()
}

/// The first key after every key of `group`.
pub(crate) fn group_end(group: GroupId) -> Vec<u8> {
    match group.0.checked_add(1) {
        Some(next) => next.to_be_bytes().to_vec(),
        None => vec![0xff; 9],
    }
}

pub(crate) fn log_key(group: GroupId, index: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&group.0.to_be_bytes());
    k[8..].copy_from_slice(&index.to_be_bytes());
    k
}

pub(crate) fn log_key_index(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.get(8..16)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

pub(crate) fn meta_key(group: GroupId, tag: MetaTag) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[..8].copy_from_slice(&group.0.to_be_bytes());
    k[8] = tag as u8;
    k
}

fn currency_bytes(c: Currency) -> [u8; 8] {
    let mut out = [0u8; 8];
    let s = c.as_str().as_bytes();
    out[..s.len()].copy_from_slice(s);
    out
}

fn state_key(group: GroupId, kind: StateKind, capacity: usize) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + capacity);
    k.extend_from_slice(&group.0.to_be_bytes());
    k.push(kind as u8);
    k
}

fn push_account(k: &mut Vec<u8>, account: &AccountId) {
    k.extend_from_slice(&account.player.0.to_be_bytes());
    k.extend_from_slice(&currency_bytes(account.currency));
}

pub(crate) fn account_key(group: GroupId, account: &AccountId) -> Vec<u8> {
    let mut k = state_key(group, StateKind::Account, 16);
    push_account(&mut k, account);
    k
}

pub(crate) fn hold_key(group: GroupId, account: &AccountId, hold: &HoldId) -> Vec<u8> {
    let mut k = state_key(group, StateKind::Hold, 16 + hold.as_str().len());
    push_account(&mut k, account);
    k.extend_from_slice(hold.as_str().as_bytes());
    k
}

/// The key range `[lower, upper)` of `player`'s rows of `kind` (accounts,
/// holds, tx records or pending transfers: each starts with the player).
pub(crate) fn player_range(group: GroupId, kind: StateKind, player: u64) -> (Vec<u8>, Vec<u8>) {
    let mut lower = state_key(group, kind, 8);
    let mut upper = lower.clone();
    lower.extend_from_slice(&player.to_be_bytes());
    match player.checked_add(1) {
        Some(next) => upper.extend_from_slice(&next.to_be_bytes()),
        // The kind's last player: every key after the kind byte.
        None => *upper.last_mut().expect("a kind byte") += 1,
    }
    (lower, upper)
}

/// A player's move marker.
pub(crate) fn player_key(group: GroupId, player: u64) -> Vec<u8> {
    let mut k = state_key(group, StateKind::Player, 8);
    k.extend_from_slice(&player.to_be_bytes());
    k
}

/// A transaction record: per wallet (a command's primary account), so a
/// wallet's records are one key range that can move with it.
pub(crate) fn tx_key(group: GroupId, wallet: &AccountId, tx: &TxId) -> Vec<u8> {
    let mut k = state_key(group, StateKind::Tx, 16 + tx.as_str().len());
    push_account(&mut k, wallet);
    k.extend_from_slice(tx.as_str().as_bytes());
    k
}

/// A pending transfer: by payer account and tx id, so a wallet's pending
/// transfers are one key range that moves with it.
pub(crate) fn transfer_key(group: GroupId, from: &AccountId, tx: &TxId) -> Vec<u8> {
    let mut k = state_key(group, StateKind::Transfer, 16 + tx.as_str().len());
    push_account(&mut k, from);
    k.extend_from_slice(tx.as_str().as_bytes());
    k
}

/// Every pending transfer key of `group`: `[lower, upper)`.
pub(crate) fn transfer_range(group: GroupId) -> (Vec<u8>, Vec<u8>) {
    let lower = state_key(group, StateKind::Transfer, 0);
    let mut upper = lower.clone();
    *upper.last_mut().expect("a kind byte") += 1;
    (lower, upper)
}

pub(crate) fn players_total_key(group: GroupId, currency: Currency) -> Vec<u8> {
    let mut k = state_key(group, StateKind::PlayersTotal, 8);
    k.extend_from_slice(&currency_bytes(currency));
    k
}

fn time_index_byte(index: TimeIndex) -> u8 {
    match index {
        TimeIndex::HoldExpiry => 1,
        TimeIndex::HoldClosed => 2,
        TimeIndex::TxCreated => 3,
    }
}

/// A time index key: kind, time (big-endian, so keys sort by time), wallet, id.
pub(crate) fn time_key(group: GroupId, key: &TimeKey) -> Vec<u8> {
    let (account, id) = match key {
        TimeKey::HoldExpiry { account, hold, .. } | TimeKey::HoldClosed { account, hold, .. } => {
            (account, hold.as_str())
        }
        TimeKey::TxCreated { account, tx, .. } => (account, tx.as_str()),
    };
    let mut k = state_key(group, StateKind::TimeIndex, 25 + id.len());
    k.push(time_index_byte(key.index()));
    k.extend_from_slice(&key.time_ns().to_be_bytes());
    push_account(&mut k, account);
    k.extend_from_slice(id.as_bytes());
    k
}

/// The keys of `index` with time in `from_ns..=until_ns`: `[lower, upper)`.
pub(crate) fn time_range(
    group: GroupId,
    index: TimeIndex,
    from_ns: u64,
    until_ns: u64,
) -> (Vec<u8>, Vec<u8>) {
    let mut prefix = state_key(group, StateKind::TimeIndex, 9);
    prefix.push(time_index_byte(index));
    let mut upper = prefix.clone();
    let mut lower = prefix;
    lower.extend_from_slice(&from_ns.to_be_bytes());
    match until_ns.checked_add(1) {
        Some(end) => upper.extend_from_slice(&end.to_be_bytes()),
        None => *upper.last_mut().expect("non-empty") += 1,
    }
    (lower, upper)
}

/// Decodes a time index key (after the 9-byte prefix).
pub(crate) fn decode_time_key(rest: &[u8]) -> Option<TimeKey> {
    let time_ns = u64::from_be_bytes(rest.get(1..9)?.try_into().ok()?);
    let account = decode_account(rest.get(9..25)?)?;
    let id = std::str::from_utf8(rest.get(25..)?).ok()?;
    Some(match rest.first()? {
        1 => TimeKey::HoldExpiry {
            expires_at_ns: time_ns,
            account,
            hold: HoldId::new(id).ok()?,
        },
        2 => TimeKey::HoldClosed {
            closed_at_ns: time_ns,
            account,
            hold: HoldId::new(id).ok()?,
        },
        3 => TimeKey::TxCreated {
            created_at_ns: time_ns,
            account,
            tx: TxId::new(id).ok()?,
        },
        _ => return None,
    })
}

pub(crate) fn system_key(group: GroupId, currency: Currency, which: SystemAccount) -> Vec<u8> {
    let mut k = state_key(group, StateKind::System, 9);
    k.extend_from_slice(&currency_bytes(currency));
    k.push(system_byte(which));
    k
}

/// The key byte of a system account; stored, so never renumbered.
fn system_byte(which: SystemAccount) -> u8 {
    match which {
        SystemAccount::House => 1,
        SystemAccount::Gateway => 2,
        SystemAccount::Transit => 3,
    }
}

/// A row of the directory: which one, as the directory names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DirKey {
    /// The shard groups the directory places players in.
    Groups,
    /// One player's placement.
    Placement(u64),
}

pub(crate) fn directory_key(group: GroupId, key: DirKey) -> Vec<u8> {
    let mut k = state_key(group, StateKind::Directory, 9);
    match key {
        DirKey::Groups => k.push(1),
        DirKey::Placement(player) => {
            k.push(2);
            k.extend_from_slice(&player.to_be_bytes());
        }
    }
    k
}

/// The events of the group's entry `log_index`.
pub(crate) fn event_key(group: GroupId, log_index: u64) -> Vec<u8> {
    let mut k = state_key(group, StateKind::Event, 8);
    k.extend_from_slice(&log_index.to_be_bytes());
    k
}

/// The first key after every event row of `group`.
pub(crate) fn event_end(group: GroupId) -> Vec<u8> {
    state_key(group, StateKind::Event, 0)
        .into_iter()
        .chain([0xff; 9])
        .collect()
}

pub(crate) fn ledger_meta_key(group: GroupId) -> Vec<u8> {
    state_key(group, StateKind::LedgerMeta, 0)
}

/// A journal line: by wallet and the wallet's own sequence number.
pub(crate) fn journal_key(group: GroupId, account: &AccountId, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(32);
    k.extend_from_slice(&group.0.to_be_bytes());
    push_account(&mut k, account);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub(crate) fn journal_account_prefix(group: GroupId, account: &AccountId) -> Vec<u8> {
    let mut k = Vec::with_capacity(24);
    k.extend_from_slice(&group.0.to_be_bytes());
    push_account(&mut k, account);
    k
}

/// Decodes an account as `push_account` writes it (exactly 16 bytes).
pub(crate) fn decode_account(raw: &[u8]) -> Option<AccountId> {
    let player = u64::from_be_bytes(raw.get(..8)?.try_into().ok()?);
    let currency = decode_currency(raw.get(8..)?)?;
    Some(AccountId {
        player: PlayerId(player),
        currency,
    })
}

/// Decodes a currency as `currency_bytes` writes it, and nothing else: with
/// other bytes after the code's NUL, a key would name the same row as the
/// one we write, and scans (a snapshot's check, totals) would count it
/// while point reads (apply) miss it.
pub(crate) fn decode_currency(raw: &[u8]) -> Option<Currency> {
    let len = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
    let currency = Currency::parse(std::str::from_utf8(&raw[..len]).ok()?).ok()?;
    (currency_bytes(currency)[..] == *raw).then_some(currency)
}

/// Decodes the rest of a system account key (exactly 9 bytes).
pub(crate) fn decode_system(rest: &[u8]) -> Option<(Currency, SystemAccount)> {
    if rest.len() != 9 {
        return None;
    }
    let currency = decode_currency(&rest[..8])?;
    let byte = rest[8];
    let which = SystemAccount::ALL
        .into_iter()
        .find(|s| system_byte(*s) == byte)?;
    Some((currency, which))
}
