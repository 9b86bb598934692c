#!/usr/bin/env bash
# geowallet against its peers on one workload, one after the other on this
# machine: geowallet-bench (its own 3-node cluster, fsync on), then etcd
# (3 members) and PostgreSQL (1 node, synchronous commit) driven by
# ../shared/peers' loadgen exactly as its run_matrix.sh does (start wiped,
# preload, restart, measured run with --no-preload, stop and wipe). Prints
# the RESULT lines and a small table. For humans: it needs etcd and
# PostgreSQL installed (see ../shared/peers/README.md); CI never runs it.
#
#   ./scripts/compare.sh
#   WORKLOAD=transfer CLIENTS=256 DURATION_S=20 WALLETS=10000 ./scripts/compare.sh
#   SYSTEMS="geowallet postgres" ./scripts/compare.sh
#
# Env: WORKLOAD (wallet|transfer, the two loadgen knows; default wallet),
# CLIENTS (64), DURATION_S (20), WALLETS (10000), SYSTEMS ("geowallet etcd
# postgres"), PEERS (../shared/peers), OUTDIR (a new temp dir: full output
# of every run), LOADGEN_TARGET_DIR (where loadgen is built when
# PEERS/loadgen/target has none; default ~/.cache/peers-loadgen-target).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

WORKLOAD=${WORKLOAD:-wallet}
CLIENTS=${CLIENTS:-64}
DURATION_S=${DURATION_S:-20}
WALLETS=${WALLETS:-10000}
SYSTEMS=${SYSTEMS:-"geowallet etcd postgres"}
PEERS=${PEERS:-$ROOT/../shared/peers}
OUTDIR=${OUTDIR:-$(mktemp -d -t geowallet-compare-XXXXXX)}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

die() { echo "compare.sh: $*" >&2; exit 1; }

case $WORKLOAD in
  wallet | transfer) ;;
  *) die "WORKLOAD=$WORKLOAD: loadgen knows only wallet and transfer" ;;
esac
mkdir -p "$OUTDIR"

needs_peers() {
  [[ -d $PEERS && -x $PEERS/run_matrix.sh ]] ||
    die "no peer baselines at $PEERS (expected ../shared/peers beside this repo, with etcd/, postgres/, loadgen/); set PEERS=DIR or SYSTEMS=geowallet"
}

loadgen_binary() {
  if [[ -x $PEERS/loadgen/target/release/loadgen ]]; then
    echo "$PEERS/loadgen/target/release/loadgen"
    return
  fi
  local dir=${LOADGEN_TARGET_DIR:-$HOME/.cache/peers-loadgen-target}
  echo "compare.sh: building loadgen into $dir (a few minutes the first time)" >&2
  cargo build --release --locked --manifest-path "$PEERS/loadgen/Cargo.toml" --target-dir "$dir" >&2 ||
    die "cannot build $PEERS/loadgen (it needs protoc: apt-get install protobuf-compiler)"
  echo "$dir/release/loadgen"
}

run_geowallet() {
  cargo build --release -p geowallet-bench -p geowallet-node
  "$TARGET/release/geowallet-bench" --workload "$WORKLOAD" --clients "$CLIENTS" \
    --duration-s "$DURATION_S" --wallets "$WALLETS" --dir "$OUTDIR/geowallet-run"
}

# $1 = etcd | postgres. Mirrors run_matrix.sh: start wiped, preload, restart on
# the same data (etcd 3.4 is slow after a bulk load until restarted), measure.
run_peer() {
  local sys=$1 loadgen pids
  loadgen=$(loadgen_binary)
  case $sys in
    etcd) command -v etcd >/dev/null || die "etcd is not installed (apt-get install etcd-server etcd-client)" ;;
    postgres) [[ -x /usr/lib/postgresql/15/bin/pg_ctl ]] || die "PostgreSQL 15 is not installed (apt-get install postgresql)" ;;
  esac
  STOP_PEER=$sys
  (cd "$PEERS" && "./$sys/start.sh" >/dev/null)
  "$loadgen" --system "$sys" --accounts "$WALLETS" --preload-only | grep '^preload'
  (cd "$PEERS" && WIPE=0 "./$sys/stop.sh" >/dev/null && KEEP=1 "./$sys/start.sh" >/dev/null)
  case $sys in
    etcd) pids=$(cat /tmp/peers-etcd/m1.pid /tmp/peers-etcd/m2.pid /tmp/peers-etcd/m3.pid | paste -sd,) ;;
    postgres) pids=$(head -1 /tmp/peers-pg/data/postmaster.pid) ;;
  esac
  "$loadgen" --system "$sys" --workload "$WORKLOAD" --accounts "$WALLETS" --clients "$CLIENTS" \
    --duration "$DURATION_S" --no-preload --server-pids "$pids"
  stop_peer
}

STOP_PEER=""
stop_peer() {
  if [[ -n $STOP_PEER ]]; then
    (cd "$PEERS" && WIPE=1 "./$STOP_PEER/stop.sh" >/dev/null) || true
    STOP_PEER=""
  fi
}
trap stop_peer EXIT
trap 'stop_peer; exit 130' INT TERM

for sys in $SYSTEMS; do
  case $sys in
    geowallet) ;;
    etcd | postgres) needs_peers ;;
    *) die "unknown system $sys (geowallet, etcd, postgres)" ;;
  esac
done

for sys in $SYSTEMS; do
  out=$OUTDIR/$sys.txt
  echo "=== $sys $WORKLOAD clients=$CLIENTS wallets=$WALLETS duration=${DURATION_S}s -> $out"
  case $sys in
    # Process substitution, not a pipe: run_peer must run in this shell so
    # the EXIT trap sees which peer to stop.
    geowallet) run_geowallet > >(tee "$out") 2>&1 ;;
    *) run_peer "$sys" > >(tee "$out") 2>&1 ;;
  esac
  wait # for tee to flush
  grep -q '^RESULT ' "$out" || die "$sys printed no RESULT line; see $out"
done

echo
echo "RESULT lines ($OUTDIR):"
grep -h '^RESULT ' "$OUTDIR"/*.txt
echo
{
  echo "system workload clients ops_per_s p50_us p90_us p99_us p999_us max_us errors invariant"
  for sys in $SYSTEMS; do
    grep -h '^RESULT ' "$OUTDIR/$sys.txt" | awk '{
      for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      print f["system"], f["workload"], f["clients"], f["ops_per_s"], f["p50_us"], f["p90_us"],
            f["p99_us"], f["p999_us"], f["max_us"], f["errors"], f["invariant"]
    }'
  done
} | if command -v column >/dev/null; then column -t; else cat; fi
