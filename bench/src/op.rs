//! One operation as data: what to send (with its `Tx`, so it can be sent
//! again to learn a lost outcome) and what it does to the total of the
//! bench's wallets when it applies.

use std::time::{Duration, Instant};

use geowallet_client::{Client, CreditKind, DebitKind, Error, Tx};

use crate::wallet_set::WalletSet;

#[derive(Debug, Clone)]
pub enum Op {
    Debit {
        tx: Tx,
        wallet: u64,
        amount: u64,
        kind: DebitKind,
    },
    Credit {
        tx: Tx,
        wallet: u64,
        amount: u64,
        kind: CreditKind,
    },
    Transfer {
        tx: Tx,
        from: u64,
        to: u64,
        amount: u64,
    },
    Hold {
        tx: Tx,
        wallet: u64,
        hold_id: String,
        amount: u64,
        expires_at_ns: u64,
    },
    /// Captures all of a hold of `amount`.
    Capture {
        tx: Tx,
        wallet: u64,
        hold_id: String,
        amount: u64,
    },
    Release {
        tx: Tx,
        wallet: u64,
        hold_id: String,
    },
    /// A linearizable balance read.
    Balance { wallet: u64 },
}

/// How one sent operation ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Applied (or read); `delta` is its change to the total of its
    /// currency's bench wallets, in minor units.
    Applied { currency: usize, delta: i128 },
    /// Refused for insufficient funds: counted apart, not an error.
    Insufficient,
    /// Any other refusal: nothing changed, but the bench did not expect it.
    Refused { code: String },
    /// The outcome is unknown (indeterminate, unavailable, ...).
    Unknown { code: String },
}

/// One operation's measurement.
#[derive(Debug, Clone)]
pub struct OpRecord {
    pub kind: &'static str,
    pub latency: Duration,
    pub outcome: Outcome,
    /// The operation again, when its outcome is unknown and it moves money
    /// (sent again after the run, with the same `Tx`, to learn it).
    pub unresolved: Option<Op>,
}

impl Op {
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Debit { .. } => "debit",
            Op::Credit { .. } => "credit",
            Op::Transfer { .. } => "transfer",
            Op::Hold { .. } => "hold",
            Op::Capture { .. } => "capture",
            Op::Release { .. } => "release",
            Op::Balance { .. } => "balance",
        }
    }

    /// The wallet whose currency the operation is in.
    fn wallet(&self) -> u64 {
        match self {
            Op::Debit { wallet, .. }
            | Op::Credit { wallet, .. }
            | Op::Hold { wallet, .. }
            | Op::Capture { wallet, .. }
            | Op::Release { wallet, .. }
            | Op::Balance { wallet } => *wallet,
            Op::Transfer { from, .. } => *from,
        }
    }

    /// Change to the bench wallets' total (of its currency) if it applies.
    pub fn delta(&self) -> i128 {
        match self {
            Op::Debit { amount, .. } | Op::Capture { amount, .. } => -i128::from(*amount),
            Op::Credit { amount, .. } => i128::from(*amount),
            Op::Transfer { .. } | Op::Hold { .. } | Op::Release { .. } | Op::Balance { .. } => 0,
        }
    }

    /// Sends the operation once (the client retries inside its budget).
    pub async fn send(&self, client: &Client, wallets: &WalletSet) -> Result<(), Error> {
        let acct = |w: u64| wallets.account(w);
        match self {
            Op::Debit {
                tx,
                wallet,
                amount,
                kind,
            } => client
                .debit(tx, &acct(*wallet), *amount, *kind)
                .await
                .map(drop),
            Op::Credit {
                tx,
                wallet,
                amount,
                kind,
            } => client
                .credit(tx, &acct(*wallet), *amount, *kind)
                .await
                .map(drop),
            Op::Transfer {
                tx,
                from,
                to,
                amount,
            } => client
                .transfer(tx, &acct(*from), &acct(*to), *amount)
                .await
                .map(drop),
            Op::Hold {
                tx,
                wallet,
                hold_id,
                amount,
                expires_at_ns,
            } => client
                .hold(tx, &acct(*wallet), hold_id, *amount, *expires_at_ns)
                .await
                .map(drop),
            Op::Capture {
                tx,
                wallet,
                hold_id,
                ..
            } => client
                .capture(tx, &acct(*wallet), hold_id, None, DebitKind::Bet)
                .await
                .map(drop),
            Op::Release {
                tx,
                wallet,
                hold_id,
            } => client.release(tx, &acct(*wallet), hold_id).await.map(drop),
            Op::Balance { wallet } => client.balance(&acct(*wallet)).await.map(drop),
        }
    }

    /// What a reply means for this operation.
    pub fn outcome(&self, reply: &Result<(), Error>) -> Outcome {
        let currency = WalletSet::currency_index(self.wallet());
        match reply {
            Ok(()) => Outcome::Applied {
                currency,
                delta: self.delta(),
            },
            Err(Error::InsufficientFunds { .. }) => Outcome::Insufficient,
            Err(e) if e.is_refusal() => Outcome::Refused {
                code: e.code().to_owned(),
            },
            Err(e) => Outcome::Unknown {
                code: e.code().to_owned(),
            },
        }
    }

    /// Sends the operation and measures it from `since` (its intended start
    /// in open loop, its actual start in closed loop).
    pub async fn measure(self, client: &Client, wallets: &WalletSet, since: Instant) -> OpRecord {
        let reply = self.send(client, wallets).await;
        let latency = crate::schedule::corrected_latency(since, Instant::now());
        let outcome = self.outcome(&reply);
        // Only a lost outcome that moves money matters to the sum check.
        let lost = matches!(outcome, Outcome::Unknown { .. }) && self.delta() != 0;
        let unresolved = lost.then(|| self.clone());
        OpRecord {
            kind: self.kind(),
            latency,
            outcome,
            unresolved,
        }
    }
}
