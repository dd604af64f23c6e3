#!/usr/bin/env bash
# The main job end to end on the local-directory default: installs what is missing (scripts/setup.sh),
# starts a local TigerBeetle replica, generates a ledger with every kind of transfer event, runs
# the real CDC job (`tigerbeetle amqp`) into RabbitMQ, exports the stream into ./demo-lake with
# `ledgerlake export`, shows the lake with `ledgerlake ls`, proves it whole with `ledgerlake verify`,
# and rebuilds a second, fresh cluster as the ledger stood at a moment in the middle of the stream.
# Each run starts from scratch.
#
# Environment: LEDGERLAKE_DEMO_TRANSFERS (default 20000), LEDGERLAKE_DEMO_LAKE (default ./demo-lake).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
eval "$(scripts/setup.sh)"

TRANSFERS="${LEDGERLAKE_DEMO_TRANSFERS:-20000}"
LAKE="${LEDGERLAKE_DEMO_LAKE:-$ROOT/demo-lake}"
WORK="$(mktemp -d /tmp/ledgerlake-demo.XXXXXX)"
CLUSTER="$(python3 -c 'import secrets; print(secrets.randbits(64))')"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
EXCHANGE="ledgerlake-demo-$CLUSTER"
QUEUE="ledgerlake-demo-lake-$CLUSTER"
TB="$LEDGERLAKE_TIGERBEETLE"
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rabbitmqctl -q delete_queue "$QUEUE" >/dev/null 2>&1 || true
  rabbitmqctl -q delete_queue "tigerbeetle.internal.progress.$CLUSTER" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

step() { echo; echo "== $*"; }

step "building ledgerlake (release)"
cargo build --release --locked -q
LL="${CARGO_TARGET_DIR:-$ROOT/target}/release/ledgerlake"

step "starting a TigerBeetle 0.16.78 replica (cluster $CLUSTER) on 127.0.0.1:$PORT"
"$TB" format --cluster="$CLUSTER" --replica=0 --replica-count=1 --development "$WORK/0_0.tigerbeetle" 2>"$WORK/format.log"
"$TB" start --addresses="127.0.0.1:$PORT" --development --experimental --limit-request=1MiB \
  --cache-grid=256MiB "$WORK/0_0.tigerbeetle" >"$WORK/replica.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done

step "generating a ledger of $TRANSFERS transfers"
"$LL" generate --addresses "127.0.0.1:$PORT" --cluster-id "$CLUSTER" --transfers "$TRANSFERS"

step "exporting into $LAKE (queue $QUEUE bound to exchange $EXCHANGE)"
rm -rf "$LAKE"
"$LL" export --declare --exchange "$EXCHANGE" --queue "$QUEUE" --lake "$LAKE" \
  --cluster-id "$CLUSTER" --until-idle 10s &
exporter=$!
pids+=("$exporter")
for _ in $(seq 1 100); do
  rabbitmqctl -q list_exchanges name 2>/dev/null | grep -qx "$EXCHANGE" && break
  sleep 0.1
done

step "starting the CDC job: tigerbeetle amqp --publish-exchange=$EXCHANGE"
"$TB" amqp --addresses="127.0.0.1:$PORT" --cluster="$CLUSTER" --host=127.0.0.1 --vhost=/ \
  --user=guest --password=guest --publish-exchange="$EXCHANGE" >"$WORK/cdc.log" 2>&1 &
pids+=($!)
wait "$exporter"

step "ledgerlake ls --lake $LAKE"
"$LL" ls --lake "$LAKE"

step "ledgerlake verify --lake $LAKE"
"$LL" verify --lake "$LAKE"

# A moment in the middle of the stream, as RFC 3339.
UNTIL="$("$LL" ls --lake "$LAKE" --format json | python3 -c '
import json, sys
segments = json.load(sys.stdin)["segments"]
print(segments[len(segments) // 2]["first_time"])')"
PORT2="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
step "rebuilding a fresh cluster on 127.0.0.1:$PORT2 as the ledger stood at $UNTIL"
"$TB" format --cluster="$CLUSTER" --replica=0 --replica-count=1 --development "$WORK/rebuilt.tigerbeetle" 2>"$WORK/format2.log"
"$TB" start --addresses="127.0.0.1:$PORT2" --development --experimental --limit-request=1MiB \
  --cache-grid=256MiB "$WORK/rebuilt.tigerbeetle" >"$WORK/replica2.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT2") 2>/dev/null && break
  sleep 0.1
done
"$LL" rebuild --lake "$LAKE" --addresses "127.0.0.1:$PORT2" --cluster-id "$CLUSTER" --until "$UNTIL"
