#!/usr/bin/env bash
# Benchmark of the plan's size: generates a snapshot of N messages with the project's own
# generator (once; kept between runs, shared with benches/audit.sh), runs `subaudit plan` on it
# with its mapping.csv, and reports the wall time, the peak RSS (GNU time) and the bytes of
# plan.json, plan.sh, plan.csv and the reseed/ folder. The target (issue 8, docs/benchmarks.md):
# plan.json + plan.sh under 50 MB together at 10M messages; the script exits 1 when they are not.
#
#   benches/plan.sh [MESSAGES ...]          (default: 10000000)
#
# Uses the release build (cargo build --release; CARGO_TARGET_DIR is honoured), copied into the
# work folder first so that another build sharing the target folder cannot swap it mid-run.
# SUBAUDIT_BIN=path measures that binary instead of building one.
# Work folder: ${BENCH_DIR:-/tmp/subaudit-bench} (about 0.7 GB of JSON per million messages).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000000)
label_width=44
source benches/common.sh
limit=$((50 * 1000 * 1000))
bench_setup subaudit-plan-bench

bytes() { stat -c %s "$1"; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1000000 }'; }

status=0
for n in "${sizes[@]}"; do
  ensure_snapshot "$n"
  out="$work/plan-$n"
  measure "plan ($n msgs)" "$bin" plan --snapshot "$snap" --map "$snap/mapping.csv" \
    --out "$out/plan.json"
  json=$(bytes "$out/plan.json")
  shell=$(bytes "$out/plan.sh")
  csv=$(bytes "$out/plan.csv")
  reseed=0 files=0 items=0
  if [ -d "$out/reseed" ]; then # a plan made before the re-seed files has none
    reseed=$(du -sb "$out/reseed" | cut -f1)
    files=$(find "$out/reseed" -type f | wc -l)
    items=$(find "$out/reseed" -type f -name '*.jsonl' -exec cat {} + | wc -l)
  fi
  steps=$(grep -c '"order":' "$out/plan.json" || true)
  printf '  plan.json %s, plan.sh %s (together %s; target < %s), plan.csv %s\n' \
    "$(mb "$json")" "$(mb "$shell")" "$(mb $((json + shell)))" "$(mb "$limit")" "$(mb "$csv")"
  printf '  reseed/: %s in %d files, %d Consents items; %d steps in plan.json\n' \
    "$(mb "$reseed")" "$files" "$items" "$steps"
  if [ $((json + shell)) -ge "$limit" ]; then
    echo "  plan.json + plan.sh are over the target" >&2
    status=1
  fi
done
exit "$status"
