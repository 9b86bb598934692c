//! Runs the testkit workload through the real client library against a
//! cluster (simulated or real processes), recording every call's invoke and
//! completion in the history format, with the recorder's clock (virtual
//! time in the simulator, the monotonic clock in jepsen-tests).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use geowallet_client::{Account, Client, CreditKind, DebitKind, Error, Receipt, Tx};
use geowallet_testkit::{
    Balance, Completion, Expect, OpKind, OpValue, PlannedOp, Recorder, Workload,
};

/// Hold lifetime: far beyond any run, so holds never expire mid-check (the
/// wallet model does not model expiry).
pub const HOLD_TTL_NS: u64 = 3_600_000_000_000;

/// One client process of the workload; several share a [`Client`] (and so
/// its batching) as application threads would.
pub struct Runner {
    pub client: Client,
    pub workload: Arc<Mutex<Workload>>,
    pub recorder: Arc<Recorder>,
    /// Every account the workload may touch, for `read_all` audits.
    pub universe: Vec<Account>,
    /// First creation time of each tx id: a duplicate re-sends it unchanged.
    pub created_at: Arc<Mutex<HashMap<String, u64>>>,
    /// Planned refusals that were applied, and tx ids answered expired:
    /// bugs the run reports.
    pub surprises: Arc<Mutex<Vec<String>>>,
    /// Writes that ended indeterminate, for [`Runner::resolve_indeterminate`].
    pub unresolved: Arc<Mutex<Vec<PlannedOp>>>,
    /// Moves the workload to fresh players as the recorder's clock runs;
    /// `None` keeps one generation (and audits `universe`).
    pub rotation: Option<Rotation>,
    /// Empty: each audit reads every account from the group that holds it
    /// (one read per group, summed). Else each audit reads one of these
    /// groups in turn, in its own view (`Client::audit_in_group`): the
    /// bank check then holds per group while wallets move between groups,
    /// where a sum of reads at different indexes would not.
    pub audit_groups: Vec<u64>,
    /// Audits made so far (picks the next group).
    pub audits_made: Arc<std::sync::atomic::AtomicU64>,
}

/// Player generations by the recorder's clock: generation `g` runs from
/// `base_ns + g * period_ns`. Every host of a run passes the same values
/// over the same clock, so all move to the next players together, give or
/// take one call. Each account then takes calls for about one period, which
/// bounds the calls per account (and the linearizability search) however
/// long the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub base_ns: u64,
    pub period_ns: u64,
}

impl Rotation {
    pub fn generation(&self, now_ns: u64) -> u64 {
        assert!(self.period_ns > 0, "a rotation period of 0");
        now_ns.saturating_sub(self.base_ns) / self.period_ns
    }
}

/// Attempts to learn the outcome of one indeterminate write after healing.
const RESOLVE_ATTEMPTS: u32 = 5;

fn account((player, currency): &(u64, String)) -> Account {
    Account::new(*player, currency.clone())
}

fn balance(b: geowallet_client::Balance) -> Balance {
    Balance::new(b.available, b.held)
}

fn receipt_value(r: &Receipt) -> OpValue {
    OpValue {
        balance: Some(balance(r.balance)),
        to_balance: r.counterpart.map(balance),
        ..OpValue::default()
    }
}

impl Runner {
    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tx(&self, op: &PlannedOp) -> Tx {
        let mut created = Self::lock(&self.created_at);
        let at = *created
            .entry(op.tx_id.clone())
            .or_insert_with(|| Tx::new(op.tx_id.as_str()).created_at_ns);
        Tx::with_created_at(op.tx_id.as_str(), at)
    }

    /// Runs `ops` calls as process `process`. After an indeterminate call
    /// the process continues under a new id (`process + stride`), as
    /// Jepsen's processes do, so each id has one call open at most.
    pub async fn run(&self, process: u64, stride: u64, ops: u64) -> Result<(), String> {
        let mut left = ops;
        self.run_while(process, stride, || {
            let more = left > 0;
            left = left.saturating_sub(1);
            more
        })
        .await
    }

