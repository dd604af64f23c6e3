#!/usr/bin/env bash
# Builds a synthetic lake (format 2, written with delta-rs) with known answers and checks every
# cookbook query against it with the real DuckDB CLI, plain (the views replay the Delta log): at
# the latest version, and at an earlier transfers version (time travel). Needs python3 with the
# duckdb, deltalake and pyarrow packages and the duckdb CLI (scripts/setup.sh installs them).
#
# With DELTA_CLI (a DuckDB CLI that the delta extension loads into) and DELTA_EXTENSION (the
# extension's file) set, the trial balances, a statement and the posted volume are also checked
# through the delta extension (schemas/duckdb/lake_delta.sql), at both versions. Extra arguments
# go to make_lake.py (e.g. --seed 3).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
python3 "$HERE/make_lake.py" "$WORK/lake" "$WORK/expected.json" --at-version-out "$WORK/at_version.json" "$@"
version="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' "$WORK/at_version.json")"
status=0
echo "== plain DuckDB, latest version"
python3 "$HERE/check_cookbook.py" "$WORK/lake" "$WORK/expected.json" || status=1
echo "== plain DuckDB, transfers version $version"
python3 "$HERE/check_cookbook.py" "$WORK/lake" "$WORK/at_version.json" --lake-version "$version" || status=1
if [ -n "${DELTA_CLI:-}" ] && [ -n "${DELTA_EXTENSION:-}" ]; then
  echo "== delta extension, latest version"
  python3 "$HERE/check_cookbook.py" "$WORK/lake" "$WORK/expected.json" --duckdb "$DELTA_CLI" \
    --delta-extension "$DELTA_EXTENSION" --subset || status=1
  echo "== delta extension, transfers version $version"
  python3 "$HERE/check_cookbook.py" "$WORK/lake" "$WORK/at_version.json" --lake-version "$version" \
    --duckdb "$DELTA_CLI" --delta-extension "$DELTA_EXTENSION" --subset || status=1
fi
exit $status
