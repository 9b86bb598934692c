#!/usr/bin/env bash
# README's second command: every test of the workspace, in release mode
# (one RocksDB build serves the tests, the dev cluster and geowallet-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
profile=default
[ "${CI:-}" = "true" ] && profile=ci
cargo nextest run --release --workspace --profile "$profile" "$@"
