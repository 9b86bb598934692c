//! The cluster's final state, read back through the client API after the
//! run has healed.

use std::time::Duration;

use std::collections::BTreeSet;

use geowallet_client::{Account, Client, JournalCursor};
use geowallet_testkit::{Balance, FinalState, HistoryEvent, account_currency};

/// Attempts of each final read (500 ms apart) before the run fails: a
/// healed cluster may still be electing, or handing leadership back.
const FINAL_READ_ATTEMPTS: u32 = 20;
/// Journal entries per page when dumping the final state.
const JOURNAL_PAGE: u32 = 500;
/// Accounts per final audit call: a long run names thousands, and one call
/// for all of them would outlast the client's RPC timeout (the server looks
/// up every player's placement).
const AUDIT_ACCOUNTS_PER_CALL: usize = 200;

/// Every account a history names (as a call's account, a transfer's
/// target or in a read's balances), in order: the universe of the final
/// state when players rotate. Accounts never opened are harmless there (the
/// audit reports them absent).
pub fn history_accounts(history: &[HistoryEvent]) -> Result<Vec<Account>, String> {
    let mut named: BTreeSet<&str> = BTreeSet::new();
    for e in history {
        named.extend(e.account.as_deref());
        named.extend(e.value.to.as_deref());
        named.extend(
            e.value
                .balances
                .iter()
                .flat_map(|b| b.keys().map(String::as_str)),
        );
    }
    named
        .into_iter()
        .map(|id| {
            let player = id.rsplit_once('/').and_then(|(p, _)| p.parse::<u64>().ok());
            let player = player.ok_or_else(|| {
                format!("the history names account {id:?}, not <player>/<currency>")
            })?;
            Ok(Account::new(player, account_currency(id).to_string()))
        })
        .collect()
}

/// Every account's balance and journal. Set `SIM_DUMP_JOURNAL=1` to print
/// the journals (it changes nothing).
pub async fn final_state(client: &Client, universe: &[Account]) -> Result<FinalState, String> {
    final_state_in_groups(client, universe, &[]).await
}

/// [`final_state`] of a cluster whose wallets moved between `groups`: each
/// account's journal is the lines every group holds (a wallet's lines stay
/// where they were written), each line once. Empty `groups`: the journal
/// of the group that holds the player now.
pub async fn final_state_in_groups(
    client: &Client,
    universe: &[Account],
    groups: &[u64],
) -> Result<FinalState, String> {
    // After healing, groups may still be electing (the directory too, in
    // the geo shape): the final read waits for them, within a bound.
    let mut state = FinalState::default();
    let mut transfers = TransferGroups::new();
    let mut balances = Vec::with_capacity(universe.len());
    for part in universe.chunks(AUDIT_ACCOUNTS_PER_CALL) {
        let mut attempts = 0;
        let audit = loop {
            match client.audit(part).await {
                Ok(a) => break a,
                Err(e) if attempts == FINAL_READ_ATTEMPTS => {
                    return Err(format!("final audit after {attempts} attempts: {e}"));
                }
                Err(_) => attempts += 1,
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        balances.extend(audit.balances);
    }
    for (account, balance) in &balances {
        let Some(b) = balance else { continue };
        state
            .balances
            .insert(account.to_string(), Balance::new(b.available, b.held));
        let sources: Vec<Option<u64>> = if groups.is_empty() {
            vec![None]
        } else {
            groups.iter().copied().map(Some).collect()
        };
        for source in sources {
            journal_lines(client, account, source, &mut state, &mut transfers).await?;
        }
    }
    state.transfers_between_groups = transfers
        .values()
        .filter(|(out, inn)| matches!((out, inn), (Some(o), Some(i)) if o != i))
        .count() as u64;
    Ok(state)
}

/// Per transfer tx id, the group of its `transfer_out` line and of its
/// `transfer_in` line.
type TransferGroups = std::collections::BTreeMap<String, (Option<u64>, Option<u64>)>;

/// Every line of `account`'s journal in `group` (`None`: where the player
/// is now) into `state`.
async fn journal_lines(
    client: &Client,
    account: &Account,
    group: Option<u64>,
    state: &mut FinalState,
    transfers: &mut TransferGroups,
) -> Result<(), String> {
    {
        let mut from = JournalCursor::START;
        loop {
            let mut attempts = 0;
            let page = loop {
                let read = match group {
                    Some(g) => {
                        client
                            .journal_in_group(g, account, from, JOURNAL_PAGE)
                            .await
                    }
                    None => client.journal(account, from, JOURNAL_PAGE).await,
                };
                match read {
                    Ok(p) => break p,
                    Err(e) if attempts == FINAL_READ_ATTEMPTS => {
                        return Err(format!(
                            "final journal of {account} after {attempts} attempts: {e}"
                        ));
                    }
                    Err(_) => attempts += 1,
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            };
            for e in &page.entries {
                if std::env::var_os("SIM_DUMP_JOURNAL").is_some() {
                    eprintln!("journal {account}: {e:?}");
                }
                // Lines of no client transaction (a hold expiring, a
                // wallet moving out or in) carry no tx id.
                if e.tx_id.is_empty() {
                    continue;
                }
                state.applied_tx.insert(e.tx_id.clone());
                // A transfer to another group that its payee refused gives
                // the money back under the same tx id: the undoing of its
                // one application, not a second.
                if e.kind == "transfer_back" {
                    state.returned_transfers.insert(e.tx_id.clone());
                    continue;
                }
                let sides = transfers.entry(e.tx_id.clone());
                match e.kind.as_str() {
                    "transfer_out" => sides.or_default().0 = Some(e.group),
                    "transfer_in" => sides.or_default().1 = Some(e.group),
                    _ => {}
                }
                // Per account: a transfer rightly has a line on each side.
                *state
                    .journal_tx_counts
                    .entry(format!("{} on {account}", e.tx_id))
                    .or_default() += 1;
            }
            match page.next {
                Some(next) => from = next,
                None => break,
            }
        }
    }
    Ok(())
}

/// Waits, up to `within`, until nothing is in flight between `groups`: the
/// transit accounts of all of them sum to 0 in every currency (every wallet
/// move and every transfer between groups finished, resumed by the
/// leaders from their logs). Each group's own books must balance at every
/// read. Err: what is still in flight, or a group whose books do not
/// balance.
pub async fn nothing_in_transit(
    client: &Client,
    groups: &[u64],
    within: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let mut transit: std::collections::BTreeMap<String, i128> = Default::default();
        let mut read_all = true;
        for g in groups {
            match client.audit_in_group(*g, &[]).await {
                Ok(audit) => {
                    for (currency, t) in audit.totals {
                        if t.players.wrapping_add(t.system) != 0 {
                            return Err(format!(
                                "group {g}'s books of {currency} do not balance: {t:?}"
                            ));
                        }
                        *transit.entry(currency).or_default() += t.transit;
                    }
                }
                Err(_) => read_all = false,
            }
        }
        if read_all && transit.values().all(|t| *t == 0) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "money still in transit between groups {groups:?} after {within:?}: {transit:?} \
                 (a move or a transfer between groups never finished)"
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
