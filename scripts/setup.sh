#!/usr/bin/env bash
# Installs what building and testing geowallet needs on Debian beyond the
# Rust toolchain: protoc (gRPC code generation), libclang (RocksDB bindings),
# libfaketime (the clock-skew test and jepsen-tests' clock nemesis run nodes
# under it), iproute2, iptables, e2fsprogs and procps (jepsen-tests'
# namespaced network, partitions, disks and its tests' process checks),
# cargo-nextest, cargo-deny and cargo-machete (CI's supply-chain and
# unused-dependency checks), and cargo-fuzz with the nightly toolchain it
# builds with (CI's bounded fuzz run, scripts/fuzz.sh), and python3 with a
# virtualenv of grpcio and grpcio-reflection (the generic-client test).
# Does nothing when they are already there.
set -euo pipefail
need_apt=()
command -v protoc >/dev/null 2>&1 || need_apt+=(protobuf-compiler)
dpkg -s libclang-dev >/dev/null 2>&1 || need_apt+=(libclang-dev)
dpkg -s faketime >/dev/null 2>&1 || need_apt+=(faketime)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v iptables >/dev/null 2>&1 || need_apt+=(iptables)
command -v mkfs.ext4 >/dev/null 2>&1 || need_apt+=(e2fsprogs)
command -v pgrep >/dev/null 2>&1 || need_apt+=(procps)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c "import venv, ensurepip" >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest"
  cargo install cargo-nextest --locked
fi
if ! cargo deny --version >/dev/null 2>&1; then
  echo "setup: installing cargo-deny"
  cargo install cargo-deny --locked
fi
if ! cargo machete --version >/dev/null 2>&1; then
  echo "setup: installing cargo-machete"
  cargo install cargo-machete --locked
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "setup: installing the nightly toolchain (for cargo-fuzz)"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "setup: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
# A generic gRPC client (no .proto at hand) for the reflection test:
# Python's grpcio, grpcio-reflection and protobuf from PyPI, in a virtualenv
# (GEOWALLET_PYTHON names another interpreter that has them).
py_venv="${GEOWALLET_PY_VENV:-$HOME/.cache/geowallet-py}"
if [ -z "${GEOWALLET_PYTHON:-}" ] && ! "$py_venv/bin/python" -c "import grpc, grpc_reflection, google.protobuf" >/dev/null 2>&1; then
  echo "setup: installing grpcio, grpcio-reflection and protobuf into $py_venv"
  mkdir -p "$(dirname "$py_venv")"
  python3 -m venv "$py_venv"
  "$py_venv/bin/pip" install --quiet --disable-pip-version-check grpcio grpcio-reflection protobuf
fi
