#!/usr/bin/env bash
# The reliability matrix's full runs (../shared/RELIABILITY.md): the release
# build, the load and fault rows on scale s, the fuzzers and corruptor at full
# size. Writes benches/results/DATE-reliability.jsonl: one line of
# machine and versions, then one line of figures per matrix row.
# Usage: scripts/reliability.sh [AUDIENCE_FUZZ_SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/audience/target}"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
cargo build --release --locked
[ -f data/s/.audience-data ] || "$CARGO_TARGET_DIR/release/audience" gen --scale s --out data/s
# the tag-segment recipe (M3) reads the tag index
[ -d data/s/tag_bitmaps ] || "$CARGO_TARGET_DIR/release/audience" index tags --data data/s
out="benches/results/$(date +%F)-reliability.jsonl"
printf '{"machine":"%s cores, %s","rustc":"%s","command":"scripts/reliability.sh %s"}\n' \
  "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" \
  "$(rustc --version)" "${1:-}" >"$out"
export AUDIENCE_RELIABILITY=full AUDIENCE_RELIABILITY_OUT="$PWD/$out"
export AUDIENCE_RELIABILITY_DATA="$PWD/data/s"
[ -n "${1:-}" ] && export AUDIENCE_FUZZ_SEED="$1"
cargo nextest run --release --locked --profile reliability --test integration --test-threads 1 --no-fail-fast \
  -E 'test(load::) | test(vanishing_clients::) | test(corrupt_files::) | test(protocol_abuse::) | test(function_fuzz::) | test(ast_fuzz::) | test(cancellation::) | test(killed_server::) | test(memory_limits::) | test(m3_) | test(l5_) | test(object_storage::f4) | test(logic_fuzz::)'
echo "figures: $out"
