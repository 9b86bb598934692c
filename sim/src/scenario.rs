use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use geowallet_ledger::{
    AccountId, Amount, Command, CreditKind, Currency, Outcome, PlayerId, Request, TxId,
};
use geowallet_raft::Proposal;
use geowallet_storage::{CrashFaults, SyncMode};

use crate::SimCluster;

const ACCOUNTS: u64 = 8;
const DEPOSIT: u64 = 10_000;
const TRANSFERS: u64 = 300;
/// Attempts per proposal at most (each waits for a leader first).
const ATTEMPTS_MAX: u32 = 200;
const LEADER_WAIT: Duration = Duration::from_secs(10);
const PROPOSAL_TIMEOUT: Duration = Duration::from_secs(2);

/// What fails, and how, in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL of the leader; it loses some unsynced writes; restarted later.
    LeaderKill,
    /// Every node loses power at once (unsynced writes lost everywhere); all restart.
    PowerLoss,
    /// The leader is cut off the network (proposals it took cannot commit), later healed.
    IsolateLeader,
    /// The leader freezes (SIGSTOP) and thaws later, believing it still leads.
    PauseLeader,
}

/// What one run did, for the test's assertions and the seed report.
#[derive(Debug, Clone)]
pub struct ScenarioReport {
    pub seed: u64,
    pub acked: usize,
    pub refused: usize,
    pub retries: u32,
    pub killed: u64,
    pub faults: CrashFaults,
    pub final_index: u64,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn eur(p: u64) -> AccountId {
    AccountId {
        player: PlayerId(p),
        currency: Currency::parse("EUR").expect("valid currency"),
    }
}

fn request(tx: String, command: Command) -> Request {
    Request {
        tx: TxId::new(tx).expect("valid tx id"),
        created_at_ns: now_ns(),
        command,
    }
}

/// Seeded choices, from madsim's seeded RNG.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

/// Proposes `requests` (one entry) until a leader commits it, reusing the
/// same requests (same tx ids) on every retry: a retry can never apply twice.
async fn propose(
    cluster: &SimCluster,
    requests: &[Request],
    retries: &mut u32,
) -> Result<Vec<Outcome>, String> {
    let mut last_error = String::new();
    for _ in 0..ATTEMPTS_MAX {
        let Some((_, raft)) = cluster.leader(LEADER_WAIT).await else {
            return Err("no leader within 10 s".into());
        };
        let proposal = Proposal {
            leader_time_ns: now_ns(),
            requests: requests.to_vec(),
        };
        match tokio::time::timeout(PROPOSAL_TIMEOUT, raft.client_write(proposal)).await {
            Ok(Ok(resp)) => return Ok(resp.data),
            Ok(Err(e)) => last_error = e.to_string(),
            Err(_) => last_error = format!("no answer within {PROPOSAL_TIMEOUT:?}"),
        }
        *retries += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!(
        "a proposal found no commit in {ATTEMPTS_MAX} attempts; last error: {last_error}"
    ))
}

/// Three replicas; seeded transfers; `fault` strikes partway (seeded loss
/// of unsynced writes) and the nodes come back. Afterwards every replica must
/// hold the same state, money must be conserved, and every acknowledged
/// transfer must be applied exactly as acknowledged.
pub async fn run_scenario(fault: Fault, disk: SyncMode) -> Result<ScenarioReport, String> {
    let seed = madsim::runtime::Handle::current().seed();
    let mut dice = Dice(madsim::rand::random::<u64>());
    let cluster = SimCluster::start(3, disk);
    let mut retries = 0;
    for p in 1..=ACCOUNTS {
        let setup = [
            request(
                format!("open-{p}"),
                Command::OpenAccount { account: eur(p) },
            ),
            request(
                format!("dep-{p}"),
                Command::Credit {
                    account: eur(p),
                    amount: Amount(DEPOSIT),
                    kind: CreditKind::Deposit,
                },
            ),
        ];
        propose(&cluster, &setup, &mut retries).await?;
    }
    let kill_at = dice.below(TRANSFERS / 2) + 10;
    let restart_at = kill_at + 20 + dice.below(TRANSFERS / 3);
    let faults = CrashFaults {
        unsynced_batches_kept: dice.below(3) as usize,
        tear_last_write: false,
    };
    let mut killed = 0;
    let mut acked: BTreeMap<TxId, Outcome> = BTreeMap::new();
    for i in 0..TRANSFERS {
        if i == kill_at {
            let (leader, _) = cluster
                .leader(LEADER_WAIT)
                .await
                .ok_or("no leader to kill")?;
            killed = leader;
            match fault {
                Fault::LeaderKill => cluster.kill(leader, faults),
                Fault::IsolateLeader => cluster.isolate(leader),
                Fault::PauseLeader => cluster.pause(leader),
                Fault::PowerLoss => {
                    cluster
                        .ids()
                        .into_iter()
                        .for_each(|id| cluster.kill(id, faults));
                    tokio::time::sleep(Duration::from_millis(100 + dice.below(400))).await;
                    cluster.ids().into_iter().for_each(|id| cluster.restart(id));
                }
            }
        }
        if i == restart_at {
            match fault {
                Fault::LeaderKill => cluster.restart(killed),
                Fault::IsolateLeader => cluster.heal(killed),
                Fault::PauseLeader => cluster.resume(killed),
                Fault::PowerLoss => {}
            }
        }
        let from = 1 + dice.below(ACCOUNTS);
        let to = 1 + (from + dice.below(ACCOUNTS - 1)) % ACCOUNTS;
        let amount = 1 + dice.below(3_000);
        let r = request(
            format!("tr-{i}"),
            Command::Transfer {
                from: eur(from),
                to: eur(to),
                amount: Amount(amount),
            },
        );
        let outcome = propose(&cluster, std::slice::from_ref(&r), &mut retries).await?;
        acked.insert(
            r.tx.clone(),
            outcome
                .into_iter()
                .next()
                .ok_or("no outcome for a request")?,
        );
    }
    let final_index = converge(&cluster).await?;
    check(&cluster, &acked)?;
    let refused = acked.values().filter(|o| o.is_err()).count();
    Ok(ScenarioReport {
        seed,
        acked: acked.len() - refused,
        refused,
        retries,
        killed,
        faults,
        final_index,
    })
}

/// Waits until every replica has applied everything the leader committed.
async fn converge(cluster: &SimCluster) -> Result<u64, String> {
    let (_, leader) = cluster
        .leader(LEADER_WAIT)
        .await
        .ok_or("no leader at the end")?;
    leader
        .client_write(Proposal {
            leader_time_ns: now_ns(),
            requests: Vec::new(),
        })
        .await
        .map_err(|e| e.to_string())?;
    let target = leader
        .metrics()
        .borrow_watched()
        .last_log_index
        .unwrap_or(0);
    for (id, (raft, _)) in cluster.replicas() {
        raft.wait(Some(Duration::from_secs(30)))
            .applied_index_at_least(Some(target), "converge")
            .await
            .map_err(|e| format!("node {id} did not apply up to {target}: {e}"))?;
    }
    Ok(target)
}

use openraft::async_runtime::WatchReceiver;

/// The invariants every run must end with.
fn check(cluster: &SimCluster, acked: &BTreeMap<TxId, Outcome>) -> Result<(), String> {
    let mut states = Vec::new();
    for (id, (_, view)) in cluster.replicas() {
        let snapshot = view.read(|ledger, _| {
            ledger.check_invariants();
            let accounts: Vec<_> = ledger
                .accounts()
                .map(|(a, acc)| (*a, acc.available, acc.held))
                .collect();
            let total: u64 = accounts.iter().map(|(_, av, h)| av + h).sum();
            let lost: Vec<String> = acked
                .iter()
                .filter(|(tx, o)| ledger.tx_record(tx).map(|r| &r.outcome) != Some(*o))
                .map(|(tx, _)| tx.as_str().to_string())
                .collect();
            (accounts, total, lost)
        });
        if snapshot.1 != ACCOUNTS * DEPOSIT {
            return Err(format!(
                "node {id}: players hold {} instead of {}",
                snapshot.1,
                ACCOUNTS * DEPOSIT
            ));
        }
        if !snapshot.2.is_empty() {
            return Err(format!(
                "node {id}: acknowledged transfers missing or changed: {:?}",
                snapshot.2
            ));
        }
        states.push((id, snapshot.0));
    }
    if states.len() != 3 {
        return Err(format!("only {} replicas running at the end", states.len()));
    }
    if states.windows(2).any(|w| w[0].1 != w[1].1) {
        return Err(format!("replicas disagree: {states:?}"));
    }
    Ok(())
}
