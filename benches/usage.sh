#!/usr/bin/env bash
# Benchmark of `subaudit usage` (usage summary, pivot, and the per-customer attribution of the
# messages through polars): generates snapshots of N messages with the project's own
# generator, then times `subaudit usage` on each, reporting wall time and peak RSS (GNU time).
# Rerun it to check the figures in docs/usage.md:
#
#   benches/usage.sh [MESSAGES ...]          (default: 1000000 10000000)
#
# Uses the release build (cargo build --release; CARGO_TARGET_DIR is honoured), copied into
# the work folder first so that another build sharing the target folder cannot swap it
# mid-run. Work folder: ${BENCH_DIR:-/tmp/subaudit-bench}; snapshots are kept there between
# runs (about 0.8 GB of JSON per million messages). SUBAUDIT_BIN=path times that binary
# instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000000 10000000)
work=${BENCH_DIR:-/tmp/subaudit-bench}
mkdir -p "$work"
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)" >&2; exit 2; }
src=${SUBAUDIT_BIN:-}
if [ -z "$src" ]; then
  cargo build --release --quiet
  src="${CARGO_TARGET_DIR:-target}/release/subaudit"
fi
bin="$work/subaudit-usage-bench.$$"
cp "$src" "$bin"
trap 'rm -f "$bin" "$work/time.$$.txt" "$work/last.$$.out"' EXIT

measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f '%e %M' -o "$work/time.$$.txt" "$@" > "$work/last.$$.out"
  read -r wall rss_kb < "$work/time.$$.txt"
  printf '%-40s %8ss %8.0f MiB\n' "$label" "$wall" "$((rss_kb / 1024))"
}

printf '%-40s %9s %12s\n' "step" "wall" "peak RSS"
for n in "${sizes[@]}"; do
  snap="$work/owlie-$n"
  if [ ! -f "$snap/manifest.json" ]; then
    measure "sample --messages $n" "$bin" sample --out "$snap" --messages "$n"
  fi
  size=$(du -sh "$snap/messages.jsonl" | cut -f1)
  measure "usage ($n msgs, $size)" "$bin" usage --snapshot "$snap" --map "$snap/mapping.csv" \
    --out "$work/usage-$n/usage_summary.csv"
  measure "usage --start/--end one quarter" "$bin" usage --snapshot "$snap" --map "$snap/mapping.csv" \
    --start 2026-01-01 --end 2026-03-31 --out "$work/usage-$n-q1/usage_summary.csv"
  tail -1 "$work/last.$$.out"
done
