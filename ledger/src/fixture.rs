//! Helpers for the unit tests: a ledger driven one entry at a time.

use crate::{
    AccountId, Amount, Balance, Command, CreditKind, Currency, EntryContext, HoldId, LedgerConfig,
    LogIndex, Outcome, PlayerId, Request, State, TxId,
};

pub(crate) const START_NS: u64 = 1_000_000;

pub(crate) fn eur(player: u64) -> AccountId {
    AccountId {
        player: PlayerId(player),
        currency: Currency::parse("EUR").unwrap(),
    }
}

pub(crate) fn usd(player: u64) -> AccountId {
    AccountId {
        player: PlayerId(player),
        currency: Currency::parse("USD").unwrap(),
    }
}

pub(crate) fn hid(s: &str) -> HoldId {
    HoldId::new(s).unwrap()
}

pub(crate) fn tx(s: &str) -> TxId {
    TxId::new(s).unwrap()
}

pub(crate) fn bal(available: u64, held: u64) -> Balance {
    Balance { available, held }
}

/// A state plus the log position and leader time of the next entry.
pub(crate) struct Ledger {
    pub(crate) state: State,
    /// The shard group the entries are of (1 unless set).
    pub(crate) group: u64,
    pub(crate) index: u64,
    pub(crate) now_ns: u64,
    /// The last fresh transaction id's number (`t<n>`).
    pub(crate) tx_seq: u64,
}

impl Ledger {
    pub(crate) fn new() -> Ledger {
        Ledger::with_config(LedgerConfig::default())
    }

    pub(crate) fn with_config(config: LedgerConfig) -> Ledger {
        Ledger {
            state: State::new(config),
            group: 1,
            index: 0,
            now_ns: START_NS,
            tx_seq: 0,
        }
    }

    /// Opens `account` and deposits `amount` (if non-zero) into it.
    pub(crate) fn funded(account: AccountId, amount: u64) -> Ledger {
        let mut l = Ledger::new();
        l.run(Command::OpenAccount { account }).unwrap();
        if amount > 0 {
            let credit = Command::Credit {
                account,
                amount: Amount(amount),
                kind: CreditKind::Deposit,
            };
            l.run(credit).unwrap();
        }
        l
    }

    /// A request with a fresh transaction id created now.
    pub(crate) fn request(&mut self, command: Command) -> Request {
        self.tx_seq += 1;
        Request {
            tx: tx(&format!("t{}", self.tx_seq)),
            created_at_ns: self.now_ns,
            command,
        }
    }

    /// Applies one entry at the current leader time.
    pub(crate) fn entry(&mut self, requests: &[Request]) -> Vec<Outcome> {
        let ctx = self.next_ctx();
        self.state.apply(ctx, requests)
    }

    /// Applies one move step as the next entry.
    pub(crate) fn step(&mut self, command: &crate::MoveCommand) -> crate::MoveOutcome {
        let ctx = self.next_ctx();
        self.state.apply_move(ctx, command)
    }

    fn next_ctx(&mut self) -> EntryContext {
        self.index += 1;
        EntryContext {
            group: self.group,
            log_index: LogIndex(self.index),
            leader_time_ns: self.now_ns,
        }
    }

    /// Runs one command alone in an entry, under a fresh transaction id.
    pub(crate) fn run(&mut self, command: Command) -> Outcome {
        let request = self.request(command);
        self.entry(&[request]).remove(0)
    }

    pub(crate) fn balance(&self, account: AccountId) -> Balance {
        self.state.account(&account).unwrap().balance()
    }
}
