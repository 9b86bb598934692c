//! Golden files: the exact bytes a stored format has today, committed under
//! `tests/golden/`, so that a change of encoding (ours, or a dependency's:
//! serde, postcard, openraft) fails a test instead of silently leaving the
//! data already on disk unreadable or misread.
//!
//! A file holds one case a line, `name hex...` (one hex field per part of
//! the case, e.g. key and value); `#` starts a comment line. A test checks
//! every case it builds against the file and decodes the committed bytes
//! back. On any difference it writes what it encodes today to
//! `CARGO_TARGET_TMPDIR/golden/`, for review. Never regenerate the file to
//! make the test pass: data in the old format is still on disk somewhere.
//! The ledger, storage and raft test binaries use it.

use std::collections::BTreeMap;
use std::fmt::{Debug, Write as _};
use std::path::{Path, PathBuf};

/// One golden file: the committed cases, and the cases a test checked.
pub struct GoldenFile {
    name: &'static str,
    /// Where today's encoding goes for review when a case differs.
    review_dir: PathBuf,
    header: String,
    committed: BTreeMap<String, Vec<Vec<u8>>>,
    checked: Vec<(String, Vec<Vec<u8>>)>,
    failures: Vec<String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(field: &str) -> Vec<u8> {
    assert!(field.len().is_multiple_of(2), "odd hex field {field:?}");
    (0..field.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&field[i..i + 2], 16).expect("a hex byte"))
        .collect()
}

impl GoldenFile {
    /// Reads `{dir}/{name}` (absent = empty); a failure writes today's
    /// encoding under `review_dir` (a test's `CARGO_TARGET_TMPDIR`).
    pub fn open(dir: &Path, name: &'static str, review_dir: PathBuf) -> GoldenFile {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut header = String::new();
        let mut committed = BTreeMap::new();
        for line in text.lines() {
            if line.starts_with('#') || line.is_empty() {
                if committed.is_empty() {
                    header.push_str(line);
                    header.push('\n');
                }
                continue;
            }
            let mut fields = line.split_whitespace();
            let case = fields.next().expect("a case name").to_string();
            let parts = fields.map(unhex).collect();
            assert!(
                committed.insert(case, parts).is_none(),
                "{name}: case twice"
            );
        }
        GoldenFile {
            name,
            review_dir,
            header,
            committed,
            checked: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// Checks case `case`, encoded today as `parts`, against the committed
    /// bytes; returns those (to decode) if the file has the case.
    pub fn check(&mut self, case: &str, parts: &[&[u8]]) -> Option<Vec<Vec<u8>>> {
        assert!(!case.contains(char::is_whitespace), "case {case:?}");
        let today: Vec<Vec<u8>> = parts.iter().map(|p| p.to_vec()).collect();
        let committed = self.committed.get(case).cloned();
        match &committed {
            None => self.fail(case, "not in the golden file".into()),
            Some(c) if *c != today => {
                let show = |ps: &[Vec<u8>]| ps.iter().map(|p| hex(p)).collect::<Vec<_>>().join(" ");
                let why = format!("committed {}\n    today     {}", show(c), show(&today));
                self.fail(case, why);
            }
            Some(_) => {}
        }
        self.checked.push((case.to_string(), today));
        committed
    }

    /// Checks `value`'s encoding as case `case`, and that the committed
    /// bytes decode to `value`.
    #[allow(dead_code)] // This file is the same in every crate; not all decode values.
    pub fn check_value<T: PartialEq + Debug>(
        &mut self,
        case: &str,
        value: &T,
        encode: impl Fn(&T) -> Vec<u8>,
        decode: impl Fn(&[u8]) -> Result<T, String>,
    ) {
        let Some(committed) = self.check(case, &[&encode(value)]) else {
            return;
        };
        match decode(&committed[0]) {
            Ok(decoded) if decoded == *value => {}
            Ok(decoded) => self.fail(case, format!("decodes to {decoded:?}")),
            Err(e) => self.fail(case, format!("does not decode: {e}")),
        }
    }

    /// Records that the committed bytes of `case` did not read back right.
    pub fn fail(&mut self, case: &str, why: String) {
        self.failures.push(format!("  {case}: {why}"));
    }

    /// Panics with every difference (and committed cases no test checked
    /// any more), after writing today's encoding for review.
    pub fn finish(mut self) {
        let checked: Vec<&String> = self.checked.iter().map(|(c, _)| c).collect();
        let stale: Vec<String> = self
            .committed
            .keys()
            .filter(|c| !checked.contains(c))
            .cloned()
            .collect();
        for case in stale {
            self.fail(&case, "committed, but no test checks it any more".into());
        }
        if self.failures.is_empty() {
            return;
        }
        let mut today = self.header.clone();
        for (case, parts) in &self.checked {
            let fields: Vec<String> = parts.iter().map(|p| hex(p)).collect();
            let _ = writeln!(today, "{case} {}", fields.join(" "));
        }
        let out = self.review_dir.clone();
        std::fs::create_dir_all(&out).expect("create the golden output dir");
        let written = out.join(self.name);
        std::fs::write(&written, today).expect("write today's encoding");
        panic!(
            "the on-disk format changed (tests/golden/{} no longer holds):\n{}\n\
             If intended, add a migration for the data already stored and update \
             the golden bytes (today's encoding, to review and copy over: {}); if \
             not, find what changed it (our types, or a dependency: serde, postcard, \
             openraft).",
            self.name,
            self.failures.join("\n"),
            written.display()
        );
    }
}
