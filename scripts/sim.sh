#!/usr/bin/env bash
# Deterministic simulation sweep: every scenario of sim/tests/scenarios.rs,
# SEEDS seeds per madsim scenario (default 40: 6 x 40, plus the broken-disk
# test's own 20 and the determinism test's 4 runs = 264 seeded runs), under madsim in its
# own target dir (RUSTFLAGS changes rebuild everything; RocksDB stays out).
# Replay one seed: MADSIM_TEST_SEED=<seed> ./scripts/sim.sh <test name>
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export RUSTFLAGS="--cfg madsim"
export CARGO_TARGET_DIR="${SIM_TARGET_DIR:-target/sim}"
if [ -z "${MADSIM_TEST_SEED:-}" ]; then
  export MADSIM_TEST_NUM="${SEEDS:-40}"
  # SEED_BASE=S runs seeds S, S+1, ...: CI pins it so its verdict replays;
  # without it madsim starts from the clock (new seeds on every sweep).
  if [ -n "${SEED_BASE:-}" ]; then
    export MADSIM_TEST_SEED="$SEED_BASE"
  fi
fi
started=$(date +%s)
# SIM_RELEASE=1: an optimized build (about 20x faster per seed; long sweeps).
profile=()
if [ -n "${SIM_RELEASE:-}" ]; then
  profile=(--release)
fi
cargo test "${profile[@]}" -p geowallet-sim --test scenarios -- "$@"
echo "sim: ${MADSIM_TEST_NUM:-1} seeds per scenario in $(( $(date +%s) - started )) s (including build)"
