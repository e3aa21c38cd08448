#!/usr/bin/env bash
# Fuzzes every channel adapter (crates/orderhub-channels/fuzz, one cargo-fuzz target per channel)
# for SECONDS each (default 20), seeded with the channel's fixtures. Fails if any target crashes
# (a panic, an overflow, a timeout or running out of memory), after running them all; the crashing
# inputs stay in crates/orderhub-channels/fuzz/artifacts/<channel>/.
#
# Needs only the Rust toolchain: cargo-fuzz is installed from crates.io into .tools/cargo-fuzz the
# first time. The toolchain is stable, so RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags.
# Builds go to crates/orderhub-channels/fuzz/target unless CARGO_TARGET_DIR says otherwise.
#
# Usage: scripts/fuzz-channels.sh [SECONDS-PER-TARGET]
# Env:   FUZZ_TARGETS="taobao jd"  only these targets
#        FUZZ_SANITIZER=none       instead of address (the default)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

secs="${1:-20}"
[[ "$secs" =~ ^[0-9]+$ ]] || {
  echo "usage: $0 [seconds-per-target]" >&2
  exit 2
}
read -r -a targets <<<"${FUZZ_TARGETS:-taobao jd pdd douyin kuaishou wechat youzan custom tmc}"
sanitizer="${FUZZ_SANITIZER:-address}"

version=0.13.2
root="$repo/.tools/cargo-fuzz"
cargo_fuzz="$root/bin/cargo-fuzz"
if ! "$cargo_fuzz" --version 2>/dev/null | grep -qF " $version"; then
  echo "== installing cargo-fuzz $version into .tools/cargo-fuzz"
  cargo install cargo-fuzz --version "$version" --locked --root "$root"
fi

export RUSTC_BOOTSTRAP=1
cd crates/orderhub-channels
# The fuzz crate has a lock file of its own; refuse to run with one that is out of date.
cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null

# The same options for build and run, or run would build again with other flags.
opts=(--fuzz-dir fuzz --sanitizer "$sanitizer")
echo "== building the fuzz targets (sanitizer: $sanitizer)"
"$cargo_fuzz" build "${opts[@]}"

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
failed=()
echo "== fuzzing each target for ${secs}s"
for t in "${targets[@]}"; do
  [ -d "fixtures/$t" ] || {
    echo "no fixtures/$t to seed $t from" >&2
    exit 1
  }
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  log="$logs/$t.log"
  # The first corpus folder takes the inputs found; the fixtures are read-only seeds.
  if "$cargo_fuzz" run "${opts[@]}" "$t" "fuzz/corpus/$t" "fixtures/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -dict=fuzz/channels.dict \
    -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1; then
    status=ok
  else
    status=CRASHED
    failed+=("$t")
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  corp=$(grep -o 'corp: [0-9]*/[0-9A-Za-z]*' "$log" | tail -1 | sed 's/corp: //')
  cov=$(grep -o ' cov: [0-9]*' "$log" | tail -1 | sed 's/ cov: //')
  seeds=$(find "fixtures/$t" -type f | wc -l)
  printf '%-9s %-7s %10s execs in %ss, corpus %s (from %s seeds), coverage %s\n' \
    "$t" "$status" "${execs:-?}" "$secs" "${corp:-?}" "$seeds" "${cov:-?}"
  if [ "$status" != ok ]; then
    grep -E -A30 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -60 >&2 ||
      tail -60 "$log" >&2
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing crashed: ${failed[*]} (inputs in crates/orderhub-channels/fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzzing: ${#targets[@]} targets, no crash"
