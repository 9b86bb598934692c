#!/usr/bin/env bash
# README's first command: a local 3-node cluster (pass --demo for the demo).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec cargo run --release -p geowallet-node --bin geowallet -- dev "$@"
