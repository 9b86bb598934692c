//! The accounts a workload has planned an open for.

use std::collections::BTreeSet;

use crate::splitmix64::SplitMix64;

/// An account as the workload tracks it: (player, index into the currencies).
pub(crate) type Slot = (u64, usize);

/// Which accounts have an open planned, in a shape that serves both random
/// picks and ordered listing. Memory is bounded by players × currencies.
#[derive(Debug, Clone)]
pub(crate) struct OpenedAccounts {
    players: u64,
    currencies: usize,
    opened: BTreeSet<Slot>,
    in_open_order: Vec<Slot>,
    players_by_currency: Vec<Vec<u64>>,
    /// Every slot below it (as `player * currencies + currency`) is opened.
    cursor: u64,
}

impl OpenedAccounts {
    pub(crate) fn new(players: u64, currencies: usize) -> Self {
        assert!(players > 0 && currencies > 0, "an empty account space");
        OpenedAccounts {
            players,
            currencies,
            opened: BTreeSet::new(),
            in_open_order: Vec::new(),
            players_by_currency: vec![Vec::new(); currencies],
            cursor: 0,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.in_open_order.is_empty()
    }

    pub(crate) fn contains(&self, slot: Slot) -> bool {
        self.opened.contains(&slot)
    }

    pub(crate) fn insert(&mut self, slot: Slot) {
        assert!(
            slot.0 < self.players && slot.1 < self.currencies,
            "{slot:?} out of range"
        );
        assert!(self.opened.insert(slot), "{slot:?} opened twice");
        self.in_open_order.push(slot);
        self.players_by_currency[slot.1].push(slot.0);
    }

    /// The lowest account nobody opened yet, if any.
    pub(crate) fn next_unopened(&mut self) -> Option<Slot> {
        let slots = self.players * self.currencies as u64;
        while self.cursor < slots {
            let slot = self.slot_at(self.cursor);
            if !self.contains(slot) {
                return Some(slot);
            }
            self.cursor += 1;
        }
        None
    }

    /// A uniformly chosen opened account.
    pub(crate) fn random(&self, rng: &mut SplitMix64) -> Option<Slot> {
        if self.is_empty() {
            return None;
        }
        Some(self.in_open_order[rng.index(self.in_open_order.len())])
    }

    /// A uniformly chosen opened player in `currency`.
    pub(crate) fn random_in(&self, currency: usize, rng: &mut SplitMix64) -> Option<u64> {
        let players = &self.players_by_currency[currency];
        if players.is_empty() {
            return None;
        }
        Some(players[rng.index(players.len())])
    }

    /// Every opened account, ordered by player, then currency index.
    pub(crate) fn sorted(&self) -> impl Iterator<Item = Slot> + '_ {
        self.opened.iter().copied()
    }

    fn slot_at(&self, index: u64) -> Slot {
        let currencies = self.currencies as u64;
        (index / currencies, (index % currencies) as usize)
    }
}