    /// As [`Runner::run`], calling while `more()` says so (checked before
    /// each call).
    pub async fn run_while(
        &self,
        mut process: u64,
        stride: u64,
        mut more: impl FnMut() -> bool,
    ) -> Result<(), String> {
        while more() {
            let op = {
                let mut workload = Self::lock(&self.workload);
                if let Some(rotation) = self.rotation {
                    workload.enter_generation(rotation.generation(self.recorder.now_ns()));
                }
                workload.next_op(process)
            };
            if self.step(process, &op).await? {
                if op.is_write() {
                    Self::lock(&self.unresolved).push(op);
                }
                process += stride;
            }
        }
        Ok(())
    }

    /// Records one call of `op` as `process`; true when it ended
    /// indeterminate.
    async fn step(&self, process: u64, op: &PlannedOp) -> Result<bool, String> {
        let handle = self
            .recorder
            .invoke(
                process,
                op.f,
                op.account_id().as_deref(),
                self.invoke_value(op),
            )
            .map_err(|e| e.to_string())?;
        let completion = self.call(op).await;
        if let (Expect::Refused(code), Completion::Ok(_)) = (op.expect, &completion) {
            Self::lock(&self.surprises).push(format!(
                "{} {:?} tx {} should have been refused ({code}) but was applied",
                op.f.name(),
                op.account,
                op.tx_id
            ));
        }
        let indeterminate = completion == Completion::Info;
        self.recorder
            .complete(handle, completion)
            .map_err(|e| e.to_string())?;
        Ok(indeterminate)
    }

    /// After healing: re-issues every write that ended indeterminate, with
    /// its tx id and creation time, each as a new process from
    /// `first_process` on, and records what the cluster answers. A tx id
    /// runs once, so the answer is the stored first outcome (with the
    /// balance right after it): it pins down whether and where the lost
    /// call applied, which keeps heavily faulted histories checkable.
    /// Returns how many stayed indeterminate after every attempt.
    pub async fn resolve_indeterminate(&self, first_process: u64) -> Result<usize, String> {
        let ops = std::mem::take(&mut *Self::lock(&self.unresolved));
        let mut process = first_process;
        let mut open = 0;
        for op in &ops {
            let mut settled = false;
            for _ in 0..RESOLVE_ATTEMPTS {
                let indeterminate = self.step(process, op).await?;
                process += 1;
                if !indeterminate {
                    settled = true;
                    break;
                }
            }
            open += usize::from(!settled);
        }
        Ok(open)
    }

    fn invoke_value(&self, op: &PlannedOp) -> OpValue {
        let mut value = op.invoke_value();
        if op.f == OpKind::ReadAll {
            let workload = Self::lock(&self.workload);
            let currencies = workload.config().currencies.iter().map(|c| (c.clone(), 0));
            value.expected_totals = Some(currencies.collect());
        }
        value
    }

    /// What an audit reads, each with whether the history lists it one by
    /// one (the rest is summed as `retired`): the universe, or with a
    /// rotation every generation up to the next one (a host may be a call
    /// ahead), listing only the current generation and the one before.
    fn audit_scope(&self) -> Vec<(Account, bool)> {
        let Some(rotation) = self.rotation else {
            return self.universe.iter().map(|a| (a.clone(), true)).collect();
        };
        let config = Self::lock(&self.workload).config().clone();
        let now = rotation.generation(self.recorder.now_ns());
        (0..=now + 1)
            .flat_map(|g| config.generation_accounts(g))
            .map(|a| (account(&a), config.generation_of(a.0) + 1 >= now))
            .collect()
    }

