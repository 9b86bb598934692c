use std::time::{SystemTime, UNIX_EPOCH};

use geowallet_proto::v1 as pb;

/// A wallet: one player's balance in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Account {
    pub player: u64,
    pub currency: String,
}

impl Account {
    pub fn new(player: u64, currency: impl Into<String>) -> Account {
        Account {
            player,
            currency: currency.into(),
        }
    }

    pub(crate) fn to_pb(&self) -> pb::AccountRef {
        pb::AccountRef {
            player: self.player,
            currency: self.currency.clone(),
        }
    }
}

impl std::fmt::Display for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.player, self.currency)
    }
}

/// A transaction id with the time it was first created. Keep it and pass the
/// same `Tx` again to retry a command safely. Made only by [`Tx::new`] (now)
/// or [`Tx::with_created_at`] (a retry after a restart): no conversion from
/// a bare id, which would stamp a new time and turn a retry into a new
/// transaction once the first one's record is purged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tx {
    pub id: String,
    pub created_at_ns: u64,
}

impl Tx {
    /// A new transaction stamped with the current time.
    pub fn new(id: impl Into<String>) -> Tx {
        let created_at_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Tx {
            id: id.into(),
            created_at_ns,
        }
    }

    pub fn with_created_at(id: impl Into<String>, created_at_ns: u64) -> Tx {
        Tx {
            id: id.into(),
            created_at_ns,
        }
    }
}

/// Money in an account, in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balance {
    pub available: u64,
    pub held: u64,
}

impl From<pb::Balance> for Balance {
    fn from(b: pb::Balance) -> Balance {
        Balance {
            available: b.available,
            held: b.held,
        }
    }
}

/// What an applied command answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// The Raft log index the command was applied at.
    pub log_index: u64,
    /// The account's balance right after the command.
    pub balance: Balance,
    /// For a transfer: the receiving account's balance after it.
    pub counterpart: Option<Balance>,
}

