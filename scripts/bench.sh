#!/usr/bin/env bash
# The benchmarks of issue 5, each figure next to its anchor measured in the same run: installs and
# starts the real stack (scripts/setup.sh), builds the release binary, runs the three bench
# binaries (benches/pipeline.rs, codec.rs, query.rs), writes bench-results/<scale>/results.json
# and prints a table per binary.
#
# Usage: scripts/bench.sh [--scale small|full]
#   small (default): checks the harness in a few minutes (10^4 and 5·10^4 transfers, 10^6 query events)
#   full: the issue's sizes (10^5 and 10^6 transfers, 10^7 query events); about 30-40 minutes on 2 cores
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SCALE=small
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) SCALE="${2:?--scale small|full}"; shift 2 ;;
    *) echo "usage: scripts/bench.sh [--scale small|full]" >&2; exit 2 ;;
  esac
done
case "$SCALE" in small|full) ;; *) echo "--scale small|full" >&2; exit 2 ;; esac

eval "$(scripts/setup.sh)"
cargo build --release --locked -q
cargo bench --locked --no-run -q 2>/dev/null || cargo bench --locked --no-run

# LEDGERLAKE_BENCH_WORK keeps the lakes (e.g. to rerun the codec bench on them); else a temp dir.
if [ -n "${LEDGERLAKE_BENCH_WORK:-}" ]; then
  WORK="$LEDGERLAKE_BENCH_WORK"; mkdir -p "$WORK"
else
  WORK="$(mktemp -d /tmp/ledgerlake-bench.XXXXXX)"
  trap 'rm -rf "$WORK"' EXIT
fi
OUT="$ROOT/bench-results/$SCALE"
mkdir -p "$OUT"
started="$(date -u +%FT%TZ)"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

bench() { cargo bench --locked -q --bench "$@"; }
bench pipeline -- --scale "$SCALE" --work "$WORK" --out "$OUT/pipeline.json"
LAKE="$(ls -d "$WORK"/lake-[0-9]* | sort -t- -k2 -n | tail -1)"
bench codec -- --scale "$SCALE" --work "$WORK" --lake "$LAKE" --out "$OUT/codec.json"
bench query -- --scale "$SCALE" --work "$WORK" --out "$OUT/query.json"

python3 - "$OUT" "$SCALE" "$started" "$load_before" <<'PY'
import json, os, platform, subprocess, sys
out, scale, started, load_before = sys.argv[1:5]
def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception as e:
        return f"unavailable: {e}"
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem_kb = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
doc = {
    "scale": scale,
    "started": started,
    "machine": {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "load_before": load_before, "load_after": open("/proc/loadavg").read().split()[:3],
    },
    "versions": {
        "ledgerlake": sh("git", "rev-parse", "--short", "HEAD"),
        "rustc": sh("rustc", "--version"),
        "tigerbeetle": sh(os.environ["LEDGERLAKE_TIGERBEETLE"], "version"),
        "rabbitmq": sh("rabbitmqctl", "-q", "version"),
        "duckdb": sh("duckdb", "--version"),
    },
    "benches": {b: json.load(open(f"{out}/{b}.json")) for b in ("pipeline", "codec", "query")},
}
json.dump(doc, open(f"{out}/results.json", "w"), indent=2)
print(f"\nresults: {out}/results.json")
PY
