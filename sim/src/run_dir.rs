//! Per-run directories on the real file system (histories, snapshot files).
//! Their names never come from the simulation's RNG: a name drawn from it
//! (as `tempfile` does) collides with a directory kept from an earlier run
//! of the same seed, draws again, and so shifts the whole run, and a replay
//! of a failing seed would then run something else.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static RUNS: AtomicU64 = AtomicU64::new(0);

/// A fresh directory, removed on drop unless [`RunDir::keep`] was called.
pub struct RunDir {
    path: PathBuf,
    keep: bool,
}

impl RunDir {
    /// `$TMPDIR/geowallet-sim-<what>-<seed>-<pid>-<n>`, emptied first.
    pub fn create(what: &str, seed: u64) -> std::io::Result<RunDir> {
        let n = RUNS.fetch_add(1, Ordering::Relaxed);
        let name = format!("geowallet-sim-{what}-{seed}-{}-{n}", std::process::id());
        let path = std::env::temp_dir().join(name);
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        std::fs::create_dir_all(&path)?;
        Ok(RunDir { path, keep: false })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Leaves the directory on disk (for a look after the run).
    pub fn keep(mut self) -> PathBuf {
        self.keep = true;
        self.path.clone()
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
