#!/usr/bin/env bash
# Browser tests of the console (e2e/console.test.mjs): Debian's chromium driven by playwright-core.
#
#   scripts/e2e.sh                 builds orderhub, starts a fresh hub on a free port, runs the test
#   ORDERHUB_E2E_URL=… ORDERHUB_E2E_KEY=… scripts/e2e.sh
#                                  runs the test against a hub that is already up (e.g. `orderhub demo`)
#
# Installs what is missing: chromium (apt, as root) and e2e/node_modules (npm ci; playwright-core
# downloads no browser). Screenshots land in e2e/screenshots/*.png; the hub's log in
# e2e/screenshots/hub.log.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [ ! -x /usr/bin/chromium ]; then
    echo "Installing chromium (Debian package)…"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
# A Chinese font, so the screenshots of the Chinese console show its labels, not boxes.
if ! fc-list :lang=zh 2>/dev/null | grep -q .; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-zenhei
fi
if [ ! -d e2e/node_modules/playwright-core ]; then
    (cd e2e && npm ci --ignore-scripts --no-audit --no-fund)
fi
mkdir -p e2e/screenshots

if [ -z "${ORDERHUB_E2E_URL:-}" ]; then
    cargo build -p orderhub-cli
    bin="${CARGO_TARGET_DIR:-$root/target}/debug/orderhub"
    data=$(mktemp -d)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    # A fresh embedded store, whatever the environment says.
    unset ORDERHUB_DATABASE_URL ORDERHUB_CONFIG ORDERHUB_NATS_URL
    export ORDERHUB_DATA_DIR="$data" ORDERHUB_LISTEN="127.0.0.1:$port"
    # A tenant of its own, made with the CLI; its admin key is the last line printed.
    admin=$("$bin" tenant create e2e --name "E2E shop" | tail -n1)
    # Orders move only through the API (no simulated fulfillment), so a held order stays held.
    "$bin" serve --fulfillment off >e2e/screenshots/hub.log 2>&1 &
    hub=$!
    trap 'kill "$hub" 2>/dev/null || true; wait "$hub" 2>/dev/null || true; rm -rf "$data"' EXIT
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
        kill -0 "$hub" 2>/dev/null || { cat e2e/screenshots/hub.log; exit 1; }
        sleep 0.2
    done
    # The browser logs in with an ops key without pii:read: it may act on exceptions, and the
    # receiver must show masked.
    ops=$(curl -fsS -X POST "http://127.0.0.1:$port/v1/api-keys" \
        -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
        -d '{"name": "e2e ops", "role": "ops", "scopes": []}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
    export ORDERHUB_E2E_URL="http://127.0.0.1:$port" ORDERHUB_E2E_KEY="$ops"
fi

node e2e/console.test.mjs
