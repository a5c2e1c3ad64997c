#!/usr/bin/env bash
# Benchmark of `subaudit pull`: the project's generator writes a snapshot of N messages over
# 13 months, `twilio-sim` serves it with added latency per request, and `subaudit pull` fetches
# it back at its default settings. Reports wall time, peak RSS and CPU time (GNU time) and the load average against the bound
# pages x latency / concurrency, where pages is the fewest that can hold the data
# (ceil(messages / 1000) plus the small resources), and checks the pulled message count.
# With PEERS naming the folder of the peers (not part of this project), the same run then
# times Twilio's official Python library on the same snapshot with the peers'
# pull_vs_python.sh (pip install twilio), for the ratio.
#
#   benches/pull.sh [MESSAGES] [LATENCY_MS] [CONCURRENCY]     (default: 220000 50 default)
#
# CONCURRENCY `default` passes no --concurrency flag (16). Uses the release build
# (CARGO_TARGET_DIR is honoured) and ${BENCH_DIR:-/tmp/subaudit-bench}.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-220000} latency=${2:-50} conc=${3:-default}
work=${BENCH_DIR:-/tmp/subaudit-bench}
mkdir -p "$work"
cargo build --release --quiet --bins
bin=${CARGO_TARGET_DIR:-target}/release
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)" >&2; exit 2; }

snap="$work/owlie-$n"
[ -f "$snap/manifest.json" ] || "$bin/subaudit" sample --out "$snap" --messages "$n" > /dev/null
parent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["parent_account_sid"])' "$snap/manifest.json")
read -r since until < <(python3 -c 'import json,sys; import datetime as d; w=json.load(open(sys.argv[1]))["window"]; print(w["since"][:10], d.date.fromisoformat(w["until"][:10]) - d.timedelta(days=1))' "$snap/manifest.json")

"$bin/twilio-sim" --snapshot "$snap" --auth-token bench-token --latency-ms "$latency" > "$work/sim.out" 2> /dev/null &
sim=$!
trap 'kill $sim 2>/dev/null || true' EXIT
for _ in $(seq 200); do [ -s "$work/sim.out" ] && break; sleep 0.1; done
url=$(head -1 "$work/sim.out")

flag=(--concurrency "$conc")
[ "$conc" = default ] && { flag=(); conc=16; }
rm -rf "$work/pulled"
TWILIO_ACCOUNT_SID=$parent TWILIO_AUTH_TOKEN=bench-token SUBAUDIT_TWILIO_BASE_URL=$url \
  /usr/bin/time -f '%e %M %U %S' -o "$work/time.txt" \
  "$bin/subaudit" pull --out "$work/pulled" --since "$since" --until "$until" "${flag[@]}" > /dev/null 2> "$work/pull.err"
read -r wall rss_kb user sys < "$work/time.txt"
kill $sim 2>/dev/null || true

# Requests: the pull's own count (its last line); the bound's pages: the fewest that hold the
# messages, plus the small resources (accounts, numbers, services and their two lists each,
# usage per account).
python3 - "$work/pulled/manifest.json" "$wall" "$rss_kb" "$latency" "$conc" "$n" "$work/pull.err" "$user" "$sys" <<'PY'
import json, math, re, sys
m = json.load(open(sys.argv[1])); wall = float(sys.argv[2]); rss = int(sys.argv[3]) / 1024
latency, conc, n = int(sys.argv[4]) / 1000, int(sys.argv[5]), sys.argv[6]
done = [l for l in open(sys.argv[7]) if "done in" in l]
made = re.search(r"(\d+) pages", done[-1]).group(1) if done else "?"
messages = m["resources"]["messages"]["count"]
slices = len(m["resources"]["messages"]["files"])
services = m["resources"]["messaging_services"]["count"]
accounts = m["resources"]["accounts"]["count"]
other = 1 + 1 + 1 + 2 * services + accounts
pages = math.ceil(messages / 1000) + other
bound = pages * latency / conc
print(f"messages pulled      {messages} (generator asked ~{n}), {slices} slices")
print(f"requests             {made} made; fewest pages {pages} ({math.ceil(messages / 1000)} of messages)")
print(f"bound                {bound:.2f}s = {pages} x {latency*1000:.0f} ms / {conc}")
print(f"pull wall time       {wall:.2f}s ({wall / bound:.2f} x bound)")
print(f"pull peak RSS        {rss:.0f} MiB")
# Wall time near the CPU time means the pull waited on the processor, not on the latency.
cpu = float(sys.argv[8]) + float(sys.argv[9])
print(f"pull CPU             {cpu:.2f}s ({sys.argv[8]} user, {sys.argv[9]} sys)")
print(f"load average         {open('/proc/loadavg').read().split()[0]} at the end")
PY

if [ -n "${PEERS:-}" ]; then
  echo "peer, same run (name wall_s rss_mib messages):"
  bash "$PEERS/pull_vs_python.sh" "$bin" "$snap" "$latency" default
fi
