//! Backup and restore over real processes: `ctl backup` while the cluster
//! takes writes, a new cluster restored from it, and damaged backups
//! refused before anything is written.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use geowallet_client::{Account, Client, ClientConfig, CreditKind, DebitKind, Error, Resume, Tx};
use geowallet_node::local_cluster::{LocalCluster, Topology};

use crate::cluster::{start_topology, tuning};
use crate::ctl::ctl_at;

fn client(cluster: &LocalCluster, region: &str) -> Client {
    cluster
        .client(ClientConfig {
            region: region.into(),
            retry_budget: Duration::from_secs(20),
            ..Default::default()
        })
        .unwrap()
}

const START_BALANCE: u64 = 1_000_000;

/// Debits of 1 from `players` in turn until `stop`; each acknowledged tx
/// with the instant it was acknowledged.
async fn debit_until(
    c: Client,
    players: Vec<Account>,
    stop: Arc<AtomicBool>,
    tag: &'static str,
) -> Vec<(Tx, Account, Instant)> {
    let mut acked = Vec::new();
    for n in 0u64.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let account = &players[n as usize % players.len()];
        let tx = Tx::new(format!("{tag}-{n}"));
        match c.debit(&tx, account, 1, DebitKind::Bet).await {
            Ok(_) => acked.push((tx, account.clone(), Instant::now())),
            Err(Error::Indeterminate { .. } | Error::Unavailable { .. }) => {}
            Err(e) => panic!("debit {tag}-{n}: {e}"),
        }
    }
    acked
}

