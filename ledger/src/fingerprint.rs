use std::hash::Hasher;

use crate::{AccountId, Amount, Command, CreditKind, DebitKind, HoldId};

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a. Deterministic on every platform and release: integers are
/// fed little-endian at fixed width, never in native order or `usize`.
#[derive(Debug, Clone)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Fnv1a {
        Fnv1a(FNV_OFFSET_BASIS)
    }
}

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    fn write_u16(&mut self, i: u16) {
        self.write(&i.to_le_bytes());
    }
    fn write_u32(&mut self, i: u32) {
        self.write(&i.to_le_bytes());
    }
    fn write_u64(&mut self, i: u64) {
        self.write(&i.to_le_bytes());
    }
    fn write_u128(&mut self, i: u128) {
        self.write(&i.to_le_bytes());
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn write_isize(&mut self, i: isize) {
        self.write_u64(i as i64 as u64);
    }
}

/// Deterministic 64-bit hash of a command, stored in its transaction record
/// to tell a retry from a reuse of its id.
///
/// Fed from an explicit encoding rather than `#[derive(Hash)]`, whose byte
/// stream Rust does not promise to keep stable, because fingerprints are
/// persisted and compared across replicas and releases. Changing this
/// encoding changes outcomes: treat it as a storage format.
pub fn fingerprint(command: &Command) -> u64 {
    let mut h = Fnv1a::default();
    match command {
        Command::OpenAccount { account } => feed_tag_account(&mut h, 0, account),
        Command::Credit {
            account,
            amount,
            kind,
        } => {
            feed_tag_account(&mut h, 1, account);
            feed_amount(&mut h, *amount);
            h.write_u8(credit_tag(*kind));
        }
        Command::Debit {
            account,
            amount,
            kind,
        } => {
            feed_tag_account(&mut h, 2, account);
            feed_amount(&mut h, *amount);
            h.write_u8(debit_tag(*kind));
        }
        Command::Transfer { from, to, amount } => {
            feed_tag_account(&mut h, 3, from);
            feed_account(&mut h, to);
            feed_amount(&mut h, *amount);
        }
        Command::Hold {
            account,
            hold,
            amount,
            expires_at_ns,
        } => {
            feed_tag_account(&mut h, 4, account);
            feed_hold(&mut h, hold);
            feed_amount(&mut h, *amount);
            h.write_u64(*expires_at_ns);
        }
        Command::Capture {
            account,
            hold,
            amount,
            kind,
        } => {
            feed_tag_account(&mut h, 5, account);
            feed_hold(&mut h, hold);
            match amount {
                None => h.write_u8(0),
                Some(a) => {
                    h.write_u8(1);
                    feed_amount(&mut h, *a);
                }
            }
            h.write_u8(debit_tag(*kind));
        }
        Command::Release { account, hold } => {
            feed_tag_account(&mut h, 6, account);
            feed_hold(&mut h, hold);
        }
        Command::Freeze { account } => feed_tag_account(&mut h, 7, account),
        Command::Unfreeze { account } => feed_tag_account(&mut h, 8, account),
    }
    h.finish()
}

fn feed_tag_account(h: &mut Fnv1a, tag: u8, account: &AccountId) {
    h.write_u8(tag);
    feed_account(h, account);
}

fn feed_account(h: &mut Fnv1a, account: &AccountId) {
    h.write_u64(account.player.0);
    let code = account.currency.as_str().as_bytes();
    h.write_u8(code.len() as u8);
    h.write(code);
}

fn feed_amount(h: &mut Fnv1a, amount: Amount) {
    h.write_u64(amount.0);
}

fn feed_hold(h: &mut Fnv1a, hold: &HoldId) {
    let bytes = hold.as_str().as_bytes();
    h.write_u8(bytes.len() as u8);
    h.write(bytes);
}

fn credit_tag(kind: CreditKind) -> u8 {
    match kind {
        CreditKind::Deposit => 0,
        CreditKind::Win => 1,
        CreditKind::Bonus => 2,
        CreditKind::Refund => 3,
    }
}

fn debit_tag(kind: DebitKind) -> u8 {
    match kind {
        DebitKind::Bet => 0,
        DebitKind::Withdrawal => 1,
        DebitKind::Fee => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Currency, PlayerId};

    fn acct(p: u64, c: &str) -> AccountId {
        AccountId {
            player: PlayerId(p),
            currency: Currency::parse(c).unwrap(),
        }
    }

    // Proves the hasher is FNV-1a by the published test vectors.
    #[test]
    fn fnv1a_vectors() {
        let hash = |s: &[u8]| {
            let mut h = Fnv1a::default();
            h.write(s);
            h.finish()
        };
        assert_eq!(hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash(b"foobar"), 0x8594_4171_f739_67e8);
    }

    // Proves the fingerprint is pinned: a change to the encoding must fail here.
    #[test]
    fn fingerprint_is_stable() {
        let cmd = Command::Credit {
            account: acct(42, "EUR"),
            amount: Amount(500),
            kind: CreditKind::Win,
        };
        let mut h = Fnv1a::default();
        h.write(&[1]);
        h.write(&42u64.to_le_bytes());
        h.write(&[3]);
        h.write(b"EUR");
        h.write(&500u64.to_le_bytes());
        h.write(&[1]);
        assert_eq!(fingerprint(&cmd), h.finish());
    }

    // Proves every field of a command contributes to its fingerprint.
    #[test]
    fn fields_change_fingerprint() {
        let hold = HoldId::new("h").unwrap();
        let base = Command::Capture {
            account: acct(1, "EUR"),
            hold: hold.clone(),
            amount: None,
            kind: DebitKind::Bet,
        };
        let variants = [
            Command::Capture {
                account: acct(2, "EUR"),
                hold: hold.clone(),
                amount: None,
                kind: DebitKind::Bet,
            },
            Command::Capture {
                account: acct(1, "USD"),
                hold: hold.clone(),
                amount: None,
                kind: DebitKind::Bet,
            },
            Command::Capture {
                account: acct(1, "EUR"),
                hold: HoldId::new("g").unwrap(),
                amount: None,
                kind: DebitKind::Bet,
            },
            Command::Capture {
                account: acct(1, "EUR"),
                hold: hold.clone(),
                amount: Some(Amount(0)),
                kind: DebitKind::Bet,
            },
            Command::Capture {
                account: acct(1, "EUR"),
                hold: hold.clone(),
                amount: None,
                kind: DebitKind::Fee,
            },
            Command::Release {
                account: acct(1, "EUR"),
                hold,
            },
        ];
        for v in &variants {
            assert_ne!(fingerprint(&base), fingerprint(v), "{v:?}");
        }
        assert_eq!(fingerprint(&base), fingerprint(&base.clone()));
    }
}
