#!/usr/bin/env bash
# Browser tests of the console (e2e/console.test.mjs): Debian's chromium driven by playwright-core.
#
#   scripts/e2e.sh                 builds orderhub with the demo feature, starts `orderhub demo` on
#                                  a free port, runs the test against it while the demo's day plays
#   ORDERHUB_E2E_URL=… ORDERHUB_E2E_KEY=… scripts/e2e.sh
#                                  runs the test against a hub that is already up (e.g. `orderhub demo`)
#
# Installs what is missing: chromium (apt, as root) and e2e/node_modules (npm ci; playwright-core
# downloads no browser). Screenshots land in e2e/screenshots/*.png; the demo's output in
# e2e/screenshots/demo.log.
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
    # The demo and its simulators are built with the demo feature only (the product has none).
    cargo build -p orderhub-cli --features demo
    bin="${CARGO_TARGET_DIR:-$root/target}/debug/orderhub"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    # A fresh embedded store, whatever the environment says.
    unset ORDERHUB_DATABASE_URL ORDERHUB_CONFIG ORDERHUB_NATS_URL
    # The demo: the hub, the simulators and a business day; the test runs while orders flow.
    "$bin" demo --listen "127.0.0.1:$port" --minutes 2 >e2e/screenshots/demo.log 2>&1 &
    hub=$!
    trap 'kill -INT "$hub" 2>/dev/null || true; wait "$hub" 2>/dev/null || true' EXIT
    ops=""
    for _ in $(seq 1 300); do
        ops=$(sed -n 's/^  ops key .* \(ohk_[A-Za-z0-9_-]*\)$/\1/p' e2e/screenshots/demo.log)
        [ -n "$ops" ] && break
        kill -0 "$hub" 2>/dev/null || { cat e2e/screenshots/demo.log; exit 1; }
        sleep 0.2
    done
    [ -n "$ops" ] || { echo "the demo printed no ops key"; cat e2e/screenshots/demo.log; exit 1; }
    # Let the day start, so the console has orders, exceptions and charts to show.
    sleep 10
    # The browser logs in with the demo's ops key (no pii:read): it may act on exceptions, and
    # receivers must show masked. Its own orders buy the demo's restock-pending SKU.
    # The admin key is the second person who approves the ops key's order edit.
    admin=$(sed -n 's/^  admin key .* \([^ ]*\)$/\1/p' e2e/screenshots/demo.log)
    export ORDERHUB_E2E_URL="http://127.0.0.1:$port" ORDERHUB_E2E_KEY="$ops" ORDERHUB_E2E_SKU=LIMITED-RESTOCK \
        ORDERHUB_E2E_ADMIN_KEY="$admin"
fi

node e2e/console.test.mjs
