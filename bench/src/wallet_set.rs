//! The bench's wallets: index `i` in `0..count` is player
//! `PLAYER_BASE + i` in currency `CURRENCIES[i % CURRENCIES.len()]`, so
//! currencies alternate and any key rule spreads over all of them.

use geowallet_client::Account;

/// Currencies of the bench's wallets; transfers stay within one.
pub const CURRENCIES: [&str; 2] = ["EUR", "USD"];
/// Player id of wallet 0; far from ids that `ctl` examples and tests use.
pub const PLAYER_BASE: u64 = 1_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalletSet {
    count: u64,
}

impl WalletSet {
    pub fn new(count: u64) -> WalletSet {
        assert!(
            count >= CURRENCIES.len() as u64,
            "one wallet per currency at least"
        );
        WalletSet { count }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Index into [`CURRENCIES`] of wallet `wallet`.
    pub fn currency_index(wallet: u64) -> usize {
        (wallet % CURRENCIES.len() as u64) as usize
    }

    pub fn account(&self, wallet: u64) -> Account {
        assert!(wallet < self.count, "wallet {wallet} of {}", self.count);
        Account::new(
            PLAYER_BASE + wallet,
            CURRENCIES[WalletSet::currency_index(wallet)],
        )
    }

    /// The wallet of `account`, if it is one of ours.
    pub fn wallet_of(&self, account: &Account) -> Option<u64> {
        let wallet = account.player.checked_sub(PLAYER_BASE)?;
        let ours = wallet < self.count
            && CURRENCIES[WalletSet::currency_index(wallet)] == account.currency;
        ours.then_some(wallet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves wallet indexes and accounts map both ways and currencies alternate.
    #[test]
    fn accounts_round_trip_and_alternate_currencies() {
        let set = WalletSet::new(5);
        for w in 0..5 {
            let a = set.account(w);
            assert_eq!(set.wallet_of(&a), Some(w));
            assert_eq!(a.currency, CURRENCIES[(w % 2) as usize]);
        }
        assert_eq!(set.wallet_of(&Account::new(PLAYER_BASE + 5, "USD")), None);
        assert_eq!(set.wallet_of(&Account::new(PLAYER_BASE, "USD")), None);
        assert_eq!(set.wallet_of(&Account::new(7, "EUR")), None);
    }
}
