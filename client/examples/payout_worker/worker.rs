//! A payout worker: the consumer of the change stream that fast payouts
//! need. The payments service asks for a withdrawal by placing a hold whose
//! id (and tx id) starts with `payout-`; this worker sees the hold in the
//! group's committed events, asks the payment provider to send the money,
//! and captures the hold (money out, kind withdrawal) when the provider
//! sent it, or releases it (money back to the player) when it declined.
//!
//! Exactly once, across crashes of the worker: the position is saved only
//! after a payout is settled, so a restart may see a payout again; the
//! provider call carries the payout id as its idempotency key (a real
//! provider's idempotency key; the fake one below honours it), and the
//! capture or release uses a tx id and creation time derived from the
//! hold's event, so the ledger applies it once.

use std::collections::BTreeMap;
use std::sync::Mutex;

use geowallet_client::{Account, Client, DebitKind, Error, GroupEvents, Resume, Tx};

/// Hold (and tx) ids of withdrawals start with this.
pub const PAYOUT_PREFIX: &str = "payout-";

/// What a payment provider answers for one payout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paid {
    Sent,
    Declined,
}

/// A payment provider: `pay` is idempotent per `payout_id`.
pub trait Provider: Send + Sync {
    fn pay(
        &self,
        payout_id: &str,
        account: &Account,
        amount: u64,
    ) -> impl std::future::Future<Output = Paid> + Send;
}

/// A fake, local provider: declines amounts that end in 7, sends the rest;
/// answers a payout id it saw before with its first answer, without
/// sending again. Keeps what it really sent.
#[derive(Default)]
pub struct FakeProvider {
    answers: Mutex<BTreeMap<String, Paid>>,
    /// payout id -> (player, amount), once per payout really sent.
    pub sent: Mutex<BTreeMap<String, (u64, u64)>>,
    /// Calls made, repeats included.
    pub calls: Mutex<u64>,
}

impl Provider for FakeProvider {
    async fn pay(&self, payout_id: &str, account: &Account, amount: u64) -> Paid {
        *self.calls.lock().unwrap() += 1;
        let mut answers = self.answers.lock().unwrap();
        if let Some(paid) = answers.get(payout_id) {
            return *paid;
        }
        let paid = if amount % 10 == 7 {
            Paid::Declined
        } else {
            self.sent
                .lock()
                .unwrap()
                .insert(payout_id.to_string(), (account.player, amount));
            Paid::Sent
        };
        answers.insert(payout_id.to_string(), paid);
        paid
    }
}

/// Where the worker keeps its position (a file or a table in production;
/// written after each settled entry).
pub trait Position: Send {
    fn load(&self) -> Resume;
    fn save(&mut self, at: Resume);
}

/// Runs until the stream ends with an error (returned) or the task is
/// dropped: settles every payout hold of `group` from the saved position.
pub async fn run<P: Provider>(
    client: &Client,
    group: u64,
    provider: &P,
    position: &mut dyn Position,
) -> Result<(), Error> {
    let mut stream = client.events(group, position.load(), None);
    while let Some(events) = stream.next().await {
        let events = events?;
        settle(client, provider, &events).await?;
        position.save(Resume::after(&events));
    }
    Ok(())
}

async fn settle<P: Provider>(
    client: &Client,
    provider: &P,
    events: &GroupEvents,
) -> Result<(), Error> {
    for e in &events.lines {
        let hold = &e.line.tx_id;
        if e.line.kind != "hold" || !hold.starts_with(PAYOUT_PREFIX) {
            continue;
        }
        // Derived from the event: the same on every retry.
        let created_at_ns = events.time_ns;
        match provider.pay(hold, &e.account, e.line.amount).await {
            Paid::Sent => {
                let tx = Tx::with_created_at(format!("{hold}-capture"), created_at_ns);
                client
                    .capture(&tx, &e.account, hold, None, DebitKind::Withdrawal)
                    .await?;
            }
            Paid::Declined => {
                let tx = Tx::with_created_at(format!("{hold}-release"), created_at_ns);
                client.release(&tx, &e.account, hold).await?;
            }
        }
    }
    Ok(())
}
