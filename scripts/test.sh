#!/usr/bin/env bash
# The test command: installs and starts the real stack (idempotent: scripts/setup.sh for what the
# main job needs, scripts/setup-test.sh for the servers and readers only the tests use), then runs
# every test — unit, property and integration tests against real TigerBeetle, RabbitMQ, the CDC
# job, DuckDB, and S3, Azure and GCS servers.
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh --test export`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
eval "$(scripts/setup.sh)"
eval "$(scripts/setup-test.sh)"
# Each TigerBeetle replica reserves about 1 GiB; the test bed caps live replicas per test binary,
# and test binaries run one after another, so memory stays well inside 24 GiB.
export RUST_BACKTRACE=1
cargo test --locked --no-fail-fast "$@"
