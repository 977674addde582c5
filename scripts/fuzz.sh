#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each with cargo fuzz (libFuzzer), starting
# from the committed seeds (fuzz/seeds/<target>) and the regression inputs
# (fuzz/regressions/<target>), growing fuzz/corpus/<target>. A crash stops the run with its
# input in fuzz/artifacts/<target>/. Prints one line per target: runs, coverage, corpus size.
#
#   bash scripts/fuzz.sh 600              # ten minutes each, as docs/fuzzing.md records
#   bash scripts/fuzz.sh 5 json_inputs    # a brief run of one target
#   bash scripts/fuzz.sh --quick 3        # what scripts/test.sh runs: an unoptimised build
#                                         # without AddressSanitizer, so the targets keep
#                                         # building at a fraction of the build time
#
# cargo fuzz wants a nightly compiler: `cargo +nightly` when rustup has one, else stable with
# RUSTC_BOOTSTRAP=1. Without cargo-fuzz (and no way to install it) the run is skipped loudly,
# and under CI=true that is an error.
set -euo pipefail
cd "$(dirname "$0")/.."

build_args=()
if [ "${1:-}" = "--quick" ]; then
  build_args=(--dev --sanitizer none)
  shift
fi
seconds="${1:-5}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(json_inputs sigv4 aws_chunked terraform_artifact proton_bundle s3_router)
fi

skip() {
  printf '\n%s\nFUZZING SKIPPED: %s\n%s\n' "$(printf '!%.0s' {1..78})" "$1" "$(printf '!%.0s' {1..78})" >&2
  if [ "${CI:-}" = "true" ]; then
    exit 1
  fi
  exit 0
}

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install --quiet cargo-fuzz --locked || skip "cargo-fuzz is not installed and could not be installed"
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi

"${fuzz[@]}" build --fuzz-dir fuzz "${build_args[@]}" >/dev/null 2>fuzz/build.log || { cat fuzz/build.log >&2; skip "the fuzz targets do not build (see above)"; }
rm -f fuzz/build.log

for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target" "fuzz/regressions/$target"
  log="$(mktemp)"
  if ! "${fuzz[@]}" run --fuzz-dir fuzz "${build_args[@]}" "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" "fuzz/regressions/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz target $target FAILED: the crashing input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  cov=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | grep -oE 'cov: [0-9]+' || true)
  corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
  printf 'fuzz %-20s %5ss  %10s runs  %s  corpus %s\n' "$target" "$seconds" "${runs:-?}" "${cov:-cov: ?}" "$corpus"
  rm -f "$log"
done
