//! The payout worker example (`client/examples/payout_worker`) against a
//! real cluster: every withdrawal settles once although the worker is
//! killed and restarted from its saved position.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use geowallet_client::{Account, ClientConfig, ClientTls, CreditKind, Resume, Tx};

use crate::cluster::TestCluster;

#[path = "../../../client/examples/payout_worker/worker.rs"]
mod worker;

const PLAYERS: u64 = 20;
const DEPOSIT: u64 = 10_000;

/// The player's payout amount: those ending in 7 are declined.
fn amount(p: u64) -> u64 {
    1_000 + p * 10 + if p.is_multiple_of(4) { 7 } else { 0 }
}

struct Shared(Arc<Mutex<Resume>>);

impl worker::Position for Shared {
    fn load(&self) -> Resume {
        *self.0.lock().unwrap()
    }
    fn save(&mut self, at: Resume) {
        *self.0.lock().unwrap() = at;
    }
}

// Proves the payout example settles every withdrawal hold exactly once:
// the provider sends each approved payout once, each approved hold is
// captured (one capture line), each declined one released, no money is
// left held; while the worker is killed twice mid-stream and resumes from
// the position it saved (so it sees some payouts again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payout_worker_settles_every_withdrawal_once_across_restarts() {
    let tc = TestCluster::start(100_000).await;
    let root = tc.client();
    let payments = tc
        .cluster
        .client(ClientConfig {
            tls: Some(ClientTls::from_dir(&tc.cluster.dir.join("tls"), "payments").unwrap()),
            retry_budget: Duration::from_secs(20),
            ..Default::default()
        })
        .unwrap();
    let far = u64::MAX / 2;
    for p in 1..=PLAYERS {
        let a = Account::new(p, "EUR");
        root.open(&Tx::new(format!("po-open-{p}")), &a)
            .await
            .unwrap();
        root.credit(
            &Tx::new(format!("po-dep-{p}")),
            &a,
            DEPOSIT,
            CreditKind::Deposit,
        )
        .await
        .unwrap();
    }
    let provider = Arc::new(worker::FakeProvider::default());
    let position = Arc::new(Mutex::new(Resume::START));
    let start_worker = || {
        let (client, provider, position) = (payments.clone(), provider.clone(), position.clone());
        tokio::spawn(async move {
            let mut at = Shared(position);
            worker::run(&client, 1, provider.as_ref(), &mut at).await
        })
    };
    let mut running = start_worker();
    for p in 1..=PLAYERS {
        let hold = format!("{}{p}", worker::PAYOUT_PREFIX);
        payments
            .hold(
                &Tx::new(hold.clone()),
                &Account::new(p, "EUR"),
                &hold,
                amount(p),
                far,
            )
            .await
            .unwrap();
        // Kill the worker twice while payouts arrive; it restarts from the
        // position it saved.
        if p % 7 == 0 {
            running.abort();
            let _ = running.await;
            running = start_worker();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut held = 0;
        for p in 1..=PLAYERS {
            held += root.balance(&Account::new(p, "EUR")).await.unwrap().held;
        }
        if held == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{held} still held after 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    running.abort();
    let sent = provider.sent.lock().unwrap().clone();
    for p in 1..=PLAYERS {
        let a = Account::new(p, "EUR");
        let b = root.balance(&a).await.unwrap();
        let id = format!("{}{p}", worker::PAYOUT_PREFIX);
        let page = root
            .journal(&a, geowallet_client::JournalCursor::Seq(1), 100)
            .await
            .unwrap();
        let count = |kind: &str| page.entries.iter().filter(|e| e.kind == kind).count();
        if amount(p) % 10 == 7 {
            assert!(!sent.contains_key(&id), "declined {id} was sent");
            assert_eq!(b.available, DEPOSIT, "player {p}");
            assert_eq!((count("release"), count("capture:withdrawal")), (1, 0));
        } else {
            assert_eq!(sent.get(&id), Some(&(p, amount(p))), "{id}");
            assert_eq!(b.available, DEPOSIT - amount(p), "player {p}");
            assert_eq!((count("release"), count("capture:withdrawal")), (0, 1));
        }
    }
    assert_eq!(
        sent.len() as u64,
        (1..=PLAYERS).filter(|p| amount(*p) % 10 != 7).count() as u64
    );
}
