#!/usr/bin/env bash
# Installs, idempotently, what ledgerlake's main job needs on a fresh Debian machine: Debian
# packages (RabbitMQ, libclang for the TigerBeetle client's bindgen), Zig 0.14.1 and DuckDB (with
# the httpfs and delta extensions, for auditors) from PyPI, and the TigerBeetle 0.16.78 server
# built from the source vendored in the tigerbeetle-unofficial-sys crate; starts RabbitMQ.
# Servers and readers used only by the tests are installed by scripts/setup-test.sh.
# Prints `export` lines for the environment on its last lines.
#
# Usage: eval "$(scripts/setup.sh)"
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TB_VERSION="0.16.78"
TB_COMMIT="c3d9b09dc88e94dde9ac915c6e94a4c650332080"
TB_SYS_CRATE="tigerbeetle-unofficial-sys-0.14.28+${TB_VERSION}"
CACHE="${LEDGERLAKE_CACHE:-$HOME/.cache/ledgerlake}"
TB_BIN="$CACHE/tigerbeetle-${TB_VERSION}/tigerbeetle"

log() { echo "setup: $*" >&2; }

need_apt=()
command -v rabbitmq-server >/dev/null 2>&1 || [ -x /usr/sbin/rabbitmq-server ] || need_apt+=(rabbitmq-server)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || need_apt+=(libclang-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
DUCKDB_VERSION="1.5.6"
if ! "$PY" -c 'import ziglang, sys; import importlib.metadata as m; sys.exit(0 if m.version("ziglang").startswith("0.14.1") else 1)' 2>/dev/null \
   || ! "$PY" -c "import sys, importlib.metadata as m; sys.exit(0 if m.version('duckdb-cli') == '$DUCKDB_VERSION' else 1)" 2>/dev/null \
   || ! "$PY" -c 'import duckdb' 2>/dev/null; then
  log "installing ziglang==0.14.1, duckdb-cli==$DUCKDB_VERSION and duckdb from PyPI"
  "$PY" -m pip install -q --disable-pip-version-check ziglang==0.14.1 "duckdb-cli==$DUCKDB_VERSION" duckdb \
    2>&1 | grep -v "WARNING: Running pip as" >&2 || true
fi

# DuckDB reads s3:// lakes through its httpfs extension, which it downloads at run time; offline,
# PyPI ships that extension only for DuckDB 1.5.5, so that CLI and extension pair is kept apart
# (in the cache) for reading s3:// lakes, and the auditor's CLI above stays on the newer release.
DUCKDB_S3_VERSION="1.5.5"
DUCKDB_S3_DIR="$CACHE/duckdb-s3-$DUCKDB_S3_VERSION"
DUCKDB_S3_CLI="$DUCKDB_S3_DIR/duckdb_cli/duckdb"
HTTPFS="$DUCKDB_S3_DIR/duckdb_extension_httpfs/extensions/v$DUCKDB_S3_VERSION/httpfs.duckdb_extension"
if [ ! -x "$DUCKDB_S3_CLI" ] || [ ! -f "$HTTPFS" ]; then
  log "fetching duckdb-cli and duckdb-extension-httpfs $DUCKDB_S3_VERSION from PyPI (for s3:// lakes)"
  wheels="$(mktemp -d)"
  "$PY" -m pip download -q --disable-pip-version-check --no-deps -d "$wheels" \
    "duckdb-cli==$DUCKDB_S3_VERSION" "duckdb-extension-httpfs==$DUCKDB_S3_VERSION" >&2
  mkdir -p "$DUCKDB_S3_DIR"
  for wheel in "$wheels"/*.whl; do "$PY" -m zipfile -e "$wheel" "$DUCKDB_S3_DIR"; done
  chmod +x "$DUCKDB_S3_CLI"
  rm -rf "$wheels"
fi
# --- DuckDB's delta extension (delta_scan), for schemas/duckdb/lake_delta.sql and its tests ---
# PyPI's wheel is built for DuckDB 1.5.5 only, so it sits next to the httpfs one and loads into the
# same 1.5.5 CLI (LOAD '<path>'). The synthetic cookbook lake is written with delta-rs and pyarrow
# (installed with the readers below).
DELTA_EXT="$DUCKDB_S3_DIR/duckdb_extension_delta/extensions/v$DUCKDB_S3_VERSION/delta.duckdb_extension"
if [ ! -f "$DELTA_EXT" ]; then
  log "fetching duckdb-extension-delta $DUCKDB_S3_VERSION from PyPI (delta_scan)"
  wheels="$(mktemp -d)"
  "$PY" -m pip download -q --disable-pip-version-check --no-deps -d "$wheels" \
    "duckdb-extension-delta==$DUCKDB_S3_VERSION" >&2
  mkdir -p "$DUCKDB_S3_DIR"
  for wheel in "$wheels"/*.whl; do "$PY" -m zipfile -e "$wheel" "$DUCKDB_S3_DIR"; done
  rm -rf "$wheels"
fi
# --- end of the delta extension block ---
ZIG="$("$PY" -c 'import ziglang, os; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))')"
[ -x "$ZIG" ] || { log "zig not found at $ZIG"; exit 1; }

if [ ! -x "$TB_BIN" ]; then
  log "building the TigerBeetle ${TB_VERSION} server from the vendored source (about 2-3 minutes, once)"
  (cd "$ROOT" && cargo fetch -q)
  src=""
  for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"$TB_SYS_CRATE"/tigerbeetle; do
    [ -d "$d" ] && src="$d"
  done
  [ -n "$src" ] || { log "vendored TigerBeetle source not found after cargo fetch"; exit 1; }
  work="$CACHE/tigerbeetle-src-${TB_VERSION}"
  rm -rf "$work" && mkdir -p "$work" && cp -r "$src/." "$work/"
  (cd "$work" && "$ZIG" build -Drelease -Dconfig-release="$TB_VERSION" \
      -Dconfig-release-client-min=0.16.4 -Dgit-commit="$TB_COMMIT" >&2)
  mkdir -p "$(dirname "$TB_BIN")"
  cp "$work/zig-out/bin/tigerbeetle" "$TB_BIN.tmp" && mv "$TB_BIN.tmp" "$TB_BIN"
  rm -rf "$work"
fi
"$TB_BIN" version >/dev/null || { log "$TB_BIN does not run"; exit 1; }


if ! rabbitmqctl -q status >/dev/null 2>&1; then
  log "starting RabbitMQ"
  rabbitmq-server -detached >/dev/null 2>&1 || true
  for _ in $(seq 1 60); do
    rabbitmqctl -q await_startup >/dev/null 2>&1 && break
    sleep 1
  done
  rabbitmqctl -q await_startup >/dev/null 2>&1 || { log "RabbitMQ did not start"; exit 1; }
fi

echo "export ZIG_PATH=$ZIG"
echo "export LEDGERLAKE_TIGERBEETLE=$TB_BIN"
echo "export LEDGERLAKE_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f"
echo "export LEDGERLAKE_DUCKDB_S3_CLI=$DUCKDB_S3_CLI"
echo "export LEDGERLAKE_DUCKDB_HTTPFS=$HTTPFS"
echo "export LEDGERLAKE_DUCKDB_DELTA=$DELTA_EXT"
