#!/usr/bin/env bash
# Bounded fuzzing: every cargo-fuzz target of fuzz/ for FUZZ_SECONDS seconds
# (default 20) each, starting from the seed corpora in fuzz/corpus/<target>/.
# Those are only read: what the fuzzer finds goes to a scratch dir, so a run
# leaves the repository as it was. Installs nothing (scripts/setup.sh
# installs cargo-fuzz and the nightly toolchain). Exits non-zero when any
# target crashes; the input is then in fuzz/artifacts/<target>/, replayed by
#   cargo +nightly fuzz run -s none <target> fuzz/artifacts/<target>/<file>
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-20}"
# A fixed seed (FUZZ_SEED, default 1): CI's search is the same on every run,
# so a failure there replays; FUZZ_SEED=0 lets libFuzzer pick one (longer
# exploratory runs).
seed="${FUZZ_SEED:-1}"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: cargo +nightly fuzz is not available (scripts/setup.sh installs it)" >&2
  exit 2
fi
# The fuzz build has flags of its own: never the main target dir, and
# outside the repository when the machine keeps caches.
target_dir="fuzz/target"
if [ -d "$HOME/.cache" ]; then
  target_dir="$HOME/.cache/geowallet-fuzz-target"
fi
# No sanitizer: the code is safe Rust, and what the targets look for are
# panics (assertions, overflow checks); AddressSanitizer would halve the
# executions per second for nothing.
build=(--sanitizer none --target-dir "$target_dir")
started=$(date +%s)
cargo +nightly fuzz build "${build[@]}"
scratch=$(mktemp -d)
# The files the snapshot target receives: in memory when the machine can.
files=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'rm -rf "$scratch" "$files"' EXIT
export GEOWALLET_FUZZ_SCRATCH="$files"
failed=()
for target in $(cargo +nightly fuzz list); do
  mkdir "$scratch/$target"
  log="$scratch/$target.log"
  # -timeout: an input running 10 s is a hang, reported like a crash.
  if cargo +nightly fuzz run "${build[@]}" "$target" "$scratch/$target" "fuzz/corpus/$target" \
    -- -max_total_time="$seconds" -seed="$seed" -timeout=10 >"$log" 2>&1; then
    echo "fuzz: $target: $(grep -E '^Done [0-9]+ runs' "$log" | tail -n 1)"
  else
    echo "fuzz: $target FAILED:" >&2
    grep -E -A2 'panicked at|==ERROR|Test unit written' "$log" >&2 || tail -n 40 "$log" >&2
    failed+=("$target")
  fi
done
elapsed=$(( $(date +%s) - started ))
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashed: ${failed[*]} (inputs in fuzz/artifacts/; ${elapsed} s)" >&2
  exit 1
fi
echo "fuzz: every target ran ${seconds} s without a crash (${elapsed} s including build)"