// Proves a backup taken with `ctl backup` while two regions take writes
// restores into a new cluster (new processes, ports, certificates) in
// which: every debit acknowledged before the backup began is there (sent
// again with the same tx it is answered as a duplicate and moves no
// money), both groups' books balance, the change stream's hash chain runs
// unbroken from the first event, and the new cluster takes new writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_every_acknowledged_write() {
    let (mut cluster, dir) = start_topology("geowallet-backup-", &Topology::geo(1));
    let mut players = Vec::new();
    for (region, first) in [("eu", 100u64), ("us", 200)] {
        let c = client(&cluster, region);
        let mut accounts = Vec::new();
        for p in first..first + 4 {
            let a = Account::new(p, "EUR");
            c.open(&Tx::new(format!("open-{p}")), &a).await.unwrap();
            c.credit(
                &Tx::new(format!("dep-{p}")),
                &a,
                START_BALANCE,
                CreditKind::Deposit,
            )
            .await
            .unwrap();
            accounts.push(a);
        }
        players.push((region, accounts));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = players
        .iter()
        .map(|(region, accounts)| {
            let tag = if *region == "eu" { "eu-bet" } else { "us-bet" };
            tokio::spawn(debit_until(
                client(&cluster, region),
                accounts.clone(),
                stop.clone(),
                tag,
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let backup = dir.path().join("backup");
    let eps = cluster.endpoints().join(",");
    let tls = cluster.dir.join("tls");
    let began = Instant::now();
    let (code, out, err) = tokio::task::spawn_blocking({
        let (eps, tls, backup) = (eps.clone(), tls.clone(), backup.clone());
        move || {
            ctl_at(
                &eps,
                Some(&tls),
                &["--json", "backup", "--to", backup.to_str().unwrap()],
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "ctl backup: {out}{err}");
    // Writes go on after the backup, then stop.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    let before: Vec<_> = acked.iter().filter(|(_, _, at)| *at < began).collect();
    assert!(
        before.len() > 20 && acked.len() > before.len(),
        "writes before and after the backup: {} of {}",
        before.len(),
        acked.len()
    );

    let summary: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    let groups: Vec<u64> = summary["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group"].as_u64().unwrap())
        .collect();
    assert_eq!(
        groups,
        vec![0, 1, 2],
        "the directory and both shard groups: {out}"
    );
    for g in summary["groups"].as_array().unwrap() {
        assert!(g["applied_index"].as_u64().unwrap() > 0, "{out}");
        assert_eq!(g["sha256"].as_str().unwrap().len(), 64, "{out}");
    }
    assert!(
        err.contains("backup: group 1:"),
        "progress per group: {err}"
    );
    let manifest = geowallet_node::backup::verify(&backup).expect("the backup checks out");
    assert_eq!(manifest.nodes.len(), 5);
    cluster.stop_all();

    let new_dir = dir.path().join("restored");
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_geowallet"));
    let mut restored = geowallet_node::backup::restore_local(
        binary,
        &backup,
        &new_dir,
        tuning(100_000),
        &mut |_| {},
    )
    .expect("restore");
    for id in 1..=5 {
        restored.spawn(id).unwrap();
    }
    let eu = client(&restored, "eu");
    // Every debit acknowledged before the backup began is in the restored
    // books: sent again with its tx, it is a duplicate and moves nothing.
    let mut balances_before = Vec::new();
    for (_, accounts) in &players {
        for a in accounts {
            balances_before.push(eu.balance(a).await.unwrap().available);
        }
    }
    for (tx, account, _) in &before {
        eu.debit(tx, account, 1, DebitKind::Bet)
            .await
            .unwrap_or_else(|e| panic!("resend {}: {e}", tx.id));
    }
    let mut i = 0;
    for (_, accounts) in &players {
        for a in accounts {
            let now = eu.balance(a).await.unwrap().available;
            assert_eq!(
                now, balances_before[i],
                "player {}: a debit acknowledged before the backup was missing from it",
                a.player
            );
            let debits = before.iter().filter(|(_, b, _)| b == a).count() as u64;
            assert!(
                now <= START_BALANCE - debits,
                "player {}: {now} left after {debits} debits",
                a.player
            );
            i += 1;
        }
    }
    // Both groups' books balance.
    for group in [1, 2] {
        let c = restored
            .client(ClientConfig {
                group,
                retry_budget: Duration::from_secs(20),
                ..Default::default()
            })
            .unwrap();
        let audit = c.audit(&[]).await.unwrap();
        let t = audit.totals["EUR"];
        assert_eq!(t.players + t.system, 0, "group {group}'s books: {t:?}");
        // The events' chain runs unbroken from the first event to the backup.
        let until = manifest
            .groups
            .iter()
            .find(|g| g.id == group)
            .unwrap()
            .applied_index;
        let mut events = c.events(group, Resume::START, Some(until));
        let mut seen = 0;
        while let Some(e) = events.next().await {
            e.unwrap_or_else(|e| panic!("group {group}'s events: {e}"));
            seen += 1;
        }
        assert!(seen > 0, "group {group} has events");
    }
    // The restored cluster takes new writes.
    let us = client(&restored, "us");
    let a = &players[1].1[0];
    us.debit(&Tx::new("after-restore"), a, 5, DebitKind::Bet)
        .await
        .unwrap();
    restored.stop_all();
}

fn restore_cli(from: &std::path::Path, dir: &std::path::Path) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_geowallet"))
        .args(["restore", "--no-start", "--from"])
        .arg(from)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

// Proves `geowallet restore` refuses a backup with one flipped bit (caught
// by the manifest's SHA-256) and one whose manifest was made to match the
// damage (caught by the file's own frame checksums), writing nothing; the
// undamaged backup restores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_with_a_flipped_bit_is_refused_on_restore() {
    let (mut cluster, dir) = start_topology("geowallet-backup-bit-", &Topology::single_region(3));
    let c = client(&cluster, "");
    for p in 1..=20 {
        let a = Account::new(p, "EUR");
        c.open(&Tx::new(format!("o{p}")), &a).await.unwrap();
        c.credit(&Tx::new(format!("d{p}")), &a, 1000, CreditKind::Deposit)
            .await
            .unwrap();
    }
    let backup = dir.path().join("backup");
    let eps = cluster.endpoints().join(",");
    let tls = cluster.dir.join("tls");
    let (code, out, err) = ctl_at(
        &eps,
        Some(&tls),
        &["--role", "ops", "backup", "--to", backup.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("backed up 1 groups"), "{out}");
    // A second backup into the same directory is refused.
    let (code, _, err) = ctl_at(
        &eps,
        Some(&tls),
        &["backup", "--to", backup.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("already holds a backup"), "{err}");
    cluster.stop_all();

    let file = backup.join("group-1.snap");
    let good = std::fs::read(&file).unwrap();
    let mut bad = good.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0x10;
    std::fs::write(&file, &bad).unwrap();
    let target = dir.path().join("r1");
    let (code, out, err) = restore_cli(&backup, &target);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("group-1.snap") && err.contains("SHA-256"),
        "names the file and the check: {err}"
    );
    assert!(!target.exists(), "nothing written from a damaged backup");

    // The manifest made to match the damage: the frames' crc32 still catch it.
    let manifest_path = backup.join("manifest.json");
    let original = std::fs::read_to_string(&manifest_path).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&original).unwrap();
    use sha2::Digest;
    let sha: String = sha2::Sha256::digest(&bad)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    m["groups"][0]["sha256"] = serde_json::Value::String(sha);
    std::fs::write(&manifest_path, m.to_string()).unwrap();
    let (code, out, err) = restore_cli(&backup, &target);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("does not check out"), "{err}");
    assert!(!target.exists(), "nothing written from a damaged backup");

    std::fs::write(&file, &good).unwrap();
    std::fs::write(&manifest_path, original).unwrap();
    let (code, out, err) = restore_cli(&backup, &target);
    assert_eq!(code, 0, "{out}{err}");
    assert!(target.join("cluster.json").exists(), "{out}");
    assert!(err.contains("group 1 restored at log index"), "{err}");
}