impl From<pb::Receipt> for Receipt {
    fn from(r: pb::Receipt) -> Receipt {
        Receipt {
            log_index: r.log_index,
            balance: r.balance.unwrap_or_default().into(),
            counterpart: r.counterpart.map(Into::into),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditKind {
    Deposit,
    Win,
    Bonus,
    Refund,
}

impl CreditKind {
    pub(crate) fn to_pb(self) -> i32 {
        (match self {
            CreditKind::Deposit => pb::CreditKind::Deposit,
            CreditKind::Win => pb::CreditKind::Win,
            CreditKind::Bonus => pb::CreditKind::Bonus,
            CreditKind::Refund => pb::CreditKind::Refund,
        }) as i32
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebitKind {
    Bet,
    Withdrawal,
    Fee,
}

impl DebitKind {
    pub(crate) fn to_pb(self) -> i32 {
        (match self {
            DebitKind::Bet => pb::DebitKind::Bet,
            DebitKind::Withdrawal => pb::DebitKind::Withdrawal,
            DebitKind::Fee => pb::DebitKind::Fee,
        }) as i32
    }
}

/// One journal line of an account.
/// One currency's money at an audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CurrencyTotals {
    /// Sum of available + held over every player account.
    pub players: i128,
    /// Net position of the system accounts (house, gateway, transit);
    /// `-players` when the books balance.
    pub system: i128,
    /// The transit account's part of `system`: money sent to other groups
    /// (wallets moving, transfers between groups) not yet taken in there,
    /// minus money taken in from them; over all groups, 0 once nothing is
    /// in flight.
    pub transit: i128,
}

/// What [`crate::Client::audit`] read, all at one applied index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    pub read_index: u64,
    /// Each asked account with its balance; `None` if it does not exist.
    pub balances: Vec<(Account, Option<Balance>)>,
    /// Per currency code.
    pub totals: std::collections::BTreeMap<String, CurrencyTotals>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// The wallet's own line number, from 1, without gaps.
    pub seq: u64,
    /// The shard group and log entry that applied the line.
    pub group: u64,
    pub log_index: u64,
    pub position: u32,
    pub tx_id: String,
    pub kind: String,
    pub amount: u64,
    pub balance: Balance,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalPage {
    pub entries: Vec<JournalEntry>,
    /// Where the next page starts, if there is more.
    pub next: Option<JournalCursor>,
    /// (log index, position) of the next page's first line, if there is more.
    pub next_at: Option<(u64, u32)>,
}

/// Where a journal page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalCursor {
    /// At the wallet's line `seq` (lines are numbered from 1).
    Seq(u64),
    /// At the first line applied at or after this log index and position
    /// (the older cursor; the server scans the wallet's earlier lines).
    Position { log_index: u64, position: u32 },
}

impl JournalCursor {
    /// The wallet's first line.
    pub const START: JournalCursor = JournalCursor::Seq(0);
}

/// One node's view of its group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub node_id: u64,
    pub state: String,
    pub leader_id: u64,
    pub leader_endpoint: String,
    pub term: u64,
    pub last_log_index: u64,
    pub committed_index: u64,
    pub applied_index: u64,
    pub snapshot_index: u64,
    /// (node id, endpoint, matched log index as the leader sees it)
    pub members: Vec<(u64, String, u64)>,
    /// Each member's clock minus this node's, as this node last measured it
    /// (absent when never measured).
    pub clock_offsets_ns: Vec<(u64, i64)>,
    /// This node leads but its clock disagrees with a quorum of the voters'
    /// clocks: it refuses writes and stamps no ledger time.
    pub clock_refusing_writes: bool,
    /// Why it refuses (empty when it does not).
    pub clock_detail: String,
    /// This node's place.
    pub region: String,
    pub dc: String,
    /// Every node of the cluster as this node's topology knows it.
    pub nodes: Vec<NodeRef>,
    /// Every group this node hosts (the fields above repeat the default
    /// group's).
    pub groups: Vec<GroupStatus>,
    /// Wallet moves this node drove since it started (a cluster with a
    /// directory only).
    pub moves: Option<MoveStats>,
}

/// Wallet moves one node drove, as leader of the groups wallets left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MoveStats {
    pub started: u64,
    pub completed: u64,
    /// Refused by the target before anything arrived: the wallet returned.
    pub returned: u64,
    /// Drives cut short (the move resumes from the log).
    pub interrupted: u64,
    pub in_flight: u64,
    /// Time in each step, summed over the steps completed (ns).
    pub leave_ns: u64,
    pub arrive_ns: u64,
    pub repoint_ns: u64,
    pub finish_ns: u64,
    /// Transfers between groups this node began.
    pub transfers_begun: u64,
    /// Transfers between groups not settled yet in the groups it leads.
    pub transfers_pending: u64,
}

/// A node of the cluster: where it is reached and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRef {
    pub id: u64,
    pub endpoint: String,
    pub region: String,
    pub dc: String,
}

/// One shard group as the reporting node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStatus {
    pub id: u64,
    pub home_region: String,
    /// The reporting node's role in the group.
    pub state: String,
    /// 0 when unknown.
    pub leader_id: u64,
    pub term: u64,
    pub last_log_index: u64,
    pub committed_index: u64,
    pub applied_index: u64,
    pub snapshot_index: u64,
    pub replicas: Vec<Replica>,
    pub clock_refusing_writes: bool,
    pub clock_detail: String,
    /// Reported by the leader: writes are acknowledged without a
    /// datacenter of the home region.
    pub degraded: bool,
    /// The group's policy: `available` or `strict`.
    pub dual_dc: String,
}

/// A voter of a group. `matched_index` is known on the leader only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub id: u64,
    pub endpoint: String,
    pub region: String,
    pub dc: String,
    pub matched_index: u64,
    pub clock_offset_ns: i64,
}

/// Where a player's wallet is: its shard group, the group's home region
/// and the placement epoch (+1 at every move).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub group: u64,
    pub epoch: u64,
    pub home_region: String,
    /// `Client::migrate` only: false when the call found the player in
    /// such a group (already there, or moved by an earlier attempt of the
    /// call that was retried); the epoch tells how many moves happened.
    pub moved: bool,
}
