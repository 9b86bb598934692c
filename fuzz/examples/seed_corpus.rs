//! Writes the seed corpora, `corpus/<target>/<seed>`, from the harnesses'
//! `seeds()`: small valid inputs built with the crates' own types, so the
//! fuzzer starts past the decoders' first refusals. Run it after changing a
//! wire or stored format (`cargo run --example seed_corpus` in `fuzz/`); it
//! replaces each target's corpus whole.

use std::path::Path;

use geowallet_fuzz::{apply, client_api, move_step, raft_message, snapshot};

type Seeds = fn() -> Vec<(String, Vec<u8>)>;
type Run = fn(&[u8]);

const TARGETS: [(&str, Seeds, Run); 5] = [
    ("apply", apply::seeds, apply::run),
    ("client_api", client_api::seeds, client_api::run),
    ("move_step", move_step::seeds, move_step::run),
    ("raft_message", raft_message::seeds, raft_message::run),
    ("snapshot", snapshot::seeds, snapshot::run),
];

fn main() -> std::io::Result<()> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (target, seeds, run) in TARGETS {
        let dir = corpus.join(target);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        let mut bytes = 0;
        for (name, input) in seeds() {
            // A seed must pass its target's checks.
            run(&input);
            bytes += input.len();
            std::fs::write(dir.join(name), input)?;
        }
        println!("{target}: {bytes} bytes");
    }
    Ok(())
}
