use std::time::{Duration, Instant};

use geowallet_testkit::{CheckConfig, HistoryFormat};

use crate::testdata_dir;

/// Every file listed in `expected.tsv` of `family`, checked against its verdict.
fn check_family(family: &str) -> (usize, usize, Duration, String) {
    let dir = testdata_dir().join(family);
    let listing = std::fs::read_to_string(dir.join("expected.tsv"))
        .unwrap_or_else(|error| panic!("read {}/expected.tsv: {error}", dir.display()));
    let config = CheckConfig::default();
    let (mut checked, mut mismatches) = (0, Vec::new());
    let (mut slowest, mut slowest_file) = (Duration::ZERO, String::new());
    for row in listing.lines().filter(|row| !row.trim().is_empty()) {
        let (file, expected) = row.split_once('\t').expect("path<TAB>verdict");
        let expected: bool = expected.trim().parse().expect("true or false");
        let format = if file.starts_with("jepsen/") {
            HistoryFormat::PorcupineEtcd
        } else if file.starts_with("kv/") {
            HistoryFormat::PorcupineKv
        } else {
            HistoryFormat::KnossosEdn
        };
        let started = Instant::now();
        let report = format
            .check_file(&dir.join(file), &config)
            .expect("parse history");
        let elapsed = started.elapsed();
        if elapsed > slowest {
            (slowest, slowest_file) = (elapsed, file.to_string());
        }
        checked += 1;
        if report.verdict.decided() != Some(expected) {
            mismatches.push(format!(
                "{file}: expected {expected}, got {}",
                report.verdict
            ));
        }
    }
    assert!(mismatches.is_empty(), "{family}: {mismatches:#?}");
    let linearizable = listing.lines().filter(|row| row.ends_with("true")).count();
    (checked, linearizable, slowest, slowest_file)
}

// Proves every porcupine and Knossos reference history gets its known verdict, quickly.
#[test]
fn every_reference_history_matches_its_verdict() {
    let mut total = 0;
    for family in ["porcupine", "knossos"] {
        let (checked, linearizable, slowest, file) = check_family(family);
        println!(
            "{family}: {checked} histories, {linearizable} linearizable, {} not, all verdicts \
             matched; slowest {file} {:.1} ms",
            checked - linearizable,
            slowest.as_secs_f64() * 1e3
        );
        total += checked;
    }
    assert_eq!(total, 108 + 120, "expected.tsv row counts changed");
}

// Proves the empty etcd log (not in expected.tsv) is trivially linearizable.
#[test]
fn empty_etcd_log_is_linearizable() {
    let path = testdata_dir().join("porcupine/jepsen/etcd_095.log");
    let report = HistoryFormat::PorcupineEtcd
        .check_file(&path, &CheckConfig::default())
        .expect("parse empty log");
    assert_eq!(report.verdict.decided(), Some(true));
}

// Proves a tiny step budget yields `unknown` instead of a wrong verdict or a hang.
#[test]
fn exhausted_budget_reports_unknown() {
    let path = testdata_dir().join("porcupine/jepsen/etcd_002.log");
    let config = CheckConfig {
        steps_max_per_partition: 10,
    };
    let report = HistoryFormat::PorcupineEtcd
        .check_file(&path, &config)
        .expect("parse");
    assert_eq!(report.verdict.decided(), None, "{}", report.verdict);
}
