#!/usr/bin/env bash
# Benchmark of the opt-out engine: generates a snapshot of N messages with the project's own
# generator, then times `subaudit optouts` and `subaudit audit` on it, reporting wall time
# and peak RSS (GNU time). Rerun it to check the README's figures:
#
#   benches/optouts.sh [MESSAGES ...]        (default: 1000000)
#
# Uses the release build (cargo build --release; CARGO_TARGET_DIR is honoured) and a work
# folder under ${BENCH_DIR:-/tmp/subaudit-bench}; snapshots are kept there between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000000)
work=${BENCH_DIR:-/tmp/subaudit-bench}
mkdir -p "$work"
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/subaudit
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)" >&2; exit 2; }

measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f '%e %M' -o "$work/time.txt" "$@" > /dev/null
  read -r wall rss_kb < "$work/time.txt"
  printf '%-34s %8ss %8.0f MiB\n' "$label" "$wall" "$((rss_kb / 1024))"
}

printf '%-34s %9s %12s\n' "step" "wall" "peak RSS"
for n in "${sizes[@]}"; do
  snap="$work/owlie-$n"
  if [ ! -f "$snap/manifest.json" ]; then
    measure "sample --messages $n" "$bin" sample --out "$snap" --messages "$n"
  fi
  size=$(du -sh "$snap/messages.jsonl" | cut -f1)
  measure "optouts ($n msgs, $size)" "$bin" optouts --snapshot "$snap" --map "$snap/mapping.csv" --out "$work/lost.csv"
  measure "audit ($n msgs)" "$bin" audit --snapshot "$snap" --map "$snap/mapping.csv" --out "$work/report"
done
