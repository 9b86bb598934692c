//! A deterministic generator of wallet operations, shared by `sim`,
//! `jepsen-tests` and `bench` so one workload runs in all three.

use std::collections::VecDeque;

use crate::expect::{
    CURRENCY_MISMATCH, DELIBERATE_REFUSALS, Expect, SAME_ACCOUNT, UNKNOWN_ACCOUNT, UNKNOWN_HOLD,
    ZERO_AMOUNT,
};
use crate::history::OpKind;
use crate::opened_accounts::{OpenedAccounts, Slot};
use crate::planned_op::PlannedOp;
use crate::player_picker::PlayerPicker;
use crate::splitmix64::SplitMix64;
use crate::workload_config::WorkloadConfig;

/// A hold the workload planned and may still capture or release.
#[derive(Debug, Clone)]
struct RememberedHold {
    slot: Slot,
    hold_id: String,
    /// What should remain if every planned call on it applied.
    remaining: u64,
}

/// Plans operations from a seed alone: the same config, seed and sequence of
/// `process` arguments give the same operations on every run and platform
/// (no clock, no `rand`; the hot-key table relies on `f64::powf`).
///
/// It plans an open before any other use of an account, remembers holds to
/// capture or release later, re-issues recent writes with their tx ids, and
/// plans calls that must be refused. Planned order is not execution order:
/// with several processes a call may run before the open planned ahead of it.
#[derive(Debug, Clone)]
pub struct Workload {
    config: WorkloadConfig,
    seed: u64,
    rng: SplitMix64,
    picker: PlayerPicker,
    accounts: OpenedAccounts,
    holds: Vec<RememberedHold>,
    recent_writes: VecDeque<PlannedOp>,
    sequence: u64,
    /// Player ids of generation `g` are `2 * players * g + 0..players`; a
    /// new generation retires every account of the ones before it.
    generation: u64,
}

impl Workload {
    /// Holds remembered for capture or release; beyond it a random one is forgotten.
    pub const HOLDS_REMEMBERED_MAX: usize = 256;
    /// Recent writes a duplicate is drawn from.
    pub const RECENT_WRITES_MAX: usize = 64;

    /// # Panics
    /// If `config` fails [`WorkloadConfig::validate`]: a bug in the harness.
    pub fn new(config: WorkloadConfig, seed: u64) -> Self {
        if let Err(error) = config.validate() {
            panic!("{error}");
        }
        Workload {
            picker: PlayerPicker::new(config.players, config.key_choice),
            accounts: OpenedAccounts::new(config.players, config.currencies.len()),
            config,
            seed,
            rng: SplitMix64::new(seed),
            holds: Vec::new(),
            recent_writes: VecDeque::new(),
            sequence: 0,
            generation: 0,
        }
    }

    /// The generation of players calls go to (0 until [`Workload::enter_generation`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Moves every later call to fresh players: generation `generation`'s
    /// accounts (see [`WorkloadConfig::generation_accounts`]), none opened
    /// yet. Remembered holds and recent writes of earlier generations are
    /// forgotten, so no account is named again after its generation ended
    /// (bar calls already planned). It bounds the calls per account, and
    /// with them the linearizability search of a long run. A generation not
    /// above the current one changes nothing.
    pub fn enter_generation(&mut self, generation: u64) {
        if generation <= self.generation {
            return;
        }
        self.generation = generation;
        self.accounts = OpenedAccounts::new(self.config.players, self.config.currencies.len());
        self.holds.clear();
        self.recent_writes.clear();
    }

