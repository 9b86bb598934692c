#!/usr/bin/env bash
# Lays out the RustSec advisory database where cargo-deny reads it offline
# (deny.toml's db-path), from a snapshot on disk: CI reaches crates.io but
# not the database's git host, so `cargo deny` cannot fetch it.
#
# The snapshot is a directory holding the database's `crates/` tree as
# upstream has it, its LICENSE.txt (CC0-1.0; advisories imported from GitHub
# are CC-BY-4.0 and say so in their front matter), and a file COMMIT with
# one line: the upstream commit and its date, as
# `git log -1 --format='%H %cI'` prints them. It is read from
# $GEOWALLET_ADVISORY_DB, else from shared/testdata/rustsec-advisory-db
# beside the clone. Prints the snapshot's commit and age, warns when it is
# older than 90 days; exits 3 when there is no snapshot.
set -euo pipefail
cd "$(dirname "$0")/.."
src=${GEOWALLET_ADVISORY_DB:-../shared/testdata/rustsec-advisory-db}
# cargo-deny keeps the default database (https://github.com/RustSec/advisory-db)
# in db-path under `advisory-db-<xxhash64 of that URL>`.
db="$HOME/.cache/geowallet-advisory-dbs/advisory-db-3157b0e258782691"
age_days_max=90

if [ ! -f "$src/COMMIT" ] || [ ! -d "$src/crates" ]; then
  echo "advisory-db: no snapshot at $src (crates/ and COMMIT)" >&2
  exit 3
fi
read -r commit date < "$src/COMMIT"
rm -rf "$db"
mkdir -p "$db"
cp -R "$src/crates" "$db/crates"
# cargo-deny opens the database as a git repository (it reads HEAD's date).
git -C "$db" -c init.defaultBranch=main init -q
git -C "$db" add crates
GIT_COMMITTER_DATE="$date" git -C "$db" -c user.name=advisory-db -c user.email=advisory-db@localhost \
  commit -q --date "$date" -m "RustSec advisory-db $commit"
age_days=$(( ($(date +%s) - $(date -d "$date" +%s)) / 86400 ))
echo "advisory-db: snapshot of $commit ($date), $age_days days old"
if [ "$age_days" -gt "$age_days_max" ]; then
  echo "advisory-db: WARNING: older than $age_days_max days; advisories published since are not checked" >&2
fi
