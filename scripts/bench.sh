#!/usr/bin/env bash
# Runs the benchmark of BENCHMARKS.md: builds provisiond in release mode, installs wrk (Debian) and moto's server
# into .bench-venv (the peer measured on the comparable call, when PyPI is reachable), and runs
# `provisiond bench` against fresh data directories on loopback, and a throwaway PostgreSQL
# (scripts/postgres.sh) for its PostgreSQL part. Arguments are passed on
# (`--quick` for a smoke run; the full run seeds 1,000,000 provisioned products).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet -p provisiond
# wrk, the second load generator of the signed-reads rows (Debian's package).
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -qq wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null) \
      || echo "wrk could not be installed: its rows are left out of this run" >&2
  else
    echo "wrk is not installed (apt-get install wrk): its rows are left out of this run" >&2
  fi
fi
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