    pub fn config(&self) -> &WorkloadConfig {
        &self.config
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The next operation, to be issued by client `process`. Tx ids are
    /// `w{seed:x}-p{process}-{n}` with `n` counting every call from 1.
    pub fn next_op(&mut self, process: u64) -> PlannedOp {
        self.sequence += 1;
        let tx_id = format!("w{:x}-p{process}-{}", self.seed, self.sequence);
        if self.rng.chance_pct(self.config.duplicate_tx_pct) && !self.recent_writes.is_empty() {
            let index = self.rng.index(self.recent_writes.len());
            return self.recent_writes[index].clone();
        }
        if self.rng.chance_pct(self.config.refusal_pct) {
            return self.plan_refusal(tx_id);
        }
        let op = self.plan_regular(tx_id);
        if op.is_write() {
            self.recent_writes.push_back(op.clone());
            if self.recent_writes.len() > Self::RECENT_WRITES_MAX {
                self.recent_writes.pop_front();
            }
        }
        op
    }

    fn plan_regular(&mut self, tx_id: String) -> PlannedOp {
        let f = self.config.mix.pick(&mut self.rng);
        match f {
            OpKind::Open => self.plan_open(tx_id),
            OpKind::Capture | OpKind::Release => self.plan_settle(tx_id, f),
            OpKind::ReadAll => self.plan_read_all(tx_id),
            OpKind::Credit | OpKind::Debit | OpKind::Transfer | OpKind::Hold | OpKind::Read => {
                let slot = self.choose_slot();
                if !self.accounts.contains(slot) {
                    return self.open(tx_id, slot);
                }
                match f {
                    OpKind::Transfer => self.plan_transfer(tx_id, slot),
                    OpKind::Hold => self.plan_hold(tx_id, slot),
                    OpKind::Read => PlannedOp::new(tx_id, f, self.account(slot)),
                    _ => self.with_amount(tx_id, f, slot),
                }
            }
        }
    }

    /// Opens the lowest account not opened yet; reads one when all are.
    fn plan_open(&mut self, tx_id: String) -> PlannedOp {
        match self.accounts.next_unopened() {
            Some(slot) => self.open(tx_id, slot),
            None => {
                let slot = self.choose_slot();
                PlannedOp::new(tx_id, OpKind::Read, self.account(slot))
            }
        }
    }

    fn open(&mut self, tx_id: String, slot: Slot) -> PlannedOp {
        self.accounts.insert(slot);
        PlannedOp::new(tx_id, OpKind::Open, self.account(slot))
    }

    fn plan_transfer(&mut self, tx_id: String, source: Slot) -> PlannedOp {
        let mut player = self.picker.pick(&mut self.rng);
        if player == source.0 {
            let players = self.config.players;
            player = (source.0 + 1 + self.rng.below(players - 1)) % players;
        }
        let target = (player, source.1);
        if !self.accounts.contains(target) {
            return self.open(tx_id, target);
        }
        PlannedOp {
            to: Some(self.account(target)),
            ..self.with_amount(tx_id, OpKind::Transfer, source)
        }
    }

    fn plan_hold(&mut self, tx_id: String, slot: Slot) -> PlannedOp {
        let hold_id = derived_id('h', &tx_id);
        let op = PlannedOp {
            hold_id: Some(hold_id.clone()),
            ..self.with_amount(tx_id, OpKind::Hold, slot)
        };
        if self.holds.len() == Self::HOLDS_REMEMBERED_MAX {
            let forgotten = self.rng.index(self.holds.len());
            self.holds.swap_remove(forgotten);
        }
        let remaining = op.amount;
        self.holds.push(RememberedHold {
            slot,
            hold_id,
            remaining,
        });
        op
    }

    /// Captures (all or part of) or releases a remembered hold; places a hold
    /// when none is remembered.
    fn plan_settle(&mut self, tx_id: String, f: OpKind) -> PlannedOp {
        if self.holds.is_empty() {
            let slot = self.choose_slot();
            if !self.accounts.contains(slot) {
                return self.open(tx_id, slot);
            }
            return self.plan_hold(tx_id, slot);
        }
        let index = self.rng.index(self.holds.len());
        let hold = &self.holds[index];
        let (slot, hold_id, remaining) = (hold.slot, hold.hold_id.clone(), hold.remaining);
        let partial = f == OpKind::Capture && remaining >= 2 && self.rng.chance_pct(50);
        let amount = match f {
            OpKind::Capture if partial => self.rng.in_range(1, remaining - 1),
            OpKind::Capture => remaining,
            _ => 0,
        };
        if partial {
            self.holds[index].remaining -= amount;
        } else {
            self.holds.swap_remove(index);
        }
        PlannedOp {
            amount,
            hold_id: Some(hold_id),
            ..PlannedOp::new(tx_id, f, self.account(slot))
        }
    }

    fn plan_read_all(&mut self, tx_id: String) -> PlannedOp {
        if self.accounts.is_empty() {
            return self.plan_open(tx_id);
        }
        let accounts: Vec<(u64, String)> = self
            .accounts
            .sorted()
            .map(|slot| self.account(slot))
            .collect();
        PlannedOp {
            accounts,
            ..PlannedOp::new(tx_id, OpKind::ReadAll, self.account(self.accounts_first()))
        }
    }

    fn accounts_first(&self) -> Slot {
        self.accounts
            .sorted()
            .next()
            .expect("read_all is planned only with opened accounts")
    }

    /// One of [`DELIBERATE_REFUSALS`]; `unknown_account` when the drawn one
    /// needs accounts that are not opened yet.
    fn plan_refusal(&mut self, tx_id: String) -> PlannedOp {
        let code = DELIBERATE_REFUSALS[self.rng.index(DELIBERATE_REFUSALS.len())];
        let planned = match code {
            ZERO_AMOUNT => self.refuse_zero_amount(&tx_id),
            CURRENCY_MISMATCH => self.refuse_currency_mismatch(&tx_id),
            SAME_ACCOUNT => self.refuse_same_account(&tx_id),
            UNKNOWN_HOLD => self.refuse_unknown_hold(&tx_id),
            _ => None,
        };
        let op = planned.unwrap_or_else(|| self.refuse_unknown_account(tx_id));
        assert!(
            matches!(op.expect, Expect::Refused(_)),
            "a planned refusal expects one"
        );
        op
    }

    fn refuse_zero_amount(&mut self, tx_id: &str) -> Option<PlannedOp> {
        let slot = self.accounts.random(&mut self.rng)?;
        let f = [OpKind::Credit, OpKind::Debit, OpKind::Hold][self.rng.index(3)];
        let hold_id = (f == OpKind::Hold).then(|| derived_id('h', tx_id));
        Some(PlannedOp {
            hold_id,
            expect: Expect::Refused(ZERO_AMOUNT),
            ..PlannedOp::new(tx_id.to_string(), f, self.account(slot))
        })
    }

    fn refuse_currency_mismatch(&mut self, tx_id: &str) -> Option<PlannedOp> {
        let currencies = self.config.currencies.len();
        if currencies < 2 {
            return None;
        }
        let source = self.accounts.random(&mut self.rng)?;
        let currency = (source.1 + 1 + self.rng.index(currencies - 1)) % currencies;
        let player = self.accounts.random_in(currency, &mut self.rng)?;
        Some(PlannedOp {
            to: Some(self.account((player, currency))),
            expect: Expect::Refused(CURRENCY_MISMATCH),
            ..self.with_amount(tx_id.to_string(), OpKind::Transfer, source)
        })
    }

    fn refuse_same_account(&mut self, tx_id: &str) -> Option<PlannedOp> {
        let slot = self.accounts.random(&mut self.rng)?;
        Some(PlannedOp {
            to: Some(self.account(slot)),
            expect: Expect::Refused(SAME_ACCOUNT),
            ..self.with_amount(tx_id.to_string(), OpKind::Transfer, slot)
        })
    }

    /// Hold ids starting with `u` are never planned as holds.
    fn refuse_unknown_hold(&mut self, tx_id: &str) -> Option<PlannedOp> {
        let slot = self.accounts.random(&mut self.rng)?;
        Some(PlannedOp {
            hold_id: Some(derived_id('u', tx_id)),
            expect: Expect::Refused(UNKNOWN_HOLD),
            ..self.with_amount(tx_id.to_string(), OpKind::Capture, slot)
        })
    }

    /// Player ids in `players..2 * players` above the generation's first
    /// are never opened.
    fn refuse_unknown_account(&mut self, tx_id: String) -> PlannedOp {
        let players = self.config.players;
        let player = self.config.generation_first_player(self.generation)
            + players
            + self.rng.below(players);
        let currency = self.rng.index(self.config.currencies.len());
        let f = [OpKind::Credit, OpKind::Debit, OpKind::Read][self.rng.index(3)];
        let amount = match f {
            OpKind::Read => 0,
            _ => self.rng.in_range(1, self.config.amount_max),
        };
        PlannedOp {
            amount,
            expect: Expect::Refused(UNKNOWN_ACCOUNT),
            ..PlannedOp::new(tx_id, f, (player, self.config.currencies[currency].clone()))
        }
    }

    fn with_amount(&mut self, tx_id: String, f: OpKind, slot: Slot) -> PlannedOp {
        PlannedOp {
            amount: self.rng.in_range(1, self.config.amount_max),
            ..PlannedOp::new(tx_id, f, self.account(slot))
        }
    }

    fn choose_slot(&mut self) -> Slot {
        let player = self.picker.pick(&mut self.rng);
        (player, self.rng.index(self.config.currencies.len()))
    }

    /// The account of a slot in the current generation.
    fn account(&self, (player, currency): Slot) -> (u64, String) {
        let player = self.config.generation_first_player(self.generation) + player;
        (player, self.config.currencies[currency].clone())
    }
}

/// An id sharing the tx id's unique suffix: `derived_id('h', "w1f-p3-7")` is `"h1f-p3-7"`.
fn derived_id(prefix: char, tx_id: &str) -> String {
    let suffix = tx_id
        .strip_prefix('w')
        .expect("workload tx ids start with 'w'");
    format!("{prefix}{suffix}")
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet, HashMap};

