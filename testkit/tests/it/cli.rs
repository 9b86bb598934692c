use std::process::Command;

use crate::testdata_dir;

fn run_check(format: &str, file: &str) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_geowallet-testkit"))
        .args(["check", "--format", format])
        .arg(testdata_dir().join(file))
        .output()
        .expect("run geowallet-testkit");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code().expect("exit code"), stdout)
}

// Proves the CLI exits 0 on a linearizable file and 1 with the offending op on a bad one.
#[test]
fn cli_exit_codes_follow_the_verdict() {
    let (code, stdout) = run_check("knossos-edn", "knossos/cas-register/good/memstress3-0.edn");
    assert_eq!((code, stdout.trim()), (0, "linearizable"));
    let (code, stdout) = run_check("porcupine-etcd", "porcupine/jepsen/etcd_000.log");
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.starts_with("not linearizable: process "), "{stdout}");
}

// Proves an unreadable file is exit code 2 with a message, not a panic.
#[test]
fn cli_missing_file_exits_2() {
    let (code, _) = run_check("geowallet", "does/not/exist.jsonl");
    assert_eq!(code, 2);
}

// Proves the CLI checks a geowallet history and exports it as EDN.
#[test]
fn cli_checks_and_exports_geowallet_history() {
    let path = std::env::temp_dir().join(format!("geowallet-cli-{}.jsonl", std::process::id()));
    let lines = [
        r#"{"process":1,"type":"invoke","f":"credit","account":"1/EUR","value":{"amount":5,"tx":"a"},"time_ns":1}"#,
        r#"{"process":1,"type":"ok","f":"credit","account":"1/EUR","value":{"balance":{"available":5,"held":0}},"time_ns":2}"#,
        r#"{"process":2,"type":"invoke","f":"read","account":"1/EUR","value":{},"time_ns":3}"#,
        r#"{"process":2,"type":"ok","f":"read","account":"1/EUR","value":{"balance":{"available":0,"held":0}},"time_ns":4}"#,
    ];
    std::fs::write(&path, lines[..2].join("\n")).expect("write history");
    let binary = env!("CARGO_BIN_EXE_geowallet-testkit");
    let run = |args: &[&str]| {
        Command::new(binary)
            .args(args)
            .arg(&path)
            .output()
            .expect("run")
    };
    assert_eq!(
        run(&["check", "--format", "geowallet"]).status.code(),
        Some(0)
    );
    let export = run(&["export-edn"]);
    let edn = String::from_utf8_lossy(&export.stdout);
    assert!(
        edn.starts_with("{:type :invoke, :f :credit, :value {:amount 5"),
        "{edn}"
    );
    std::fs::write(&path, lines.join("\n")).expect("write history");
    let stale = run(&["check", "--format", "geowallet"]);
    assert_eq!(stale.status.code(), Some(1), "stale read must be reported");
    std::fs::remove_file(&path).expect("remove temp history");
}
