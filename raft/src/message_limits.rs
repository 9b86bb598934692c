//! Every message between nodes is bounded in bytes below the transport's
//! limit, derived from that one number: an AppendEntries carries at most
//! half of it (`PeerClient` sends the prefix of entries that fits and
//! reports a partial success, so openraft sends the rest next), and one
//! entry carries at most a quarter of it (the proposer bounds requests per
//! entry by `REQUEST_BYTES_MAX`), so the first entry of any AppendEntries
//! always fits. Without this, a lagging follower was sent hundreds of
//! entries in one request over the transport's limit, refused as a network
//! error, and the same range was retried forever.

/// Bytes of one encoded request at most: ids are at most 64 bytes, the rest
/// is integers and enum tags (checked by a test over the largest request).
pub const REQUEST_BYTES_MAX: usize = 256;

/// Bytes of a gRPC message between nodes at most, unless configured.
pub const MESSAGE_BYTES_MAX_DEFAULT: usize = 64 << 20;

/// Smallest transport limit accepted: room for an entry of a few requests.
pub const MESSAGE_BYTES_MIN: usize = 64 << 10;

/// The message bounds of a node, from its transport limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageLimits {
    message_bytes_max: usize,
}

impl MessageLimits {
    /// Panics below [`MESSAGE_BYTES_MIN`]: config validation refuses that first.
    pub fn new(message_bytes_max: usize) -> MessageLimits {
        assert!(
            message_bytes_max >= MESSAGE_BYTES_MIN,
            "a transport limit of {message_bytes_max} bytes cannot carry an entry"
        );
        MessageLimits { message_bytes_max }
    }

    /// The transport's limit: what a receiver decodes at most.
    pub fn message_bytes_max(&self) -> usize {
        self.message_bytes_max
    }

    /// Bytes of the entries of one AppendEntries at most.
    pub fn append_bytes_max(&self) -> usize {
        self.message_bytes_max / 2
    }

    /// Bytes of one entry at most: a quarter of the transport's limit.
    pub fn entry_bytes_max(&self) -> usize {
        self.message_bytes_max / 4
    }

    /// Requests of one entry at most, so an entry is at most a quarter of
    /// the transport's limit.
    pub fn requests_per_entry_max(&self) -> usize {
        self.message_bytes_max / 4 / REQUEST_BYTES_MAX
    }
}

impl Default for MessageLimits {
    fn default() -> MessageLimits {
        MessageLimits::new(MESSAGE_BYTES_MAX_DEFAULT)
    }
}

#[cfg(test)]
mod tests {
    use geowallet_ledger::{
        AccountId, Amount, Command, Currency, DebitKind, HoldId, PlayerId, Request, TxId,
    };

    use super::*;
    use crate::{Proposal, encode};

    fn biggest_request() -> Request {
        let account = AccountId {
            player: PlayerId(u64::MAX),
            currency: Currency::parse("EUR").unwrap(),
        };
        Request {
            tx: TxId::new("t".repeat(64)).unwrap(),
            created_at_ns: u64::MAX,
            command: Command::Capture {
                account,
                hold: HoldId::new("h".repeat(64)).unwrap(),
                amount: Some(Amount(u64::MAX)),
                kind: DebitKind::Withdrawal,
            },
        }
    }

    // Proves the largest request encodes within REQUEST_BYTES_MAX, and a full
    // entry within a quarter of the transport's limit.
    #[test]
    fn largest_request_and_entry_fit() {
        let one = encode(&biggest_request()).unwrap().len();
        assert!(one <= REQUEST_BYTES_MAX, "{one} bytes");
        let limits = MessageLimits::new(MESSAGE_BYTES_MIN);
        let proposal = Proposal::ledger(
            u64::MAX,
            vec![biggest_request(); limits.requests_per_entry_max()],
        );
        let entry = encode(&proposal).unwrap().len();
        assert!(entry <= limits.append_bytes_max() / 2, "{entry} bytes");
    }
}
