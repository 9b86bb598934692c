//! Who may call what on the client API. A caller's identity comes from its
//! client certificate (see `tls`); its role from the node's `[tls.clients]`
//! map, or, for a certificate whose name is a role's, that role (what
//! `geowallet dev` issues). Every refusal is a typed `PermissionDenied`
//! and a log line, before anything is read or proposed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tonic::Status;

/// Who is on the other end of a connection, from its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A node of the cluster (common name `node-<id>`).
    Node(u64),
    /// A client, by its certificate's common name.
    Client(String),
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Node(id) => write!(f, "node-{id}"),
            Identity::Client(name) => write!(f, "client {name:?}"),
        }
    }
}

/// What tonic hands a service about the connection a request came on
/// (a request extension).
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub remote: SocketAddr,
    /// The connection passed the TLS handshake (with a certificate of the
    /// cluster's CA).
    pub tls: bool,
    /// What the certificate names; `None` without TLS or a common name.
    pub identity: Option<Identity>,
}

/// A client role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything (bootstrap, tests; like CockroachDB's root user).
    Root,
    /// Game servers: bets and wins, holds and what closes them.
    Game,
    /// Payment services: deposits, withdrawals, their holds, transfers.
    Payments,
    /// Operators: status, freezing, moves, leadership, placement, backups.
    Ops,
    /// Auditors: reads only.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Root,
        Role::Game,
        Role::Payments,
        Role::Ops,
        Role::Auditor,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Root => "root",
            Role::Game => "game",
            Role::Payments => "payments",
            Role::Ops => "ops",
            Role::Auditor => "auditor",
        }
    }

    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Whether this role may take `action`.
    pub fn may(self, action: Action) -> bool {
        use Action::*;
        match self {
            Role::Root => true,
            Role::Game => matches!(
                action,
                Open | Bet | Win | Hold | Capture | Release | Balance | Place | Placement
            ),
            Role::Payments => matches!(
                action,
                Open | Deposit
                    | Withdraw
                    | Fee
                    | Transfer
                    | Hold
                    | Capture
                    | Release
                    | Balance
                    | Events
                    | Place
                    | Placement
            ),
            Role::Ops => matches!(
                action,
                Status | Freeze | Unfreeze | Migrate | TransferLeader | Backup | Place | Placement
            ),
            Role::Auditor => matches!(
                action,
                Balance | Journal | Events | Audit | Status | Placement
            ),
        }
    }
}

/// One thing a client API call does (each command of an `Execute` is one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Open,
    /// Credit of kind deposit (money in from the payment gateway).
    Deposit,
    /// Credit of kind win, bonus or refund (money from the house).
    Win,
    /// Debit, or capture of a hold, of kind withdrawal (money out to the
    /// payment gateway).
    Withdraw,
    /// Debit, or capture of a hold, of kind bet (money to the house).
    Bet,
    /// Debit, or capture of a hold, of kind fee.
    Fee,
    Transfer,
    Hold,
    Capture,
    Release,
    Freeze,
    Unfreeze,
    Balance,
    Journal,
    /// The change stream of a group's committed events.
    Events,
    Audit,
    Status,
    Place,
    Placement,
    TransferLeader,
    Migrate,
    /// A consistent copy of a group's state (`ctl backup`).
    Backup,
}

impl Action {
    pub const ALL: [Action; 22] = [
        Action::Open,
        Action::Deposit,
        Action::Win,
        Action::Withdraw,
        Action::Bet,
        Action::Fee,
        Action::Transfer,
        Action::Hold,
        Action::Capture,
        Action::Release,
        Action::Freeze,
        Action::Unfreeze,
        Action::Balance,
        Action::Journal,
        Action::Events,
        Action::Audit,
        Action::Status,
        Action::Place,
        Action::Placement,
        Action::TransferLeader,
        Action::Migrate,
        Action::Backup,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::Open => "open",
            Action::Deposit => "deposit",
            Action::Win => "win",
            Action::Withdraw => "withdraw",
            Action::Bet => "bet",
            Action::Fee => "fee",
            Action::Transfer => "transfer",
            Action::Hold => "hold",
            Action::Capture => "capture",
            Action::Release => "release",
            Action::Freeze => "freeze",
            Action::Unfreeze => "unfreeze",
            Action::Balance => "balance",
            Action::Journal => "journal",
            Action::Events => "events",
            Action::Audit => "audit",
            Action::Status => "status",
            Action::Place => "place",
            Action::Placement => "placement",
            Action::TransferLeader => "transfer-leader",
            Action::Migrate => "migrate",
            Action::Backup => "backup",
        }
    }
}

/// The client API's access rules of one node.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Client certificate names with the role each has (beyond names that
    /// are roles' own).
    pub clients: Arc<BTreeMap<String, Role>>,
}

impl Access {
    /// The role of `identity`: the cluster's nodes call each other's client
    /// API (directory lookups, status) with every right.
    fn role_of(&self, identity: &Identity) -> Option<Role> {
        match identity {
            Identity::Node(_) => Some(Role::Root),
            Identity::Client(name) => self
                .clients
                .get(name)
                .copied()
                .or_else(|| Role::from_name(name)),
        }
    }

    /// Refuses `actions` unless the caller's role may take every one. A
    /// plaintext connection (no TLS: `insecure_plaintext`, the simulator)
    /// is not checked.
    #[allow(clippy::result_large_err)]
    pub fn check(&self, ext: &tonic::Extensions, actions: &[Action]) -> Result<(), Status> {
        let Some(peer) = ext.get::<PeerInfo>().filter(|p| p.tls) else {
            return Ok(());
        };
        let Some(identity) = &peer.identity else {
            return Err(denied(
                peer,
                "a certificate without a name has no role".into(),
            ));
        };
        let Some(role) = self.role_of(identity) else {
            return Err(denied(
                peer,
                format!("{identity} has no role: name it under [tls.clients] in node.toml"),
            ));
        };
        match actions.iter().find(|a| !role.may(**a)) {
            None => Ok(()),
            Some(a) => {
                let allowed: Vec<&str> = Role::ALL
                    .iter()
                    .filter(|r| r.may(*a))
                    .map(|r| r.name())
                    .collect();
                Err(denied(
                    peer,
                    format!(
                        "{identity} (role {}) may not {}; roles that may: {}",
                        role.name(),
                        a.name(),
                        allowed.join(", ")
                    ),
                ))
            }
        }
    }
}

fn denied(peer: &PeerInfo, why: String) -> Status {
    tracing::warn!(remote = %peer.remote, "permission denied: {why}");
    Status::permission_denied(why)
}
