#!/usr/bin/env bash
# Runs schemathesis (property-based API tests from the OpenAPI document) against a local
# `orderhub serve`: every operation of /openapi.json, with the admin key, checking that no answer is
# a server error and that every status, content type, body and header is one the document declares.
#
#   scripts/schemathesis.sh [max-examples per operation, default 25]
#
# Installs a pinned schemathesis from PyPI into a venv under $HOME/.cache (created on first use;
# installs python3-venv with apt-get when the machine lacks it), builds and starts the debug binary
# on a free port with a temporary data directory, and stops it at the end. Exits non-zero when
# schemathesis reports a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES="${1:-25}"
VENV="${ORDERHUB_SCHEMATHESIS_VENV:-$HOME/.cache/orderhub/schemathesis-$SCHEMATHESIS_VERSION}"
KEY="schemathesis-admin-key-0123456789"

if [ ! -x "$VENV/bin/schemathesis" ]; then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    echo "python3 -m venv is missing: installing python3-venv" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  fi
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# The product as it ships (no demo feature): the API does not depend on the simulators.
cargo build --quiet --locked -p orderhub-cli
bin="${CARGO_TARGET_DIR:-target}/debug/orderhub"

data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --data-dir "$data" --listen "127.0.0.1:$port" --bootstrap-api-key "$KEY" \
  --fulfillment off >"$data/serve.log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  curl -fs "$base/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$data/serve.log" >&2; exit 1; }
  sleep 0.2
done

# A little to find: a warehouse, a SKU with stock, an order.
auth=(-H "Authorization: Bearer $KEY" -H 'content-type: application/json')
curl -fs -X PUT "${auth[@]}" "$base/v1/warehouses/WH1" -d '{"name":"Main","regions":[]}' >/dev/null
curl -fs -X PUT "${auth[@]}" "$base/v1/skus/SKU-1" -d '{"title":"T-shirt"}' >/dev/null
curl -fs -X POST "${auth[@]}" "$base/v1/inventory/receipts" \
  -d '{"sku":"SKU-1","warehouse_id":"WH1","quantity":100}' >/dev/null

export SCHEMATHESIS_HOOKS=
# One worker: with two, hypothesis parses lambdas' source in two threads at once and CPython
# 3.11's ast.parse fails ("AST constructor recursion depth mismatch", a runtime error of the tool,
# not of the API) — it failed a CI run on two after-sales operations.
# Three operations are left out: they configure where the hub itself sends requests (a webhook's
# URL, a channel shop's API base URL, a carrier account's base URL), and generated values would
# make the hub call hosts outside this machine. The matrix and the bounds tests (tests/it/) cover them against local servers.
"$VENV/bin/schemathesis" run "$base/openapi.json" \
  --url "$base" \
  --exclude-name 'POST /v1/subscriptions' \
  --exclude-name 'PUT /v1/channels/{channel}/shops/{shop}' \
  --exclude-name 'PUT /v1/carriers/{carrier}' \
  -H "Authorization: Bearer $KEY" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  --max-examples "$MAX_EXAMPLES" \
  --workers 1 \
  --request-timeout 10 \
  --seed 1 \
  --no-color \
  "${@:2}"
