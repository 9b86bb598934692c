//! One unit of work of a workload: an operation, or a hold and the capture
//! or release that settles it (sent only if the hold applied).

use std::time::Instant;

use geowallet_client::Client;

use crate::op::{Op, OpRecord, Outcome};
use crate::wallet_set::WalletSet;

#[derive(Debug, Clone)]
pub struct Script {
    pub first: Op,
    /// Sent after `first`, only if `first` applied.
    pub then: Option<Op>,
}

impl Script {
    /// Runs the script: `first` measured from `since` (its intended start in
    /// open loop), the settle from its own start. One record per op sent.
    pub async fn run(self, client: &Client, wallets: &WalletSet, since: Instant) -> Vec<OpRecord> {
        let first = self.first.measure(client, wallets, since).await;
        let applied = matches!(first.outcome, Outcome::Applied { .. });
        let mut records = vec![first];
        if let (true, Some(then)) = (applied, self.then) {
            let started = Instant::now();
            records.push(then.measure(client, wallets, started).await);
        }
        records
    }
}
