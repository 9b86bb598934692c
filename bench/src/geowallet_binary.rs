//! Finding the `geowallet` binary that `dev` runs: `--geowallet PATH`, else
//! next to this executable (the same cargo profile dir: `cargo build
//! --release` puts both in `target/release/`).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

const BINARY_NAME: &str = "geowallet";

pub fn locate(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        if !path.is_file() {
            bail!("--geowallet {}: no such file", path.display());
        }
        return Ok(path.to_path_buf());
    }
    let exe = std::env::current_exe().context("find this executable's path")?;
    let dir = exe.parent().context("this executable has no parent dir")?;
    let sibling = dir.join(BINARY_NAME);
    if sibling.is_file() {
        return Ok(sibling);
    }
    bail!(
        "no geowallet binary at {}: run `cargo build --release -p geowallet-node` first \
         (for a release bench; the bench looks next to itself), or pass --geowallet PATH",
        sibling.display()
    )
}
