//! A group's committed ledger events and the hash chain over them.
//!
//! Every Raft entry that wrote journal lines becomes one [`EntryEvents`]:
//! the lines it created, in order, with the entry's position and ledger
//! time. Each carries `chain = SHA-256(prev_chain || header || lines)`,
//! where `prev_chain` is the chain of the group's previous such entry, so
//! the sequence cannot be edited, reordered or cut in the middle without
//! the chain showing it. The hashed text is the canonical CSV row of each
//! line ([`canonical_line`]), so an auditor can recompute the chain from an
//! exported file alone (`geowallet verify`). Apply is deterministic, so
//! every replica computes the same chain: a consumer resumes from any
//! replica and checks `prev_chain` against the last chain it saw.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{JournalEntry, JournalKind};

/// A chain value: SHA-256.
pub type Chain = [u8; 32];

/// The chain before a group's first event.
pub const GENESIS: Chain = [0; 32];

/// The journal lines one Raft entry of a group created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryEvents {
    pub group: u64,
    pub log_index: u64,
    /// The ledger time the entry applied at (ns since the Unix epoch).
    pub time_ns: u64,
    pub prev_chain: Chain,
    pub chain: Chain,
    pub lines: Vec<JournalEntry>,
}

impl EntryEvents {
    /// The events of entry `log_index`, chained after `prev_chain`.
    pub fn new(
        group: u64,
        log_index: u64,
        time_ns: u64,
        prev_chain: Chain,
        lines: Vec<JournalEntry>,
    ) -> EntryEvents {
        let canonical: Vec<String> = lines.iter().map(canonical_line).collect();
        let chain = chain_next(
            &prev_chain,
            &entry_header(group, log_index, time_ns),
            canonical.iter().map(String::as_str),
        );
        EntryEvents {
            group,
            log_index,
            time_ns,
            prev_chain,
            chain,
            lines,
        }
    }

    /// Whether `chain` is the hash of the rest (the row was not altered).
    pub fn is_sealed(&self) -> bool {
        let again = EntryEvents::new(
            self.group,
            self.log_index,
            self.time_ns,
            self.prev_chain,
            self.lines.clone(),
        );
        again.chain == self.chain
    }
}

/// The first hashed line of an entry: `group,log_index,time_ns`.
pub fn entry_header(group: u64, log_index: u64, time_ns: u64) -> String {
    format!("{group},{log_index},{time_ns}")
}

/// `SHA-256(prev || header "\n" || line "\n" ...)`.
pub fn chain_next<'a>(prev: &Chain, header: &str, lines: impl Iterator<Item = &'a str>) -> Chain {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(header.as_bytes());
    h.update(b"\n");
    for line in lines {
        h.update(line.as_bytes());
        h.update(b"\n");
    }
    h.finalize().into()
}

/// The columns of [`canonical_line`], in order.
pub const LINE_COLUMNS: [&str; 9] = [
    "seq",
    "player",
    "currency",
    "position",
    "kind",
    "amount",
    "available",
    "held",
    "tx_id",
];

/// One journal line as CSV: `seq,player,currency,position,kind,amount,
/// available,held,tx_id`. The tx id is last and quoted as RFC 4180 says
/// when it holds a comma or a quote (derived ids may), so every field
/// before it splits on commas. Empty tx id: a hold expiry.
pub fn canonical_line(e: &JournalEntry) -> String {
    let tx = quote_tx(e.tx.as_ref().map_or("", |t| t.as_str()));
    format!(
        "{},{},{},{},{},{},{},{},{}",
        e.seq,
        e.account.player.0,
        e.account.currency,
        e.position,
        e.kind.name(),
        e.amount,
        e.balance.available,
        e.balance.held,
        tx
    )
}

/// A tx id as the last CSV field: quoted (RFC 4180) when it holds a
/// comma or a quote.
pub fn quote_tx(tx: &str) -> String {
    if tx.contains([',', '"']) {
        format!("\"{}\"", tx.replace('"', "\"\""))
    } else {
        tx.to_string()
    }
}