    use super::*;
    use crate::key_choice::KeyChoice;

    const OPS: usize = 10_000;
    const PROCESSES: u64 = 5;

    fn run(config: WorkloadConfig, seed: u64, ops: usize) -> Vec<PlannedOp> {
        let mut workload = Workload::new(config, seed);
        (0..ops)
            .map(|n| workload.next_op(n as u64 % PROCESSES))
            .collect()
    }

    fn share_of_top_decile(ops: &[PlannedOp], players: u64) -> f64 {
        let mut per_player = vec![0u64; players as usize];
        for op in ops.iter().filter(|op| op.account.0 < players) {
            per_player[op.account.0 as usize] += 1;
        }
        let total: u64 = per_player.iter().sum();
        per_player.sort_unstable_by(|a, b| b.cmp(a));
        let top: u64 = per_player[..(players / 10) as usize].iter().sum();
        top as f64 / total as f64
    }

    // Proves one seed always yields the same operations, and another seed other ones.
    #[test]
    fn seed_determines_the_sequence() {
        let first = run(WorkloadConfig::default(), 42, 2_000);
        assert_eq!(first, run(WorkloadConfig::default(), 42, 2_000));
        assert_ne!(first, run(WorkloadConfig::default(), 43, 2_000));
        assert_eq!(first[0].tx_id, "w2a-p0-1");
    }

