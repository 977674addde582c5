#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the end-to-end tests need (a Python
# venv with boto3, the AWS CLI, pytest and trustme; git; the AWS SDK for JavaScript v3 with npm;
# PostgreSQL, whose servers the store tests start themselves with scripts/postgres.sh; Debian's
# Chromium and ChromeDriver for the console's browser tests),
# checks formatting and that the generated code is current, runs every Rust test (unit, store
# conformance, AWS SDK for Rust), runs each fuzz target briefly, builds the binary and runs the
# end-to-end suite against it.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# A CI machine builds once from a clean clone: incremental compilation's caches would only take
# disk (gigabytes across the test binaries) and time.
if [ "${CI:-}" = "true" ]; then
  export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
fi

step "Python venv for the end-to-end suite (.venv)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/e2e/requirements.txt

step "git for the Proton end-to-end tests"
if ! command -v git >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq git >/dev/null
  else
    echo "git is required by tests/e2e/test_proton.py; install it (apt-get install git)" >&2
    exit 1
  fi
fi
git --version

step "the AWS SDK for JavaScript v3 for the end-to-end suite (tests/e2e/js, npm ci)"
if command -v npm >/dev/null 2>&1; then
  (cd tests/e2e/js && npm ci --no-audit --no-fund --silent)
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
  (cd tests/e2e/js && npm ci --no-audit --no-fund --silent)
else
  echo "npm is missing: the JavaScript SDK tests will be skipped (an error under CI)" >&2
fi

step "PostgreSQL for the store and replica tests (scripts/postgres.sh starts throwaway servers)"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
  else
    echo "PostgreSQL is missing: its tests will be skipped (an error under CI); apt-get install postgresql" >&2
  fi
fi
ls -d /usr/lib/postgresql/*/bin 2>/dev/null || true

step "Chromium and ChromeDriver for the console's browser tests (Debian's chromium, chromium-driver)"
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "chromium or chromedriver is missing: the console tests will be skipped (an error under CI); apt-get install chromium chromium-driver" >&2
  fi
fi
command -v chromium >/dev/null 2>&1 && chromium --version 2>/dev/null || true

step "formatting"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check

step "generated code is current (cargo run -p provisiond-codegen -- --check)"
cargo run --quiet -p provisiond-codegen -- --check

step "Rust tests"
cargo test --workspace --quiet

step "fuzz targets build and run briefly (scripts/fuzz.sh --quick 3)"
bash scripts/fuzz.sh --quick 3

step "end-to-end suite (real binary, boto3)"
# The binary `cargo test --workspace` built already, with the workspace's features: built for
# `provisiond` alone, its dependencies' features differ and a clean machine compiled them all
# again (about 2 minutes).
cargo build --quiet --workspace --all-targets
# The slowest tests are listed at the end: the suite must keep CI under 20 minutes.
PROVISIOND_BIN="$PWD/target/debug/provisiond" .venv/bin/python -m pytest -q --durations=15 tests/e2e

step "disk the build took (a CI machine's disk is finite)"
du -sh target fuzz/target 2>/dev/null || true
