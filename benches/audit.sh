#!/usr/bin/env bash
# Benchmark of the offline audit: generates snapshots of N messages with the project's own
# generator (once; kept between runs), then times each stage on them, reporting wall time and
# peak RSS (GNU time). Rerun it to check the figures of docs/benchmarks.md:
#
#   benches/audit.sh [MESSAGES ...]          (default: 1000000 10000000)
#
# Stages: `wc -l` (reading the bytes once: the floor), `optouts` (the opt-out engine), the
# DuckDB peer computing the same optouts_lost.csv in SQL (checked identical byte for byte),
# `optouts` again on a copy whose messages are compressed with zstd (the ratio and the read
# cost of `pull --compress` snapshots; needs the zstd command), `usage` (summary, pivot,
# attribution through polars; whole snapshot and one quarter), `audit`
# (everything, plus the plan and the page). The peer runs when PEERS names the folder holding
# duckdb_lost.py (pip install duckdb); it is not part of this project.
# Uses the release build (cargo build --release; CARGO_TARGET_DIR is honoured), copied into the
# work folder first so that another build sharing the target folder cannot swap it mid-run.
# Work folder: ${BENCH_DIR:-/tmp/subaudit-bench} (about 0.7 GB of JSON per million messages).
# SUBAUDIT_BIN=path times that binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000000 10000000)
source benches/common.sh
bench_setup subaudit-bench

echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
printf '%-40s %9s %12s\n' "step" "wall" "peak RSS"
for n in "${sizes[@]}"; do
  ensure_snapshot "$n"
  size=$(du -sh "$snap/messages.jsonl" | cut -f1)
  # Every step below reads the file from the page cache when it fits in memory: one untimed
  # read first, so that the first timed step (and whichever tool goes first) is not charged
  # for the disk. A file larger than the memory is read from the disk by every step alike.
  cat "$snap/messages.jsonl" > /dev/null
  out="$work/out-$n"
  measure "wc -l messages ($size)" wc -l "$snap/messages.jsonl"
  measure "optouts ($n msgs)" "$bin" optouts --snapshot "$snap" --map "$snap/mapping.csv" \
    --out "$out/optouts_lost.csv"
  if [ -n "${PEERS:-}" ]; then
    measure "peer: duckdb_lost.py (same CSV)" python3 "$PEERS/duckdb_lost.py" "$snap" \
      "$snap/mapping.csv" "$out/duckdb_lost.csv"
    if cmp -s "$out/optouts_lost.csv" "$out/duckdb_lost.csv"; then
      echo "  optouts_lost.csv and the peer's CSV are identical"
    elif [ "$(head -1 "$out/optouts_lost.csv")" = "$(head -1 "$out/duckdb_lost.csv")" ] \
      && cmp -s <(tail -n +2 "$out/optouts_lost.csv" | LC_ALL=C sort) \
                <(tail -n +2 "$out/duckdb_lost.csv" | LC_ALL=C sort); then
      # The peer orders customers byte-wise; subaudit case-folds customer names (docs/outputs.md).
      echo "  optouts_lost.csv and the peer's CSV hold the same rows (the peer sorts customer names byte-wise, subaudit case-folded)"
    else
      echo "  optouts_lost.csv and the peer's CSV DIFFER" >&2
    fi
    rm -f "$out/duckdb_lost.csv" # compared: only disk room from here on
  fi
  # The same snapshot with its messages compressed (zstd level 3, as `pull --compress` writes
  # them; the manifest's messages.jsonl is read from messages.jsonl.zst): ratio and read cost.
  zsnap="$work/owlie-$n-zst"
  if { [ ! -f "$zsnap/messages.jsonl.zst" ] || [ ! -f "$zsnap/manifest.json" ]; } \
    && command -v zstd > /dev/null; then
    mkdir -p "$zsnap"
    # "$snap/": the snapshot folder may be a symbolic link (a shared copy of the data).
    find "$snap/" -maxdepth 1 -type f ! -name messages.jsonl -exec cp {} "$zsnap/" \;
    measure "zstd -3 messages (compress by hand)" zstd -3 -q -f -o "$zsnap/messages.jsonl.zst" \
      "$snap/messages.jsonl"
  fi
  if [ -f "$zsnap/messages.jsonl.zst" ]; then
    plain_bytes=$(stat -c %s "$snap/messages.jsonl")
    zst_bytes=$(stat -c %s "$zsnap/messages.jsonl.zst")
    echo "  messages.jsonl.zst: $zst_bytes bytes of $plain_bytes ($(awk "BEGIN{printf \"%.1f\", $plain_bytes/$zst_bytes}")x smaller)"
    measure "optouts, compressed snapshot" "$bin" optouts --snapshot "$zsnap" \
      --map "$snap/mapping.csv" --out "$out/optouts_lost_zst.csv"
    cmp -s "$out/optouts_lost.csv" "$out/optouts_lost_zst.csv" \
      && echo "  same optouts_lost.csv from the compressed snapshot" \
      || echo "  optouts_lost.csv from the compressed snapshot DIFFERS" >&2
    rm -f "$out/optouts_lost_zst.csv"
  fi
  measure "usage (whole snapshot)" "$bin" usage --snapshot "$snap" --map "$snap/mapping.csv" \
    --out "$out/usage/usage_summary.csv"
  measure "usage --start/--end one quarter" "$bin" usage --snapshot "$snap" --map "$snap/mapping.csv" \
    --start 2026-01-01 --end 2026-03-31 --out "$out/usage-q1/usage_summary.csv"
  measure "audit (everything)" "$bin" audit --snapshot "$snap" --map "$snap/mapping.csv" \
    --out "$out/report"
  echo "  load average after $n: $(cut -d' ' -f1-3 /proc/loadavg)"
done
