#!/usr/bin/env bash
# jepsen-tests: builds the release geowallet and geowallet-jepsen binaries
# and runs one Jepsen-style run (needs root: network namespaces, iptables).
# Arguments go to geowallet-jepsen, e.g.
#   ./scripts/jepsen.sh --nemesis kill,partition,pause,clock --time-limit-s 120 --seed 7
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release -p geowallet-node -p geowallet-jepsen
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/geowallet-jepsen" --geowallet "$target/release/geowallet" "$@"
