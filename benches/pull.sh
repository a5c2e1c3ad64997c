#!/usr/bin/env bash
# Benchmark of `subaudit pull`: the project's generator writes a snapshot of N messages over
# 13 months, `twilio-sim` serves it with added latency per request, and `subaudit pull` fetches
# it back. Reports wall time and peak RSS (GNU time) against the bound
# pages x latency / concurrency, and checks the pulled message count.
#
#   benches/pull.sh [MESSAGES] [LATENCY_MS] [CONCURRENCY]     (default: 220000 50 8)
#
# Uses the release build (CARGO_TARGET_DIR is honoured) and ${BENCH_DIR:-/tmp/subaudit-bench}.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-220000} latency=${2:-50} conc=${3:-8}
work=${BENCH_DIR:-/tmp/subaudit-bench}
mkdir -p "$work"
cargo build --release --quiet --bins
bin=${CARGO_TARGET_DIR:-target}/release
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)" >&2; exit 2; }

snap="$work/owlie-$n"
[ -f "$snap/manifest.json" ] || "$bin/subaudit" sample --out "$snap" --messages "$n" > /dev/null
parent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["parent_account_sid"])' "$snap/manifest.json")
read -r since until < <(python3 -c 'import json,sys; w=json.load(open(sys.argv[1]))["window"]; print(w["since"][:10], w["until"][:10])' "$snap/manifest.json")

"$bin/twilio-sim" --snapshot "$snap" --auth-token bench-token --latency-ms "$latency" > "$work/sim.out" 2> /dev/null &
sim=$!
trap 'kill $sim 2>/dev/null || true' EXIT
for _ in $(seq 200); do [ -s "$work/sim.out" ] && break; sleep 0.1; done
url=$(head -1 "$work/sim.out")

rm -rf "$work/pulled"
TWILIO_ACCOUNT_SID=$parent TWILIO_AUTH_TOKEN=bench-token SUBAUDIT_TWILIO_BASE_URL=$url \
  /usr/bin/time -f '%e %M' -o "$work/time.txt" \
  "$bin/subaudit" pull --out "$work/pulled" --since "$since" --until "$until" --concurrency "$conc" --quiet
read -r wall rss_kb < "$work/time.txt"

# Requests the pull needed: one page per 1000 messages of each day (at least one per day),
# plus the small resources (accounts, numbers, services and their lists, usage per account).
python3 - "$work/pulled/manifest.json" "$wall" "$rss_kb" "$latency" "$conc" "$n" <<'PY'
import json, math, sys
m = json.load(open(sys.argv[1])); wall = float(sys.argv[2]); rss = int(sys.argv[3]) / 1024
latency, conc, n = int(sys.argv[4]) / 1000, int(sys.argv[5]), sys.argv[6]
days = m["resources"]["messages"]["files"]
msg_pages = sum(max(1, math.ceil(f["count"] / 1000)) for f in days)
services = m["resources"]["messaging_services"]["count"]
accounts = m["resources"]["accounts"]["count"]
other = 1 + 1 + 1 + 2 * services + accounts
pages = msg_pages + other
bound = pages * latency / conc
print(f"messages pulled      {m['resources']['messages']['count']} (generator asked ~{n}), {len(days)} days")
print(f"requests (pages)     {pages} ({msg_pages} message pages)")
print(f"bound                {bound:.2f}s = {pages} x {latency*1000:.0f} ms / {conc}")
print(f"pull wall time       {wall:.2f}s ({wall / bound:.2f} x bound)")
print(f"pull peak RSS        {rss:.0f} MiB")
PY
