#!/usr/bin/env bash
# Runs the benchmark of BENCHMARKS.md: builds provisiond in release mode, installs moto's server
# into .bench-venv (the peer measured on the comparable call, when PyPI is reachable), and runs
# `provisiond bench` against fresh data directories on loopback, and a throwaway PostgreSQL
# (scripts/postgres.sh) for its PostgreSQL part. Arguments are passed on
# (`--quick` for a smoke run; the full run seeds 1,000,000 provisioned products).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet -p provisiond
args=("$@")
if [ ! -x .bench-venv/bin/moto_server ]; then
  python3 -m venv .bench-venv && .bench-venv/bin/pip install --quiet --disable-pip-version-check 'moto[server]' \
    || echo "moto could not be installed: it is left out of this run" >&2
fi
if [ -x .bench-venv/bin/moto_server ]; then
  args+=(--moto .bench-venv/bin/moto_server)
fi
case " ${args[*]} " in
  *" --quick "*) ;;
  *) args+=(--million) ;;
esac
# PostgreSQL, when installed and no --database-url was given: a throwaway server of its own.
case " ${args[*]} " in
  *" --database-url "*) ;;
  *)
    pgdir=$(mktemp -d /tmp/provisiond-bench-pg.XXXXXX)
    if url=$(bash scripts/postgres.sh start "$pgdir/pg"); then
      trap 'bash scripts/postgres.sh stop "$pgdir/pg"; rm -rf "$pgdir"' EXIT
      args+=(--database-url "$url")
    else
      echo "PostgreSQL is not available: its part is left out of this run" >&2
      rm -rf "$pgdir"
    fi
    ;;
esac
target/release/provisiond bench "${args[@]}"
