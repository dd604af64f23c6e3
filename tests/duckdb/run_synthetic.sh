#!/usr/bin/env bash
# Builds a synthetic lake with known answers and checks every cookbook query against it with the
# real DuckDB CLI. Needs python3 with the duckdb package and the duckdb CLI (scripts/setup.sh
# installs both). Extra arguments go to make_lake.py (e.g. --seed 3).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
python3 "$HERE/make_lake.py" "$WORK/lake" "$WORK/expected.json" "$@"
python3 "$HERE/check_cookbook.py" "$WORK/lake" "$WORK/expected.json"
