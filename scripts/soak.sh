#!/usr/bin/env bash
# The soak run (opt-in; examples/soak.rs): a steady stream for SECONDS (default 600) with the
# exporter SIGKILLed at random moments (at least 20), then the CDC job replayed from timestamp 0;
# the lake and a rebuild to latest must equal the source. SEED replays a kill schedule.
#   scripts/soak.sh [SECONDS] [SEED]
# Takes the stack lock like every real-stack test (one such run on the machine at a time).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
eval "$(scripts/setup.sh)"
cargo build --locked --bin ledgerlake --example soak
exec flock /tmp/ledgerlake-stack.lock cargo run --locked --example soak -- "$@"