impl JournalKind {
    /// Stable name (`credit:deposit`, `capture:withdrawal`, `move_in`, ...):
    /// the API's and the export's.
    pub fn name(&self) -> String {
        let lower = |d: &dyn std::fmt::Debug| format!("{d:?}").to_lowercase();
        match self {
            JournalKind::Open => "open".into(),
            JournalKind::Credit(c) => format!("credit:{}", lower(c)),
            JournalKind::Debit(d) => format!("debit:{}", lower(d)),
            JournalKind::TransferOut => "transfer_out".into(),
            JournalKind::TransferIn => "transfer_in".into(),
            JournalKind::Hold => "hold".into(),
            JournalKind::Capture(d) => format!("capture:{}", lower(d)),
            JournalKind::Release => "release".into(),
            JournalKind::Expire => "expire".into(),
            JournalKind::Freeze => "freeze".into(),
            JournalKind::Unfreeze => "unfreeze".into(),
            JournalKind::MoveOut => "move_out".into(),
            JournalKind::MoveIn => "move_in".into(),
            JournalKind::MoveBack => "move_back".into(),
            JournalKind::TransferBack => "transfer_back".into(),
        }
    }

    /// How the line's amount changes the wallet's money (available plus
    /// held): +1 in, -1 out, 0 moved within the wallet or no money.
    pub fn money_sign(name: &str) -> Option<i8> {
        Some(match name {
            "transfer_in" | "move_in" | "move_back" | "transfer_back" => 1,
            "transfer_out" | "move_out" => -1,
            "open" | "hold" | "release" | "expire" | "freeze" | "unfreeze" => 0,
            n if n.starts_with("credit:") => 1,
            n if n.starts_with("debit:") || n.starts_with("capture:") => -1,
            _ => return None,
        })
    }
}

/// Lowercase hex of a chain value.
pub fn hex(chain: &Chain) -> String {
    chain.iter().map(|b| format!("{b:02x}")).collect()
}

/// A chain value from 64 hex digits.
pub fn parse_hex(s: &str) -> Option<Chain> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AccountId, Balance, Currency, LogIndex, PlayerId, TxId};

    fn line(seq: u64, tx: &str, amount: u64) -> JournalEntry {
        JournalEntry {
            account: AccountId {
                player: PlayerId(7),
                currency: Currency::parse("EUR").unwrap(),
            },
            seq,
            group: 1,
            log_index: LogIndex(9),
            position: 0,
            tx: Some(TxId::new(tx).unwrap()),
            kind: JournalKind::Credit(crate::CreditKind::Deposit),
            amount,
            balance: Balance {
                available: amount,
                held: 0,
            },
        }
    }

    #[test]
    fn the_chain_covers_every_field_and_the_order() {
        let a = EntryEvents::new(1, 9, 100, GENESIS, vec![line(1, "t1", 5), line(2, "t2", 6)]);
        assert!(a.is_sealed());
        assert_eq!(
            canonical_line(&a.lines[0]),
            "1,7,EUR,0,credit:deposit,5,5,0,t1"
        );
        let mut b = a.clone();
        b.lines[1].amount = 7;
        assert!(!b.is_sealed(), "an edited amount");
        let mut c = a.clone();
        c.lines.swap(0, 1);
        assert!(!c.is_sealed(), "reordered lines");
        let mut d = a.clone();
        d.time_ns += 1;
        assert!(!d.is_sealed(), "an edited time");
        let next = EntryEvents::new(1, 12, 100, a.chain, vec![line(3, "t3", 1)]);
        assert_ne!(next.chain, a.chain);
        assert_eq!(parse_hex(&hex(&next.chain)), Some(next.chain));
    }

    #[test]
    fn a_tx_id_with_a_comma_or_quote_is_quoted_last() {
        let l = line(1, "~7/EUR/a,\"b", 5);
        assert_eq!(
            canonical_line(&l),
            "1,7,EUR,0,credit:deposit,5,5,0,\"~7/EUR/a,\"\"b\""
        );
    }
}