    // Proves hot keys put most calls on the top 10% of players while uniform spreads them.
    #[test]
    fn hot_keys_concentrate_and_uniform_spreads() {
        let hot = WorkloadConfig {
            key_choice: KeyChoice::Hot { skew: 1.0 },
            ..WorkloadConfig::default()
        };
        let players = hot.players;
        let hot_share = share_of_top_decile(&run(hot, 7, OPS), players);
        assert!(hot_share > 0.5, "hot top decile share {hot_share}");
        let uniform_share = share_of_top_decile(&run(WorkloadConfig::default(), 7, OPS), players);
        assert!(
            uniform_share < 0.25,
            "uniform top decile share {uniform_share}"
        );
    }

    // Proves the default config plans every kind of call and every deliberate refusal.
    #[test]
    fn default_mix_covers_every_kind_and_refusal() {
        let ops = run(WorkloadConfig::default(), 1, OPS);
        let kinds: BTreeSet<OpKind> = ops.iter().map(|op| op.f).collect();
        assert_eq!(kinds.len(), 9, "kinds planned: {kinds:?}");
        let refusals: BTreeSet<&str> = ops
            .iter()
            .filter_map(|op| match op.expect {
                Expect::Refused(code) => Some(code),
                Expect::MaybeOk => None,
            })
            .collect();
        assert_eq!(refusals, BTreeSet::from(DELIBERATE_REFUSALS));
        let settled = ops
            .iter()
            .any(|op| op.f == OpKind::Capture && op.expect == Expect::MaybeOk);
        assert!(settled, "no capture of a remembered hold");
    }

