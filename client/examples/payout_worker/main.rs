//! `cargo run --release --example payout_worker -- ENDPOINTS TLS_DIR [GROUP]`
//!
//! Settles the payout holds (`payout-...`) of a group with a fake local
//! payment provider (see `worker.rs`), as the certificate `payments` of
//! `TLS_DIR` (what `geowallet dev` writes to `DIR/tls`). Keeps its position
//! in memory: a restart starts from the group's first event, which is safe
//! (every payout settles once) but slower.

mod worker;

use geowallet_client::{Client, ClientConfig, ClientTls, Resume};

struct InMemory(Resume);

impl worker::Position for InMemory {
    fn load(&self) -> Resume {
        self.0
    }
    fn save(&mut self, at: Resume) {
        self.0 = at;
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(endpoints), Some(tls_dir)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: payout_worker ENDPOINTS TLS_DIR [GROUP]");
        std::process::exit(2);
    };
    let group = args.get(3).and_then(|g| g.parse().ok()).unwrap_or(1);
    let tls = match ClientTls::from_dir(std::path::Path::new(tls_dir), "payments") {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let config = ClientConfig {
        tls: Some(tls),
        ..Default::default()
    };
    let client = match Client::connect(endpoints.split(',').map(str::to_string), config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let provider = worker::FakeProvider::default();
    let mut position = InMemory(Resume::START);
    eprintln!("settling payout holds of group {group}");
    if let Err(e) = worker::run(&client, group, &provider, &mut position).await {
        eprintln!("error: {e} [{}]", e.code());
        std::process::exit(1);
    }
}
