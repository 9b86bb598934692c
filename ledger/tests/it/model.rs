//! A plain reference model of the ledger rules, written from the spec with
//! HashMaps and no code shared with `State`. Conflicts are found by comparing
//! commands, not fingerprints; overflow by u128 arithmetic.

use std::collections::HashMap;

use geowallet_ledger::{
    Account, AccountId, Balance, Command, Currency, DebitKind, HoldStatus, LogIndex, Outcome,
    Receipt, Refusal, Request, SystemAccount, TxId,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MHold {
    pub amount: u64,
    pub remaining: u64,
    pub expires_at_ns: u64,
    pub status: HoldStatus,
    pub closed_at_ns: u64,
}

pub struct Model {
    pub window_ns: u64,
    pub skew_ns: u64,
    pub now_ns: u64,
    pub accounts: HashMap<AccountId, Account>,
    pub holds: HashMap<(AccountId, String), MHold>,
    /// By (wallet, tx id): ids are unique per wallet.
    pub txs: HashMap<(AccountId, String), (u64, Command, Outcome)>,
    pub system: HashMap<(Currency, SystemAccount), i128>,
    /// Per request seen, whether it ran its command (rather than being
    /// refused by the tx checks or answered from a record).
    pub executed: Vec<bool>,
    log_index: u64,
}

fn bal(a: &Account) -> Balance {
    Balance {
        available: a.available,
        held: a.held,
    }
}

fn house_or_gateway_debit(kind: DebitKind) -> SystemAccount {
    if kind == DebitKind::Withdrawal {
        SystemAccount::Gateway
    } else {
        SystemAccount::House
    }
}

impl Model {
    pub fn new(window_ns: u64, skew_ns: u64) -> Model {
        Model {
            window_ns,
            skew_ns,
            now_ns: 0,
            accounts: HashMap::new(),
            holds: HashMap::new(),
            txs: HashMap::new(),
            system: HashMap::new(),
            executed: Vec::new(),
            log_index: 0,
        }
    }

    pub fn apply(&mut self, log_index: u64, leader_time_ns: u64, reqs: &[Request]) -> Vec<Outcome> {
        self.log_index = log_index;
        if leader_time_ns > self.now_ns {
            self.now_ns = leader_time_ns;
        }
        let now = self.now_ns;
        let due: Vec<_> = self
            .holds
            .iter()
            .filter(|(_, h)| h.status == HoldStatus::Active && h.expires_at_ns <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let h = self.holds.get_mut(&key).unwrap();
            let a = self.accounts.get_mut(&key.0).unwrap();
            a.available += h.remaining;
            a.held -= h.remaining;
            h.remaining = 0;
            h.status = HoldStatus::Expired;
            h.closed_at_ns = now;
            a.journal_seq += 1;
        }
        let w = self.window_ns as u128;
        self.txs
            .retain(|_, (created, _, _)| *created as u128 + w >= now as u128);
        self.holds.retain(|_, h| {
            h.status == HoldStatus::Active || h.closed_at_ns as u128 + w >= now as u128
        });
        reqs.iter().map(|r| self.request(r)).collect()
    }

    fn request(&mut self, r: &Request) -> Outcome {
        self.executed.push(false);
        let key = (r.command.account(), r.tx.as_str().to_owned());
        if let Some((created, cmd, outcome)) = self.txs.get(&key) {
            if *cmd == r.command && *created == r.created_at_ns {
                return outcome.clone();
            }
            return Err(Refusal::TxIdConflict { tx: r.tx.clone() });
        }
        let now = self.now_ns as u128;
        if (r.created_at_ns as u128) + (self.window_ns as u128) < now {
            return Err(Refusal::TxIdExpired {
                tx: r.tx.clone(),
                created_at_ns: r.created_at_ns,
                oldest_allowed_ns: self.now_ns - self.window_ns,
            });
        }
        if r.created_at_ns as u128 > now + self.skew_ns as u128 {
            return Err(Refusal::TxIdFromFuture {
                tx: r.tx.clone(),
                created_at_ns: r.created_at_ns,
                leader_time_ns: self.now_ns,
            });
        }
        *self.executed.last_mut().unwrap() = true;
        let outcome = self.command(&r.tx, &r.command);
        if outcome.is_ok() {
            // One journal line per account a successful command touched.
            self.accounts.get_mut(&key.0).unwrap().journal_seq += 1;
            if let Command::Transfer { to, .. } = &r.command {
                self.accounts.get_mut(to).unwrap().journal_seq += 1;
            }
        }
        self.txs
            .insert(key, (r.created_at_ns, r.command.clone(), outcome.clone()));
        outcome
    }

    fn ok(&self, a: AccountId, counterpart: Option<AccountId>) -> Outcome {
        Ok(Receipt {
            log_index: LogIndex(self.log_index),
            balance: bal(&self.accounts[&a]),
            counterpart: counterpart.map(|c| bal(&self.accounts[&c])),
        })
    }

    fn sys(&mut self, c: Currency, w: SystemAccount, delta: i128) {
        *self.system.entry((c, w)).or_insert(0) += delta;
    }

    fn need(&self, a: AccountId) -> Result<Account, Refusal> {
        self.accounts
            .get(&a)
            .cloned()
            .ok_or(Refusal::UnknownAccount { account: a })
    }

    fn command(&mut self, _tx: &TxId, cmd: &Command) -> Outcome {
        match cmd.clone() {
            Command::OpenAccount { account } => {
                if self.accounts.contains_key(&account) {
                    return Err(Refusal::AccountExists { account });
                }
                self.accounts.insert(account, Account::default());
                self.ok(account, None)
            }
            Command::Credit {
                account,
                amount,
                kind,
            } => {
                let a = self.need(account)?;
                if amount.0 == 0 {
                    return Err(Refusal::ZeroAmount);
                }
                if a.available as u128 + a.held as u128 + amount.0 as u128 > u64::MAX as u128 {
                    return Err(Refusal::Overflow { account });
                }
                let w = match kind {
                    geowallet_ledger::CreditKind::Deposit => SystemAccount::Gateway,
                    _ => SystemAccount::House,
                };
                self.sys(account.currency, w, -(amount.0 as i128));
                let a = self.accounts.get_mut(&account).unwrap();
                a.available += amount.0;
                a.credited_total += amount.0 as u128;
                self.ok(account, None)
            }
            Command::Debit {
                account,
                amount,
                kind,
            } => {
                let a = self.need(account)?;
                if amount.0 == 0 {
                    return Err(Refusal::ZeroAmount);
                }
                if a.frozen {
                    return Err(Refusal::Frozen { account });
                }
                if a.available < amount.0 {
                    return Err(Refusal::InsufficientFunds {
                        account,
                        available: a.available,
                        requested: amount.0,
                    });
                }
                self.sys(
                    account.currency,
                    house_or_gateway_debit(kind),
                    amount.0 as i128,
                );
                let a = self.accounts.get_mut(&account).unwrap();
                a.available -= amount.0;
                a.debited_total += amount.0 as u128;
                self.ok(account, None)
            }
            Command::Transfer { from, to, amount } => self.transfer(from, to, amount.0),
            Command::Hold {
                account,
                hold,
                amount,
                expires_at_ns,
            } => {
                let a = self.need(account)?;
                if amount.0 == 0 {
                    return Err(Refusal::ZeroAmount);
                }
                if a.frozen {
                    return Err(Refusal::Frozen { account });
                }
                let key = (account, hold.as_str().to_owned());
                if self.holds.contains_key(&key) {
                    return Err(Refusal::HoldExists { account, hold });
                }
                if expires_at_ns <= self.now_ns {
                    return Err(Refusal::HoldExpired {
                        account,
                        hold,
                        expired_at_ns: expires_at_ns,
                    });
                }
                if a.available < amount.0 {
                    return Err(Refusal::InsufficientFunds {
                        account,
                        available: a.available,
                        requested: amount.0,
                    });
                }
                let a = self.accounts.get_mut(&account).unwrap();
                a.available -= amount.0;
                a.held += amount.0;
                let h = MHold {
                    amount: amount.0,
                    remaining: amount.0,
                    expires_at_ns,
                    status: HoldStatus::Active,
                    closed_at_ns: 0,
                };
                self.holds.insert(key, h);
                self.ok(account, None)
            }
            Command::Capture {
                account,
                hold,
                amount,
                kind,
            } => {
                let a = self.need(account)?;
                if amount == Some(geowallet_ledger::Amount(0)) {
                    return Err(Refusal::ZeroAmount);
                }
                if a.frozen {
                    return Err(Refusal::Frozen { account });
                }
                let h = self.usable_hold(account, &hold)?;
                let n = amount.map_or(h.remaining, |x| x.0);
                if n > h.remaining {
                    return Err(Refusal::OverCapture {
                        account,
                        hold,
                        held: h.remaining,
                        requested: n,
                    });
                }
                self.sys(account.currency, house_or_gateway_debit(kind), n as i128);
                let now = self.now_ns;
                let a = self.accounts.get_mut(&account).unwrap();
                a.held -= n;
                a.debited_total += n as u128;
                let h = self
                    .holds
                    .get_mut(&(account, hold.as_str().to_owned()))
                    .unwrap();
                h.remaining -= n;
                if h.remaining == 0 {
                    h.status = HoldStatus::Captured;
                    h.closed_at_ns = now;
                }
                self.ok(account, None)
            }
            Command::Release { account, hold } => {
                self.need(account)?;
                let h = self.usable_hold(account, &hold)?;
                let now = self.now_ns;
                let a = self.accounts.get_mut(&account).unwrap();
                a.held -= h.remaining;
                a.available += h.remaining;
                let h = self
                    .holds
                    .get_mut(&(account, hold.as_str().to_owned()))
                    .unwrap();
                h.remaining = 0;
                h.status = HoldStatus::Released;
                h.closed_at_ns = now;
                self.ok(account, None)
            }
            Command::Freeze { account } | Command::Unfreeze { account } => {
                self.need(account)?;
                let frozen = matches!(cmd, Command::Freeze { .. });
                self.accounts.get_mut(&account).unwrap().frozen = frozen;
                self.ok(account, None)
            }
        }
    }

    fn transfer(&mut self, from: AccountId, to: AccountId, amount: u64) -> Outcome {
        let src = self.need(from)?;
        let dst = self.need(to)?;
        if from.currency != to.currency {
            return Err(Refusal::CurrencyMismatch {
                from: from.currency,
                to: to.currency,
            });
        }
        if from == to {
            return Err(Refusal::SameAccount { account: from });
        }
        if amount == 0 {
            return Err(Refusal::ZeroAmount);
        }
        if src.frozen {
            return Err(Refusal::Frozen { account: from });
        }
        if dst.frozen {
            return Err(Refusal::Frozen { account: to });
        }
        if src.available < amount {
            return Err(Refusal::InsufficientFunds {
                account: from,
                available: src.available,
                requested: amount,
            });
        }
        if dst.available as u128 + dst.held as u128 + amount as u128 > u64::MAX as u128 {
            return Err(Refusal::Overflow { account: to });
        }
        let s = self.accounts.get_mut(&from).unwrap();
        s.available -= amount;
        s.debited_total += amount as u128;
        let d = self.accounts.get_mut(&to).unwrap();
        d.available += amount;
        d.credited_total += amount as u128;
        self.ok(from, Some(to))
    }

    fn usable_hold(
        &self,
        account: AccountId,
        hold: &geowallet_ledger::HoldId,
    ) -> Result<MHold, Refusal> {
        let Some(h) = self.holds.get(&(account, hold.as_str().to_owned())) else {
            return Err(Refusal::UnknownHold {
                account,
                hold: hold.clone(),
            });
        };
        match h.status {
            HoldStatus::Active => Ok(h.clone()),
            HoldStatus::Expired => Err(Refusal::HoldExpired {
                account,
                hold: hold.clone(),
                expired_at_ns: h.expires_at_ns,
            }),
            _ => Err(Refusal::HoldClosed {
                account,
                hold: hold.clone(),
            }),
        }
    }
}