    // Proves a repeated tx id always comes with exactly the operation first planned under it.
    #[test]
    fn duplicates_repeat_an_earlier_op_exactly() {
        let ops = run(WorkloadConfig::default(), 3, OPS);
        let mut first_by_tx: HashMap<&str, &PlannedOp> = HashMap::new();
        let mut duplicates = 0;
        for op in &ops {
            match first_by_tx.get(op.tx_id.as_str()) {
                Some(first) => {
                    assert_eq!(*first, op);
                    assert!(op.is_write() && op.expect == Expect::MaybeOk);
                    duplicates += 1;
                }
                None => {
                    first_by_tx.insert(&op.tx_id, op);
                }
            }
        }
        assert!(duplicates > OPS / 50, "only {duplicates} duplicates");
    }

    // Proves no call names an account before its open was planned, bar unknown_account refusals.
    #[test]
    fn opens_come_before_any_other_use() {
        let config = WorkloadConfig {
            key_choice: KeyChoice::Hot { skew: 1.0 },
            ..WorkloadConfig::default()
        };
        let mut opened: BTreeSet<(u64, String)> = BTreeSet::new();
        let mut holds: BTreeMap<String, (u64, String)> = BTreeMap::new();
        for op in run(config, 11, OPS) {
            if op.expect == Expect::Refused(UNKNOWN_ACCOUNT) {
                assert!(
                    !opened.contains(&op.account),
                    "{op:?} names an opened account"
                );
                continue;
            }
            if op.f == OpKind::Open {
                opened.insert(op.account.clone());
                continue;
            }
            let named = std::iter::once(&op.account)
                .chain(&op.to)
                .chain(&op.accounts);
            for account in named {
                assert!(
                    opened.contains(account),
                    "{op:?} before an open of {account:?}"
                );
            }
            if op.f == OpKind::Hold && op.expect == Expect::MaybeOk {
                holds.insert(op.hold_id.clone().unwrap(), op.account.clone());
            }
            if matches!(op.f, OpKind::Capture | OpKind::Release) && op.expect == Expect::MaybeOk {
                let hold = op.hold_id.as_ref().unwrap();
                assert_eq!(
                    holds.get(hold),
                    Some(&op.account),
                    "{op:?} settles a hold never planned"
                );
            }
        }
    }

    // Proves a new generation names only its own fresh accounts, opening each before use.
    #[test]
    fn a_generation_uses_only_its_own_accounts() {
        let config = WorkloadConfig::default();
        let mut workload = Workload::new(config.clone(), 9);
        let before: BTreeSet<String> = (0..2_000)
            .map(|n| workload.next_op(n % PROCESSES).tx_id)
            .collect();
        workload.enter_generation(3);
        workload.enter_generation(2);
        assert_eq!(workload.generation(), 3);
        let own: BTreeSet<(u64, String)> = config.generation_accounts(3).into_iter().collect();
        let mut opened = BTreeSet::new();
        for n in 0..OPS as u64 {
            let op = workload.next_op(n % PROCESSES);
            assert!(
                !before.contains(&op.tx_id),
                "{op:?} repeats a tx id of generation 0"
            );
            let named: Vec<&(u64, String)> = std::iter::once(&op.account)
                .chain(&op.to)
                .chain(&op.accounts)
                .collect();
            if op.expect == Expect::Refused(UNKNOWN_ACCOUNT) {
                assert_eq!(config.generation_of(op.account.0), 3);
                assert!(!own.contains(&op.account), "{op:?} names a real account");
                continue;
            }
            for account in named {
                assert!(own.contains(account), "{op:?} leaves generation 3");
                assert!(
                    op.f == OpKind::Open || opened.contains(account),
                    "{op:?} before an open of {account:?}"
                );
            }
            if op.f == OpKind::Open {
                opened.insert(op.account.clone());
            }
        }
        assert_eq!(opened, own, "every account of the generation gets opened");
    }

    // Proves planned calls become invoke values the history format accepts.
    #[test]
    fn invoke_values_follow_the_history_format() {
        for op in run(WorkloadConfig::default(), 5, 2_000) {
            let value = op.invoke_value();
            assert_eq!(value.tx.is_some(), op.is_write());
            assert_eq!(value.to.is_some(), op.f == OpKind::Transfer);
            assert_eq!(op.account_id().is_none(), op.f == OpKind::ReadAll);
            let needs_amount = matches!(op.f, OpKind::Credit | OpKind::Debit | OpKind::Hold);
            assert!(!needs_amount || value.amount.is_some());
        }
    }
}
