use geowallet_proto::v1 as pb;

/// Everything a call can fail with. Refusals (the command changed nothing)
/// have typed fields; `Indeterminate` means the outcome is unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("unknown account: open it first")]
    UnknownAccount { message: String },
    #[error("account already exists")]
    AccountExists { message: String },
    #[error("currency mismatch: {from} vs {to}")]
    CurrencyMismatch { from: String, to: String },
    #[error("cannot transfer an account to itself")]
    SameAccount,
    #[error("amount must be greater than zero")]
    ZeroAmount,
    #[error("amount would overflow the balance")]
    Overflow,
    #[error("insufficient funds: {available} available, {requested} requested")]
    InsufficientFunds { available: u64, requested: u64 },
    #[error("account is frozen")]
    Frozen,
    #[error("unknown hold")]
    UnknownHold,
    #[error("a hold with this id already exists")]
    HoldExists,
    #[error("hold expired at {expired_at_ns} ns")]
    HoldExpired { expired_at_ns: u64 },
    #[error("hold already captured or released")]
    HoldClosed,
    #[error("capture of {requested} exceeds the {held} held")]
    OverCapture { held: u64, requested: u64 },
    /// Not a refusal: the request is older than the idempotency window and
    /// its record, if it ever applied, is gone, so whether it applied cannot
    /// be told. Look at the wallet's journal before sending it again under
    /// a new id.
    #[error(
        "outcome unknown, too old to tell: the transaction was created before the idempotency window (oldest allowed {oldest_allowed_ns} ns); check the wallet's journal before retrying under a new id"
    )]
    TxIdExpired { oldest_allowed_ns: u64 },
    #[error(
        "transaction created in the future (leader time {leader_time_ns} ns): check the client clock"
    )]
    TxIdFromFuture { leader_time_ns: u64 },
    #[error("transaction id was already used for a different command: use a new id")]
    TxIdConflict,
    #[error("invalid request: {message}")]
    InvalidArgument { message: String },
    /// The caller's identity (its client certificate's role) may not make
    /// this call; nothing was done.
    #[error("permission denied: {message}")]
    PermissionDenied { message: String },
    #[error("refused ({code}): {message}")]
    Refused { code: String, message: String },
    #[error(
        "outcome of transaction {tx_id} is unknown after retries ({last_error}); retry with the same transaction to learn it"
    )]
    Indeterminate { tx_id: String, last_error: String },
    #[error("no node could serve the request: {message}")]
    Unavailable { message: String },
    /// The cluster does not offer the call (e.g. placement in a cluster
    /// without a directory).
    #[error("not supported by this cluster: {message}")]
    Unsupported { message: String },
    /// The player is held by another group; the client follows this itself
    /// and returns it only when redirects keep failing.
    #[error("the player is in group {group} (placement epoch {epoch})")]
    WrongGroup { group: u64, epoch: u64 },
    #[error("no shard group is homed in the caller's region: {message}")]
    NoGroupInRegion { message: String },
    /// A transfer between players of different shard groups, refused by a
    /// node of a release before such transfers (nothing changed); current
    /// nodes run them as two-phase transfers instead.
    #[error("transfer across shard groups refused: {message}")]
    CrossGroup { message: String },
    /// The player's wallet is moving between shard groups: the command
    /// changed nothing. The client waits moves out within its retry
    /// budget; this comes back only when one outlasts it. Retry with the
    /// same tx.
    #[error("the player's wallet is moving between groups: {message}")]
    Moving { message: String },
    /// `migrate`: the target group refused the wallet before anything
    /// arrived; it stays where it was.
    #[error("move refused: {message}")]
    MoveRefused { message: String },
    #[error(
        "the server's answer breaks the protocol ({message}); check that client and server versions match"
    )]
    Protocol { message: String },
    /// A group's change stream broke its hash chain: an event is missing,
    /// altered or out of order (or the node's stored events are damaged).
    /// Not retried; report it.
    #[error("group {group}'s event chain is broken at log index {log_index}: {message}")]
    ChainBroken {
        group: u64,
        log_index: u64,
        message: String,
    },
}

