//! Snapshot cost at scale, on real RocksDB with fsync: fills one group with
//! WALLETS funded wallets (open + deposit each) and TX extra tx records
//! (debits spread over the wallets) through the production apply path
//! (prefetch, ledger apply, one write batch per entry), then times what a
//! group's snapshot costs: build (a checkpoint), the stream a follower
//! receives (written to a file, as the receiver keeps it), the install on a
//! fresh store (table files ingested), and a restart of the installed store
//! to serving (reading the applied position).
//!
//!   cargo run --release -p geowallet-storage --example snapshot_scale -- WALLETS TX [DIR]
//!
//! Prints one `SNAPSHOT ...` line with the figures. DIR (default: a new temp
//! dir) must be on one filesystem (checkpoints hard-link).

use std::path::PathBuf;
use std::time::Instant;

use geowallet_ledger::{
    AccountId, Amount, Command, CreditKind, Currency, DebitKind, EntryContext, LedgerConfig,
    LogIndex, PlayerId, Request, TxId,
};
use geowallet_storage::{Db, GroupId, StateStore, write_snapshot_file};

const GROUP: GroupId = GroupId(1);
const REQUESTS_PER_ENTRY: usize = 4096;
const T0: u64 = 1_800_000_000_000_000_000;

fn account(w: u64) -> AccountId {
    let currency = if w.is_multiple_of(2) { "EUR" } else { "USD" };
    AccountId {
        player: PlayerId(w),
        currency: Currency::parse(currency).expect("a valid currency"),
    }
}

fn request(tx: String, command: Command) -> Request {
    Request {
        tx: TxId::new(tx).expect("a valid tx id"),
        created_at_ns: T0,
        command,
    }
}

/// Applies `requests` as entries of at most `REQUESTS_PER_ENTRY`.
fn apply_all(
    store: &StateStore,
    config: &LedgerConfig,
    index: &mut u64,
    requests: impl Iterator<Item = Request>,
) {
    let mut requests = requests.peekable();
    while requests.peek().is_some() {
        let batch: Vec<Request> = requests.by_ref().take(REQUESTS_PER_ENTRY).collect();
        *index += 1;
        let ctx = EntryContext {
            group: GROUP.0,
            log_index: LogIndex(*index),
            leader_time_ns: T0 + *index,
        };
        let rows = store.rows();
        rows.prefetch(&batch);
        let (_, changes) = geowallet_ledger::apply(&rows, config, ctx, &batch);
        rows.finish().expect("rows read");
        store
            .persist(&changes, format!("applied-{index}").as_bytes())
            .expect("entry persisted");
        if (*index).is_multiple_of(500) {
            eprintln!("  {} entries applied", index);
        }
    }
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let wallets: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let tx: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let temp = tempfile::tempdir().expect("a temp dir");
    let root = args.next().map_or(temp.path().to_path_buf(), PathBuf::from);
    std::fs::create_dir_all(&root).expect("the run dir");
    let config = LedgerConfig::default();

    let db = Db::open(&root.join("src")).expect("open the source store");
    let store = db.state_store(GROUP);
    let fill = Instant::now();
    let mut index = 0;
    let opens = (0..wallets).flat_map(|w| {
        [
            request(
                format!("open-{w}"),
                Command::OpenAccount {
                    account: account(w),
                },
            ),
            request(
                format!("fund-{w}"),
                Command::Credit {
                    account: account(w),
                    amount: Amount(1_000_000),
                    kind: CreditKind::Deposit,
                },
            ),
        ]
    });
    apply_all(&store, &config, &mut index, opens);
    let debits = (0..tx).map(|k| {
        request(
            format!("pre-{k}"),
            Command::Debit {
                account: account(k % wallets.max(1)),
                amount: Amount(1),
                kind: DebitKind::Bet,
            },
        )
    });
    apply_all(&store, &config, &mut index, debits);
    let fill_s = fill.elapsed().as_secs_f64();
    eprintln!("filled {wallets} wallets, {tx} extra tx records in {fill_s:.1} s");

    let t = Instant::now();
    let checkpoint = root.join("g1.ckpt");
    let info = store.build_snapshot(&checkpoint).expect("snapshot built");
    let build_ms = t.elapsed().as_secs_f64() * 1e3;

    let t = Instant::now();
    let stream = root.join("g1.snap");
    let sent = write_snapshot_file(&checkpoint, GROUP, &stream).expect("snapshot streamed");
    let stream_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let dst = Db::open(&root.join("dst")).expect("open the receiving store");
    let applied = dst
        .state_store(GROUP)
        .install_snapshot(&stream)
        .expect("snapshot installed");
    let install_s = t.elapsed().as_secs_f64();
    assert_eq!(applied, info.applied);
    drop(dst);

    let t = Instant::now();
    let reopened = Db::open(&root.join("dst")).expect("reopen the receiving store");
    let position = reopened
        .state_store(GROUP)
        .open_applied()
        .expect("applied position read");
    let restart_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(position.as_deref(), Some(&info.applied[..]));

    println!(
        "SNAPSHOT wallets={wallets} extra_tx={tx} rows={} fill_s={fill_s:.1} build_ms={build_ms:.1} \
         checkpoint_bytes={} stream_bytes={} stream_s={stream_s:.2} install_s={install_s:.2} \
         restart_ms={restart_ms:.1} src_db_bytes={}",
        sent.rows,
        info.size_bytes,
        sent.size_bytes,
        dir_bytes(&root.join("src")),
    );
}
