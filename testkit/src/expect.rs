//! What the workload expects of a planned operation.

/// Code of the refusal of an amount of zero.
pub const ZERO_AMOUNT: &str = "zero_amount";
/// Code of the refusal of a transfer between currencies.
pub const CURRENCY_MISMATCH: &str = "currency_mismatch";
/// Code of the refusal of a transfer from an account to itself.
pub const SAME_ACCOUNT: &str = "same_account";
/// Code of the refusal of a hold id the account never had.
pub const UNKNOWN_HOLD: &str = "unknown_hold";
/// Code of the refusal of an account that was never opened.
pub const UNKNOWN_ACCOUNT: &str = "unknown_account";
/// Every refusal the workload plans on purpose.
pub const DELIBERATE_REFUSALS: [&str; 5] = [
    ZERO_AMOUNT,
    CURRENCY_MISMATCH,
    SAME_ACCOUNT,
    UNKNOWN_HOLD,
    UNKNOWN_ACCOUNT,
];

/// The outcome a planned operation may legally have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expect {
    /// Legal either way: it may apply, or be refused for reasons that depend
    /// on state and timing (`insufficient_funds`, `hold_closed`, ...). A
    /// re-issued tx id must still apply at most once.
    MaybeOk,
    /// Must be refused with this wire code, assuming the opens planned for
    /// the accounts it names took effect (before that, `unknown_account`).
    Refused(&'static str),
}
