#!/usr/bin/env bash
# The fuzzers (opt-in; needs the nightly toolchain and `cargo install cargo-fuzz`): runs each
# target of fuzz/ for RUNS executions (default 1000000, one process each, from its corpus) and
# prints its figures; any crash stops the run with the input saved under fuzz/artifacts/<target>/.
# New inputs the fuzzer finds go to a scratch directory, so fuzz/corpus stays the reviewed seeds
# (every one of which `cargo test` replays: tests/fuzz_corpus.rs and cdc::tests).
#   scripts/fuzz.sh [RUNS] [TARGET...]   targets: decode_delivery data_file log_commit metadata
#   scripts/fuzz.sh seed                 rewrites the lake targets' seeds from a small real lake
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ "${1:-}" == seed ]]; then
  LEDGERLAKE_WRITE_FUZZ_SEEDS=1 exec cargo test --locked --test fuzz_corpus seeds_
fi
RUNS="${1:-1000000}"
shift || true
TARGETS=("$@")
if [[ ${#TARGETS[@]} -eq 0 ]]; then
  TARGETS=(decode_delivery data_file log_commit metadata)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: cargo-fuzz is missing: cargo install cargo-fuzz" >&2
  exit 2
fi
cargo +nightly fuzz build
for target in "${TARGETS[@]}"; do
  scratch="$(mktemp -d)"
  log="$(mktemp)"
  started=$(date +%s)
  if ! cargo +nightly fuzz run "$target" "$scratch" "fuzz/corpus/$target" -- \
      -runs="$RUNS" -max_len=32768 -rss_limit_mb=4096 -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "fuzz.sh: $target CRASHED (input under fuzz/artifacts/$target/)" >&2
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  echo "fuzz.sh: $target: $runs executions in $(( $(date +%s) - started )) s, 0 crashes, coverage $cov edges, $(ls "fuzz/corpus/$target" | wc -l) seeds, $(ls "$scratch" | wc -l) new inputs (in $scratch)"
done
