# Setup shared by benches/audit.sh and benches/plan.sh (sourced from the repository root, not
# run): the work folder, GNU time, the release build copied aside, `measure`, and the snapshots
# of the project's own generator, kept between runs and shared by both scripts.
#
#   bench_setup NAME     $work (${BENCH_DIR:-/tmp/subaudit-bench}, about 0.7 GB of JSON per
#                        million messages) and $bin: the release build (cargo build --release;
#                        CARGO_TARGET_DIR is honoured), or SUBAUDIT_BIN=path, copied into the
#                        work folder as NAME.<pid> so that another build sharing the target
#                        folder cannot swap it mid-run; removed on exit.
#   measure LABEL CMD... runs CMD (its output to a scratch file) and prints LABEL, the wall time
#                        and the peak RSS; labels are $label_width wide (default 40).
#   ensure_snapshot N    sets $snap to $work/owlie-N, generated (and timed) when missing.

work=${BENCH_DIR:-/tmp/subaudit-bench}
label_width=${label_width:-40}

bench_setup() { # name of the binary's copy
  mkdir -p "$work"
  [ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)" >&2; exit 2; }
  local src=${SUBAUDIT_BIN:-}
  if [ -z "$src" ]; then
    cargo build --release --quiet
    src="${CARGO_TARGET_DIR:-target}/release/subaudit"
  fi
  bin="$work/$1.$$"
  cp "$src" "$bin"
  trap 'rm -f "$bin" "$work/time.$$.txt" "$work/last.$$.out"' EXIT
}

measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f '%e %M' -o "$work/time.$$.txt" "$@" > "$work/last.$$.out"
  read -r wall rss_kb < "$work/time.$$.txt"
  printf "%-${label_width}s %8ss %8.0f MiB\n" "$label" "$wall" "$((rss_kb / 1024))"
}

ensure_snapshot() { # messages
  snap="$work/owlie-$1"
  if [ ! -f "$snap/manifest.json" ]; then
    measure "sample --messages $1" "$bin" sample --out "$snap" --messages "$1"
  fi
}