impl Error {
    /// The stable wire code of a refusal (`insufficient_funds`, ...), or the
    /// kind of failure for non-refusals.
    pub fn code(&self) -> &str {
        match self {
            Error::UnknownAccount { .. } => "unknown_account",
            Error::AccountExists { .. } => "account_exists",
            Error::CurrencyMismatch { .. } => "currency_mismatch",
            Error::SameAccount => "same_account",
            Error::ZeroAmount => "zero_amount",
            Error::Overflow => "overflow",
            Error::InsufficientFunds { .. } => "insufficient_funds",
            Error::Frozen => "frozen",
            Error::UnknownHold => "unknown_hold",
            Error::HoldExists => "hold_exists",
            Error::HoldExpired { .. } => "hold_expired",
            Error::HoldClosed => "hold_closed",
            Error::OverCapture { .. } => "over_capture",
            Error::TxIdExpired { .. } => "tx_id_expired",
            Error::TxIdFromFuture { .. } => "tx_id_from_future",
            Error::TxIdConflict => "tx_id_conflict",
            Error::Protocol { .. } => "protocol",
            Error::ChainBroken { .. } => "chain_broken",
            Error::InvalidArgument { .. } => "invalid_argument",
            Error::PermissionDenied { .. } => "permission_denied",
            Error::Refused { code, .. } => code,
            Error::Indeterminate { .. } => "indeterminate",
            Error::Unavailable { .. } => "unavailable",
            Error::Unsupported { .. } => "unsupported",
            Error::WrongGroup { .. } => "wrong_group",
            Error::NoGroupInRegion { .. } => "no_group_in_region",
            Error::CrossGroup { .. } => "cross_group",
            Error::Moving { .. } => "moving",
            Error::MoveRefused { .. } => "move_refused",
        }
    }

    /// True when the server definitely refused the command (nothing changed).
    /// `TxIdExpired` is not one: the command may have applied long ago.
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            Error::Indeterminate { .. }
                | Error::Unavailable { .. }
                | Error::Protocol { .. }
                | Error::ChainBroken { .. }
                | Error::TxIdExpired { .. }
                | Error::Unsupported { .. }
                | Error::WrongGroup { .. }
        )
    }

    pub(crate) fn from_refusal(r: pb::Refusal) -> Error {
        match r.code.as_str() {
            "unknown_account" => Error::UnknownAccount { message: r.message },
            "account_exists" => Error::AccountExists { message: r.message },
            "currency_mismatch" => Error::CurrencyMismatch {
                from: r.currency_from,
                to: r.currency_to,
            },
            "same_account" => Error::SameAccount,
            "zero_amount" => Error::ZeroAmount,
            "overflow" => Error::Overflow,
            "insufficient_funds" => Error::InsufficientFunds {
                available: r.available,
                requested: r.requested,
            },
            "frozen" => Error::Frozen,
            "unknown_hold" => Error::UnknownHold,
            "hold_exists" => Error::HoldExists,
            "hold_expired" => Error::HoldExpired {
                expired_at_ns: r.time_ns,
            },
            "hold_closed" => Error::HoldClosed,
            "over_capture" => Error::OverCapture {
                held: r.held,
                requested: r.requested,
            },
            "tx_id_expired" => Error::TxIdExpired {
                oldest_allowed_ns: r.time_ns,
            },
            "tx_id_from_future" => Error::TxIdFromFuture {
                leader_time_ns: r.time_ns,
            },
            "tx_id_conflict" => Error::TxIdConflict,
            "invalid_argument" => Error::InvalidArgument { message: r.message },
            "wrong_group" => Error::WrongGroup {
                group: r.group_id,
                epoch: r.epoch,
            },
            "no_group_in_region" => Error::NoGroupInRegion { message: r.message },
            "cross_group" => Error::CrossGroup { message: r.message },
            "moving" => Error::Moving { message: r.message },
            "moved" => Error::WrongGroup {
                group: r.group_id,
                epoch: r.epoch,
            },
            "move_refused" => Error::MoveRefused { message: r.message },
            "not_placed" => Error::UnknownAccount { message: r.message },
            _ => Error::Refused {
                code: r.code,
                message: r.message,
            },
        }
    }
}
