//! `geowallet ctl`: one command against a cluster. Human output by default,
//! one JSON object on stdout with `--json`. A refusal or failure prints one
//! line on stderr and exits non-zero (1 refused, 2 bad usage, 3 unavailable
//! or outcome unknown: indeterminate, or `tx_id_expired` = too old to tell);
//! scripts rely on this contract. A failed write's line starts with the
//! `--tx` and `--created-at-ns` to retry it with.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand, ValueEnum};
use geowallet_client::{
    Account, Balance, Client, ClientConfig, ClientTls, CreditKind, DebitKind, Error, JournalCursor,
    Receipt, Tx,
};
use serde_json::json;

#[derive(Debug, Args)]
pub struct CtlArgs {
    /// Comma-separated node endpoints (host:port).
    #[arg(long, value_delimiter = ',', required = true)]
    pub endpoints: Vec<String>,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// The caller's region, sent with every request (placement uses it).
    #[arg(long, global = true, default_value = "")]
    pub region: String,
    /// Shard group to address (0: each node's default group).
    #[arg(long, global = true, default_value_t = 0)]
    pub group: u64,
    /// Directory of the cluster's CA and client certificates (`ca.pem`,
    /// `<role>.pem`, `<role>.key`; `geowallet dev` writes them to
    /// `DIR/tls`): calls go over mutual TLS. Without it, plaintext.
    #[arg(long, global = true)]
    pub tls_dir: Option<std::path::PathBuf>,
    /// The client certificate of `--tls-dir` to call as (its role decides
    /// what may be called).
    #[arg(long, global = true, default_value = "root", requires = "tls_dir")]
    pub role: String,
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Debug, Subcommand)]
pub enum JournalCmd {
    /// Writes group `--group`'s journal of one UTC day as CSV: every line
    /// with its entry's hash chain values, then per-currency totals by
    /// kind. `geowallet verify FILE` checks it offline.
    Export {
        /// The UTC day, YYYY-MM-DD.
        #[arg(long)]
        day: String,
        /// Where to write (stdout without it).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct Wallet {
    #[arg(long)]
    pub player: u64,
    /// Currency code, e.g. EUR.
    #[arg(long)]
    pub currency: String,
}

#[derive(Debug, Args)]
pub struct TxArg {
    /// Transaction id: reuse it to retry safely (never applied twice).
    #[arg(long)]
    pub tx: String,
    /// When the transaction was first created (unix ns; now by default).
    /// A retry must pass the value printed by the first attempt: the id is
    /// remembered for 7 days from this time.
    #[arg(long)]
    pub created_at_ns: Option<u64>,
}

impl TxArg {
    fn to_tx(&self) -> Tx {
        match self.created_at_ns {
            Some(t) => Tx::with_created_at(&self.tx, t),
            None => Tx::new(&self.tx),
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CreditKindArg {
    Deposit,
    Win,
    Bonus,
    Refund,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DebitKindArg {
    Bet,
    Withdrawal,
    Fee,
}

#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Open a wallet.
    Open {
        #[command(flatten)]
        w: Wallet,
        #[command(flatten)]
        tx: TxArg,
    },
    /// Credit a wallet (deposit, win, bonus, refund).
    Credit {
        #[command(flatten)]
        w: Wallet,
        #[command(flatten)]
        tx: TxArg,
        /// Minor units (cents for EUR).
        #[arg(long)]
        amount: u64,
        #[arg(long, value_enum, default_value = "deposit")]
        kind: CreditKindArg,
    },
    /// Debit a wallet (bet, withdrawal, fee).
    Debit {
        #[command(flatten)]
        w: Wallet,
        #[command(flatten)]
        tx: TxArg,
        #[arg(long)]
        amount: u64,
        #[arg(long, value_enum, default_value = "bet")]
        kind: DebitKindArg,
    },
    /// Move money to another player's wallet of the same currency.
    Transfer {
        #[command(flatten)]
        w: Wallet,
        #[command(flatten)]
        tx: TxArg,
        #[arg(long)]
        to_player: u64,
        #[arg(long)]
        amount: u64,
    },
    /// Hold funds (available -> held) until captured, released or expired.
    Hold {
        #[command(flatten)]
        w: Wallet,
        #[command(flatten)]
        tx: TxArg,
        #[arg(long)]
        hold: String,
        #[arg(long)]
        amount: u64,
        /// The hold expires this long from now.
        #[arg(long, default_value_t = 15 * 60 * 1000)]
        expires_in_ms: u64,
    },
    /// Capture a hold (all of it unless --amount).
    Capture {
        #[command(flatten)]
        w: Wallet,
        #[command(flatten)]
        tx: TxArg,
        #[arg(long)]
        hold: String,
        #[arg(long)]
        amount: Option<u64>,
        #[arg(long, value_enum, default_value = "withdrawal")]
        kind: DebitKindArg,
    },
    /// Release a hold back to available.
    Release {
        #[command(flatten)]
        w: Wallet,
        #[command(flatten)]
        tx: TxArg,
        #[arg(long)]
        hold: String,
    },
    /// Freeze a wallet: debits, holds and transfers out are refused.
    Freeze {
        #[command(flatten)]
        w: Wallet,
        #[command(flatten)]
        tx: TxArg,
    },
    Unfreeze {
        #[command(flatten)]
        w: Wallet,
        #[command(flatten)]
        tx: TxArg,
    },
    /// Linearizable balance read.
    Balance {
        #[command(flatten)]
        w: Wallet,
    },
    /// One page of a wallet's journal, from line `--from-seq` (lines are
    /// numbered from 1 per wallet), or from `--from-index`/`--from-position`
    /// (the older cursor: the first line applied at or after that log index).
    #[command(args_conflicts_with_subcommands = true)]
    Journal {
        /// `export`: a day's journal of a group as CSV with its hash chain.
        #[command(subcommand)]
        export: Option<JournalCmd>,
        #[arg(long)]
        player: Option<u64>,
        /// Currency code, e.g. EUR.
        #[arg(long)]
        currency: Option<String>,
        #[arg(long, default_value_t = 0)]
        from_seq: u64,
        #[arg(long, default_value_t = 0)]
        from_index: u64,
        #[arg(long, default_value_t = 0)]
        from_position: u32,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// The group's (`--group`) committed events from log index `--from`, one
    /// JSON object per Raft entry per line; follows new events until
    /// interrupted, or ends after `--until`.
    Events {
        #[arg(long, default_value_t = 0)]
        from: u64,
        #[arg(long)]
        until: Option<u64>,
    },
    /// Linearizable audit: balances of `--players` in `--currency` and every
    /// currency's totals, all at one applied index. Exits 1 if a currency's
    /// players and system accounts do not sum to zero.
    Audit {
        #[arg(long, value_delimiter = ',', required = true)]
        players: Vec<u64>,
        #[arg(long)]
        currency: String,
    },
    /// Every node's view of the cluster.
    Status,
    /// Where a player's wallet is: its shard group and placement epoch.
    Placement {
        #[arg(long)]
        player: u64,
    },
    /// Move a player's wallet to a shard group homed in `--region R`;
    /// returns once the move completed (exit 0) or says why not.
    Migrate {
        #[arg(long)]
        player: u64,
    },
    /// Hand leadership of `--group G` to `--node N` (a voter of the group).
    TransferLeader {
        #[arg(long)]
        node: u64,
    },
    /// A consistent backup of every group (the directory's too) into `--to
    /// DIR`, a new directory: one snapshot file per group, each holding
    /// every write acknowledged before it was taken, checked, and
    /// `manifest.json` with their SHA-256 and log positions. The cluster
    /// keeps serving. `geowallet restore --from DIR` builds a cluster from it.
    Backup {
        #[arg(long)]
        to: std::path::PathBuf,
    },
}

fn account(w: &Wallet) -> Account {
    Account::new(w.player, w.currency.clone())
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn credit_kind(k: CreditKindArg) -> CreditKind {
    match k {
        CreditKindArg::Deposit => CreditKind::Deposit,
        CreditKindArg::Win => CreditKind::Win,
        CreditKindArg::Bonus => CreditKind::Bonus,
        CreditKindArg::Refund => CreditKind::Refund,
    }
}

fn debit_kind(k: DebitKindArg) -> DebitKind {
    match k {
        DebitKindArg::Bet => DebitKind::Bet,
        DebitKindArg::Withdrawal => DebitKind::Withdrawal,
        DebitKindArg::Fee => DebitKind::Fee,
    }
}

/// Runs one ctl command; returns the process exit code.
pub async fn run(args: CtlArgs) -> i32 {
    let tls = match &args.tls_dir {
        Some(dir) => match ClientTls::from_dir(dir, &args.role) {
            Ok(t) => Some(t),
            Err(e) => return fail(&e),
        },
        None => None,
    };
    let config = ClientConfig {
        retry_budget: Duration::from_secs(10),
        region: args.region.clone(),
        group: args.group,
        tls,
        ..Default::default()
    };
    let client = match Client::connect(args.endpoints.clone(), config) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let result = match &args.verb {
        Verb::Balance { w } => client
            .balance(&account(w))
            .await
            .map(|b| balance_output(w, b)),
        Verb::Journal {
            export: Some(JournalCmd::Export { day, out }),
            ..
        } => return journal_export(&client, &args, day, out.as_deref()).await,
        Verb::Events { from, until } => return events(&client, &args, *from, *until).await,
        Verb::Backup { to } => return backup(&client, &args, to).await,
        Verb::Journal {
            export: None,
            player,
            currency,
            from_seq,
            from_index,
            from_position,
            limit,
        } => {
            let from = if *from_seq == 0 && (*from_index, *from_position) != (0, 0) {
                JournalCursor::Position {
                    log_index: *from_index,
                    position: *from_position,
                }
            } else {
                JournalCursor::Seq(*from_seq)
            };
            let (Some(player), Some(currency)) = (player, currency) else {
                return fail(&Error::InvalidArgument {
                    message: "journal needs --player and --currency (or: journal export --day)"
                        .into(),
                });
            };
            client
                .journal(&Account::new(*player, currency.clone()), from, *limit)
                .await
                .map(journal_output)
        }
        Verb::Placement { player } => client.placement_of(*player).await.map(|p| match p {
            Some(p) => (
                json!({
                    "player": player,
                    "placed": true,
                    "group": p.group,
                    "home_region": p.home_region,
                    "epoch": p.epoch,
                }),
                format!(
                    "player {player}: group {} (home region {}), placement epoch {}",
                    p.group, p.home_region, p.epoch
                ),
            ),
            None => (
                json!({ "player": player, "placed": false }),
                format!("player {player} is not placed (never opened)"),
            ),
        }),
        Verb::Migrate { player } => {
            if args.region.is_empty() {
                return fail(&Error::InvalidArgument {
                    message: "migrate needs --region: the region to move the wallet to".into(),
                });
            }
            client.migrate(*player, &args.region).await.map(|m| {
                let text = if m.moved {
                    format!(
                        "player {player} moved to group {} (home region {}), placement epoch {}",
                        m.group, m.home_region, m.epoch
                    )
                } else {
                    format!(
                        "player {player} is already in group {} (home region {}), placement epoch {}",
                        m.group, m.home_region, m.epoch
                    )
                };
                (
                    json!({
                        "player": player,
                        "group": m.group,
                        "home_region": m.home_region,
                        "epoch": m.epoch,
                        "moved": m.moved,
                    }),
                    text,
                )
            })
        }
        Verb::TransferLeader { node } => {
            let group = args.group;
            client.transfer_leader(group, *node).await.map(|term| {
                (
                    json!({ "group": group, "leader": node, "term": term }),
                    format!("group {group} is led by node {node} (term {term})"),
                )
            })
        }
        Verb::Status => match status_output(&client).await {
            Ok(Some(out)) => Ok(out),
            Err(e) => Err(e),
            Ok(None) => {
                eprintln!(
                    "error: no node answered (asked {}); check the endpoints and that the \
                     nodes run [unavailable]",
                    client.seeds().join(", ")
                );
                return EXIT_NO_NODE_ANSWERS;
            }
        },
        Verb::Audit { players, currency } => {
            let accounts: Vec<Account> = players
                .iter()
                .map(|p| Account::new(*p, currency.clone()))
                .collect();
            match client.audit(&accounts).await {
                Ok(audit) => return audit_output(&audit, args.json),
                Err(e) => Err(e),
            }
        }
        verb => {
            let t = verb_tx(verb)
                .expect("run handles reads; every other verb has --tx")
                .to_tx();
            write(&client, verb, &t).await.inspect_err(|_| {
                // The one line on stderr says how to retry without a second apply.
                eprint!(
                    "retry with --tx {} --created-at-ns {}: ",
                    t.id, t.created_at_ns
                );
            })
        }
    };
    match result {
        Ok((value, text)) => {
            if args.json {
                println!("{value}");
            } else {
                println!("{text}");
            }
            0
        }
        Err(e) => fail(&e),
    }
}

/// `ctl journal export`: the file, and one summary line on stderr.
async fn journal_export(
    client: &Client,
    args: &CtlArgs,
    day: &str,
    out: Option<&std::path::Path>,
) -> i32 {
    let mut file: Box<dyn std::io::Write> = match out {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => Box::new(std::io::BufWriter::new(f)),
            Err(e) => {
                return fail(&Error::InvalidArgument {
                    message: format!("create {}: {e}", path.display()),
                });
            }
        },
        None => Box::new(std::io::stdout().lock()),
    };
    let endpoint = &args.endpoints[0];
    match crate::journal_export::export(client, endpoint, args.group, day, &mut file).await {
        Ok(done) => {
            let chain = done
                .chain
                .map(|(first, last)| format!("chain {first} .. {last}"))
                .unwrap_or_else(|| "no events that day".into());
            eprintln!(
                "exported {day}: {} entries, {} lines up to log index {}; {chain}",
                done.entries, done.lines, done.until_index
            );
            0
        }
        Err(e) => fail(&e),
    }
}

/// `ctl backup`: the files, one progress line per group on stderr, and a
/// summary on stdout.
async fn backup(client: &Client, args: &CtlArgs, to: &std::path::Path) -> i32 {
    let mut progress = |line: &str| eprintln!("backup: {line}");
    match crate::backup::take(client, to, &mut progress).await {
        Ok(m) => {
            let groups: Vec<serde_json::Value> = m
                .groups
                .iter()
                .map(|g| {
                    json!({
                        "group": g.id,
                        "file": g.file,
                        "bytes": g.bytes,
                        "sha256": g.sha256,
                        "applied_index": g.applied_index,
                        "applied_term": g.applied_term,
                    })
                })
                .collect();
            if args.json {
                println!("{}", json!({ "to": to, "groups": groups }));
            } else {
                println!(
                    "backed up {} groups into {} ({} bytes)",
                    m.groups.len(),
                    to.display(),
                    m.groups.iter().map(|g| g.bytes).sum::<u64>()
                );
            }
            0
        }
        Err(crate::backup::BackupError::Call(e)) => fail(&e),
        Err(crate::backup::BackupError::Local(message)) => {
            eprintln!("error: {message} [backup]");
            1
        }
    }
}

/// `ctl events`: one JSON line per entry.
async fn events(client: &Client, args: &CtlArgs, from: u64, until: Option<u64>) -> i32 {
    use std::io::Write;
    let from = geowallet_client::Resume {
        next_index: from,
        chain: None,
    };
    let mut stream = client.events(args.group, from, until);
    let mut stdout = std::io::stdout();
    while let Some(e) = stream.next().await {
        let e = match e {
            Ok(e) => e,
            Err(e) => return fail(&e),
        };
        let lines: Vec<serde_json::Value> = e
            .lines
            .iter()
            .map(|l| {
                json!({
                    "player": l.account.player,
                    "currency": l.account.currency,
                    "seq": l.line.seq,
                    "position": l.line.position,
                    "kind": l.line.kind,
                    "amount": l.line.amount,
                    "available": l.line.balance.available,
                    "held": l.line.balance.held,
                    "tx_id": l.line.tx_id,
                })
            })
            .collect();
        let row = json!({
            "group": e.group,
            "log_index": e.log_index,
            "time_ns": e.time_ns,
            "prev_chain": geowallet_ledger::hex(&e.prev_chain),
            "chain": geowallet_ledger::hex(&e.chain),
            "lines": lines,
        });
        if writeln!(stdout, "{row}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return 0;
        }
    }
    0
}

fn fail(e: &Error) -> i32 {
    eprintln!("error: {e} [{}]", e.code());
    match e {
        Error::InvalidArgument { .. } => 2,
        // Outcome unknown: it may have applied (too old to tell, or lost answer).
        Error::Indeterminate { .. }
        | Error::Unavailable { .. }
        | Error::TxIdExpired { .. }
        | Error::Moving { .. } => 3,
        _ => 1,
    }
}

fn verb_tx(verb: &Verb) -> Option<&TxArg> {
    match verb {
        Verb::Open { tx, .. }
        | Verb::Credit { tx, .. }
        | Verb::Debit { tx, .. }
        | Verb::Transfer { tx, .. }
        | Verb::Hold { tx, .. }
        | Verb::Capture { tx, .. }
        | Verb::Release { tx, .. }
        | Verb::Freeze { tx, .. }
        | Verb::Unfreeze { tx, .. } => Some(tx),
        Verb::Balance { .. }
        | Verb::Journal { .. }
        | Verb::Events { .. }
        | Verb::Audit { .. }
        | Verb::Status
        | Verb::Placement { .. }
        | Verb::Migrate { .. }
        | Verb::TransferLeader { .. }
        | Verb::Backup { .. } => None,
    }
}

async fn write(client: &Client, verb: &Verb, t: &Tx) -> Result<(serde_json::Value, String), Error> {
    let t = t.clone();
    let receipt = match verb {
        Verb::Open { w, .. } => client.open(&t, &account(w)).await?,
        Verb::Credit {
            w, amount, kind, ..
        } => {
            client
                .credit(&t, &account(w), *amount, credit_kind(*kind))
                .await?
        }
        Verb::Debit {
            w, amount, kind, ..
        } => {
            client
                .debit(&t, &account(w), *amount, debit_kind(*kind))
                .await?
        }
        Verb::Transfer {
            w,
            to_player,
            amount,
            ..
        } => {
            let to = Account::new(*to_player, w.currency.clone());
            client.transfer(&t, &account(w), &to, *amount).await?
        }
        Verb::Hold {
            w,
            hold,
            amount,
            expires_in_ms,
            ..
        } => {
            let expires = now_ns().saturating_add(expires_in_ms.saturating_mul(1_000_000));
            client.hold(&t, &account(w), hold, *amount, expires).await?
        }
        Verb::Capture {
            w,
            hold,
            amount,
            kind,
            ..
        } => {
            client
                .capture(&t, &account(w), hold, *amount, debit_kind(*kind))
                .await?
        }
        Verb::Release { w, hold, .. } => client.release(&t, &account(w), hold).await?,
        Verb::Freeze { w, .. } => client.freeze(&t, &account(w)).await?,
        Verb::Unfreeze { w, .. } => client.unfreeze(&t, &account(w)).await?,
        Verb::Balance { .. }
        | Verb::Journal { .. }
        | Verb::Events { .. }
        | Verb::Audit { .. }
        | Verb::Status
        | Verb::Placement { .. }
        | Verb::Migrate { .. }
        | Verb::TransferLeader { .. }
        | Verb::Backup { .. } => {
            unreachable!("reads are handled by run")
        }
    };
    Ok(receipt_output(&t, &receipt))
}

fn receipt_output(t: &Tx, r: &Receipt) -> (serde_json::Value, String) {
    let tx = &t.id;
    let mut value = json!({
        "tx": tx,
        "created_at_ns": t.created_at_ns,
        "log_index": r.log_index,
        "available": r.balance.available,
        "held": r.balance.held,
    });
    let mut text = format!(
        "ok tx={tx} (created_at_ns {}) at log index {}: available {} held {}",
        t.created_at_ns, r.log_index, r.balance.available, r.balance.held
    );
    if let Some(c) = r.counterpart {
        value["counterpart"] = json!({ "available": c.available, "held": c.held });
        text.push_str(&format!(
            "; receiver available {} held {}",
            c.available, c.held
        ));
    }
    (value, text)
}

fn balance_output(w: &Wallet, b: Balance) -> (serde_json::Value, String) {
    let value = json!({ "player": w.player, "currency": w.currency, "available": b.available, "held": b.held });
    (
        value,
        format!(
            "{}/{}: available {} held {}",
            w.player, w.currency, b.available, b.held
        ),
    )
}

/// Prints an audit; exit code 1 if the books do not balance.
fn audit_output(audit: &geowallet_client::Audit, as_json: bool) -> i32 {
    let unbalanced: Vec<&String> = audit
        .totals
        .iter()
        .filter(|(_, t)| t.players.wrapping_add(t.system) != 0)
        .map(|(c, _)| c)
        .collect();
    if as_json {
        let accounts: Vec<_> = audit
            .balances
            .iter()
            .map(|(a, b)| match b {
                Some(b) => json!({ "player": a.player, "currency": a.currency,
                    "available": b.available, "held": b.held }),
                None => json!({ "player": a.player, "currency": a.currency, "exists": false }),
            })
            .collect();
        let totals: serde_json::Map<String, serde_json::Value> = audit
            .totals
            .iter()
            .map(|(c, t)| {
                let v = json!({ "players": t.players.to_string(), "system": t.system.to_string(),
                    "transit": t.transit.to_string() });
                (c.clone(), v)
            })
            .collect();
        let value = json!({ "read_index": audit.read_index, "accounts": accounts,
            "totals": totals, "balanced": unbalanced.is_empty() });
        println!("{value}");
    } else {
        println!("audit at applied index {}", audit.read_index);
        for (a, b) in &audit.balances {
            match b {
                Some(b) => println!("{a}: available {} held {}", b.available, b.held),
                None => println!("{a}: no such account"),
            }
        }
        for (c, t) in &audit.totals {
            println!(
                "{c}: players hold {}, system accounts {} (in transit between groups {})",
                t.players, t.system, t.transit
            );
        }
    }
    if unbalanced.is_empty() {
        0
    } else {
        eprintln!(
            "the books do not balance in {unbalanced:?}: players + system != 0; stop writes and report this"
        );
        1
    }
}

fn journal_output(page: geowallet_client::JournalPage) -> (serde_json::Value, String) {
    let entries: Vec<_> = page
        .entries
        .iter()
        .map(|e| {
            json!({
                "seq": e.seq, "group": e.group, "log_index": e.log_index, "position": e.position,
                "tx": e.tx_id, "kind": e.kind, "amount": e.amount,
                "available": e.balance.available, "held": e.balance.held,
            })
        })
        .collect();
    let mut text: Vec<String> = page
        .entries
        .iter()
        .map(|e| {
            format!(
                "#{:<6} {:>8}.{:<3} {:<16} {:>12}  available {:>12} held {:>10}  tx {}",
                e.seq,
                e.log_index,
                e.position,
                e.kind,
                e.amount,
                e.balance.available,
                e.balance.held,
                e.tx_id
            )
        })
        .collect();
    let next_seq = match page.next {
        Some(JournalCursor::Seq(seq)) => Some(seq),
        _ => None,
    };
    let next = page.next_at.map(|(index, position)| {
        json!({ "from_seq": next_seq, "from_index": index, "from_position": position })
    });
    match page.next {
        Some(JournalCursor::Seq(seq)) => text.push(format!("more: --from-seq {seq}")),
        Some(JournalCursor::Position {
            log_index,
            position,
        }) => text.push(format!(
            "more: --from-index {log_index} --from-position {position}"
        )),
        None => {}
    }
    (json!({ "entries": entries, "next": next }), text.join("\n"))
}

/// Exit code of `ctl status` when no node answers.
pub const EXIT_NO_NODE_ANSWERS: i32 = 3;

/// Asks every seed, then every other node the answering nodes' topology
/// lists. `nodes` has one entry per node (the seeds' older fields kept);
/// `groups` has each group as its leader reports it (or, leaderless, the
/// answer with the highest term). `None` when no node answered.
/// `Ok(None)`: no node answered; `Err`: a node refused the caller.
async fn status_output(client: &Client) -> Result<Option<(serde_json::Value, String)>, Error> {
    let mut asked: Vec<String> = client.seeds().to_vec();
    let mut answers: Vec<(String, Result<geowallet_client::Status, Error>)> = Vec::new();
    let mut i = 0;
    while i < asked.len() {
        let endpoint = asked[i].clone();
        let answer = client.status_of(&endpoint).await;
        if let Ok(s) = &answer {
            for n in &s.nodes {
                if !asked.contains(&n.endpoint) {
                    asked.push(n.endpoint.clone());
                }
            }
        }
        answers.push((endpoint, answer));
        i += 1;
    }
    if answers.iter().all(|(_, a)| a.is_err()) {
        let denied = answers.into_iter().find_map(|(_, a)| {
            a.err()
                .filter(|e| matches!(e, Error::PermissionDenied { .. }))
        });
        return denied.map_or(Ok(None), Err);
    }
    let topology: BTreeMap<String, geowallet_client::NodeRef> = answers
        .iter()
        .filter_map(|(_, a)| a.as_ref().ok())
        .flat_map(|s| s.nodes.iter().cloned())
        .map(|n| (n.endpoint.clone(), n))
        .collect();
    let mut nodes = Vec::new();
    let mut lines = vec![format!(
        "{:<5} {:<21} {:<8} {:<3} {:<5}",
        "node", "endpoint", "region", "dc", "up"
    )];
    let mut groups: BTreeMap<u64, (bool, geowallet_client::GroupStatus)> = BTreeMap::new();
    let mut moves = geowallet_client::MoveStats::default();
    for (endpoint, answer) in &answers {
        let known = topology.get(endpoint);
        match answer {
            Ok(s) => {
                lines.push(format!(
                    "{:<5} {:<21} {:<8} {:<3} {:<5}",
                    s.node_id, endpoint, s.region, s.dc, "up"
                ));
                let offsets: serde_json::Map<String, serde_json::Value> = s
                    .clock_offsets_ns
                    .iter()
                    .map(|(id, off)| (id.to_string(), json!(off)))
                    .collect();
                nodes.push(json!({
                    "id": s.node_id, "region": s.region, "dc": s.dc, "up": true,
                    "endpoint": endpoint, "reachable": true, "node_id": s.node_id, "state": s.state, "term": s.term,
                    "leader_id": s.leader_id, "last_log_index": s.last_log_index, "committed_index": s.committed_index,
                    "applied_index": s.applied_index, "snapshot_index": s.snapshot_index,
                    "clock_refusing_writes": s.clock_refusing_writes, "clock_detail": s.clock_detail,
                    "clock_offsets_ns": offsets,
                }));
                if let (Some(m), Some(v)) = (&s.moves, nodes.last_mut()) {
                    v["moves"] = json!({
                        "started": m.started, "completed": m.completed, "returned": m.returned,
                        "interrupted": m.interrupted, "in_flight": m.in_flight,
                        "leave_ns": m.leave_ns, "arrive_ns": m.arrive_ns,
                        "repoint_ns": m.repoint_ns, "finish_ns": m.finish_ns,
                        "transfers_begun": m.transfers_begun,
                        "transfers_pending": m.transfers_pending,
                    });
                    moves.started += m.started;
                    moves.completed += m.completed;
                    moves.returned += m.returned;
                    moves.interrupted += m.interrupted;
                    moves.in_flight += m.in_flight;
                    moves.transfers_begun += m.transfers_begun;
                    moves.transfers_pending += m.transfers_pending;
                }
                for g in &s.groups {
                    let leads = g.state == "leader" && g.leader_id == s.node_id;
                    let better = match groups.get(&g.id) {
                        None => true,
                        Some((led, best)) => !led && (leads || g.term > best.term),
                    };
                    if better {
                        groups.insert(g.id, (leads, g.clone()));
                    }
                }
            }
            Err(e) => {
                let (id, region, dc) =
                    known.map_or((0, "", ""), |n| (n.id, n.region.as_str(), n.dc.as_str()));
                lines.push(format!(
                    "{:<5} {:<21} {:<8} {:<3} down ({e})",
                    id, endpoint, region, dc
                ));
                let mut v = json!({ "endpoint": endpoint, "reachable": false, "up": false, "error": e.to_string() });
                if let Some(n) = known {
                    v["id"] = json!(n.id);
                    v["region"] = json!(n.region);
                    v["dc"] = json!(n.dc);
                }
                nodes.push(v);
            }
        }
    }
    lines.push(String::new());
    lines.push(format!(
        "{:<6} {:<8} {:<7} {:<6} {:<10} {:<10} replicas (id region/dc matched, lag)",
        "group", "home", "leader", "term", "committed", "applied"
    ));
    let mut group_values = Vec::new();
    for (id, (led, g)) in &groups {
        let leader = if g.leader_id == 0 {
            "none".to_string()
        } else {
            g.leader_id.to_string()
        };
        let replicas: Vec<String> = g
            .replicas
            .iter()
            .map(|r| {
                let lag = if *led {
                    format!("{}", g.last_log_index.saturating_sub(r.matched_index))
                } else {
                    "?".into()
                };
                format!(
                    "{} {}/{} {} lag {lag}",
                    r.id, r.region, r.dc, r.matched_index
                )
            })
            .collect();
        lines.push(format!(
            "{:<6} {:<8} {:<7} {:<6} {:<10} {:<10} {}",
            id,
            g.home_region,
            leader,
            g.term,
            g.committed_index,
            g.applied_index,
            replicas.join(", ")
        ));
        if g.clock_refusing_writes {
            lines.push(format!("  refusing writes: {}", g.clock_detail));
        }
        if g.degraded {
            lines.push(format!(
                "  degraded: acknowledging without a datacenter of {} (policy {})",
                g.home_region, g.dual_dc
            ));
        }
        group_values.push(json!({
            "id": id, "home_region": g.home_region, "leader": g.leader_id, "term": g.term,
            "commit_index": g.committed_index, "applied_index": g.applied_index,
            "last_log_index": g.last_log_index, "reported_by_leader": led,
            "clock_refusing_writes": g.clock_refusing_writes,
            "degraded": g.degraded, "dual_dc": g.dual_dc,
            "replicas": g.replicas.iter().map(|r| json!({
                "id": r.id, "region": r.region, "dc": r.dc, "matched_index": r.matched_index,
            })).collect::<Vec<_>>(),
        }));
    }
    if moves.started + moves.interrupted > 0 {
        lines.push(String::new());
        lines.push(format!(
            "wallet moves driven by the nodes that answered: {} started, {} completed, \
             {} returned (refused by the target), {} interrupted (resumed later), {} in flight",
            moves.started, moves.completed, moves.returned, moves.interrupted, moves.in_flight
        ));
    }
    if moves.transfers_begun + moves.transfers_pending > 0 {
        lines.push(format!(
            "transfers between groups begun by the nodes that answered: {}; pending in the \
             groups they lead (money in transit): {}",
            moves.transfers_begun, moves.transfers_pending
        ));
    }
    Ok(Some((
        json!({ "nodes": nodes, "groups": group_values }),
        lines.join("\n"),
    )))
}
