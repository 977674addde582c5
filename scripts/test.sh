#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the end-to-end tests need (a Python
# venv with boto3 and pytest), checks formatting and that the generated code is current, runs
# every Rust test (unit, store conformance, AWS SDK for Rust), builds the binary and runs the
# boto3 end-to-end suite against it.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "Python venv for the end-to-end suite (.venv)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/e2e/requirements.txt

step "formatting"
cargo fmt --all -- --check

step "generated code is current (cargo run -p provisiond-codegen -- --check)"
cargo run --quiet -p provisiond-codegen -- --check

step "Rust tests"
cargo test --workspace --quiet

step "end-to-end suite (real binary, boto3)"
cargo build --quiet -p provisiond
PROVISIOND_BIN="$PWD/target/debug/provisiond" .venv/bin/python -m pytest -q tests/e2e