    async fn call(&self, op: &PlannedOp) -> Completion {
        let c = &self.client;
        let a = account(&op.account);
        let result = match op.f {
            OpKind::Read => {
                return match c.balance(&a).await {
                    Ok(b) => Completion::Ok(OpValue {
                        balance: Some(balance(b)),
                        ..OpValue::default()
                    }),
                    Err(e) => fail(&e),
                };
            }
            OpKind::ReadAll => return self.audit().await,
            OpKind::Open => c.open(&self.tx(op), &a).await,
            OpKind::Credit => {
                c.credit(&self.tx(op), &a, op.amount, CreditKind::Deposit)
                    .await
            }
            OpKind::Debit => c.debit(&self.tx(op), &a, op.amount, DebitKind::Bet).await,
            OpKind::Transfer => {
                let to = account(op.to.as_ref().expect("a planned transfer has a target"));
                c.transfer(&self.tx(op), &a, &to, op.amount).await
            }
            OpKind::Hold => {
                let tx = self.tx(op);
                let hold = op.hold_id.as_deref().unwrap_or_default();
                let expires = tx.created_at_ns + HOLD_TTL_NS;
                c.hold(&tx, &a, hold, op.amount, expires).await
            }
            OpKind::Capture => {
                let hold = op.hold_id.as_deref().unwrap_or_default();
                let amount = (op.amount > 0).then_some(op.amount);
                c.capture(&self.tx(op), &a, hold, amount, DebitKind::Bet)
                    .await
            }
            OpKind::Release => {
                let hold = op.hold_id.as_deref().unwrap_or_default();
                c.release(&self.tx(op), &a, hold).await
            }
        };
        match result {
            Ok(r) => Completion::Ok(receipt_value(&r)),
            // Too old to tell is an unknown outcome, like a lost answer;
            // but a run lasts minutes of a 7-day window, so here it means
            // ledger time ran ahead of the true time (a clock out of bound).
            Err(e @ Error::TxIdExpired { .. }) => {
                Self::lock(&self.surprises).push(format!("tx {}: {e}", op.tx_id));
                Completion::Info
            }
            Err(Error::Indeterminate { .. } | Error::Protocol { .. }) => Completion::Info,
            Err(e) => fail(&e),
        }
    }

    /// `read_all`: one audit of every account the workload may touch, with
    /// the system accounts' position, so players (listed and retired) +
    /// system must be 0.
    async fn audit(&self) -> Completion {
        let scope = self.audit_scope();
        let accounts: Vec<Account> = scope.iter().map(|(a, _)| a.clone()).collect();
        let audit = if self.audit_groups.is_empty() {
            self.client.audit(&accounts).await
        } else {
            let n = self
                .audits_made
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let group = self.audit_groups[(n % self.audit_groups.len() as u64) as usize];
            self.client.audit_in_group(group, &accounts).await
        };
        match audit {
            Ok(audit) => {
                let mut balances: BTreeMap<String, Balance> = BTreeMap::new();
                let mut retired: BTreeMap<String, i128> = BTreeMap::new();
                for ((a, b), (_, listed)) in audit.balances.iter().zip(&scope) {
                    let Some(b) = b else { continue };
                    if *listed {
                        balances.insert(a.to_string(), balance(*b));
                    } else {
                        *retired.entry(a.currency.clone()).or_default() += balance(*b).total();
                    }
                }
                Completion::Ok(OpValue {
                    balances: Some(balances),
                    retired: self.rotation.map(|_| retired),
                    totals: Some(
                        audit
                            .totals
                            .iter()
                            .map(|(c, t)| (c.clone(), t.players.wrapping_add(t.system)))
                            .collect(),
                    ),
                    system: Some(
                        audit
                            .totals
                            .iter()
                            .map(|(c, t)| (c.clone(), t.system))
                            .collect(),
                    ),
                    ..OpValue::default()
                })
            }
            Err(e) => fail(&e),
        }
    }
}

/// A call that certainly did not take effect: a refusal (its code is the
/// reason), or never sent (`unavailable`).
fn fail(e: &Error) -> Completion {
    Completion::Fail {
        reason: e.code().to_string(),
    }
}
