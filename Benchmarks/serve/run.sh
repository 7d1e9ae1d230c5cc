#!/usr/bin/env bash
# Load benchmark of encore-serve on loopback: recommendation latency at a fixed request rate (wrk, paced by a Lua
# delay per connection) and the latency from an accepted play to its "Because you played" row.
#
#   Benchmarks/serve/run.sh [--bin DIR] [--work DIR] [--preset lastfm360k] [--rate 2000] [--duration 30]
#                           [--connections 40] [--port 18282] [--samples 300]
#
# The bundle is the unit WORK/bundle.h5.d (named WORK/bundle.h5), made when missing by `encore-train generate
# --preset PRESET` and `encore-train weekly` (10 iterations, no offline evaluation), with its HNSW index files.
# Everything is bounded in time; the server is stopped with SIGTERM at the end.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/Benchmarks/serve"
. "$HERE/common.sh"
BIN=""; WORK="${TMPDIR:-/tmp}/encore-serve-bench"; PRESET=lastfm360k; RATE=2000; DURATION=30; CONN=40; PORT=18282; SAMPLES=300
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) BIN="$2"; shift 2 ;; --work) WORK="$2"; shift 2 ;; --preset) PRESET="$2"; shift 2 ;;
        --rate) RATE="$2"; shift 2 ;; --duration) DURATION="$2"; shift 2 ;; --connections) CONN="$2"; shift 2 ;;
        --port) PORT="$2"; shift 2 ;; --samples) SAMPLES="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }
if [ -z "$BIN" ]; then
    BIN="$(release_bin "$ROOT")"
fi
mkdir -p "$WORK"
if [ ! -f "$WORK/bundle.h5.d/current.json" ]; then
    [ -f "$WORK/world/plays.tsv" ] || "$BIN/encore-train" generate --preset "$PRESET" --output "$WORK/world" >&2
    "$BIN/encore-train" weekly --events "$WORK/world/plays.tsv" --output "$WORK/bundle.h5" --iterations 10 \
        --eval-users 0 >&2
fi
# Users and tracks to ask for: a sample of the play log's.
if [ ! -s "$WORK/users.txt" ]; then
    awk -F'\t' 'NR > 1 && NR % 97 == 0 { print $1 }' "$WORK/world/plays.tsv" | sort -u | awk 'NR <= 20000' >"$WORK/users.txt"
    awk -F'\t' 'NR > 1 && NR % 89 == 0 { print $2 }' "$WORK/world/plays.tsv" | sort -u | awk 'NR <= 20000' >"$WORK/items.txt"
fi
LOG="$WORK/log-$(date +%s)"
"$BIN/encore-serve" --bundle "$WORK/bundle.h5" --log-dir "$LOG" --port "$PORT" --token bench --fsync always \
    --poll-seconds 0 --max-in-flight 0 >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill -9 $SERVER 2>/dev/null || true' EXIT
wait_ready "$PORT" $SERVER "$WORK/server.log" 300
curl -fsS "http://127.0.0.1:$PORT/ready"; echo
echo "== warm-up (5 s, unpaced)"
wrk -t2 -c8 -d5s -s "$HERE/users.lua" "http://127.0.0.1:$PORT" -- "$WORK/users.txt" 0 2 | tail -8
echo "== recommendations at $RATE requests/s for $DURATION s ($CONN connections, paced)"
wrk -t2 -c"$CONN" -d"${DURATION}s" --timeout 5s -s "$HERE/users.lua" "http://127.0.0.1:$PORT" -- "$WORK/users.txt" "$RATE" 2 | tail -8
echo "== unpaced throughput (10 s, 16 connections)"
wrk -t2 -c16 -d10s -s "$HERE/users.lua" "http://127.0.0.1:$PORT" -- "$WORK/users.txt" 0 2 | tail -8
echo "== play -> Because-you-played row"
python3 "$HERE/play_to_row.py" --port "$PORT" --token bench --users "$WORK/users.txt" --items "$WORK/items.txt" --samples "$SAMPLES"
echo "== server-side latency of the recommendations route (all runs above; from the /metrics histogram)"
curl -fsS "http://127.0.0.1:$PORT/metrics" | python3 -c '
import re, sys
buckets, count, total = [], 0, 0.0
for line in sys.stdin:
    if "route=\"/v1/users/{user}/recommendations\"" not in line: continue
    v = float(line.rsplit(" ", 1)[1])
    m = re.search(r"le=\"([^\"]+)\"", line)
    if line.startswith("encore_http_request_duration_seconds_bucket") and m:
        buckets.append((float("inf") if m.group(1) == "+Inf" else float(m.group(1)), v))
    elif line.startswith("encore_http_request_duration_seconds_count"): count = v
    elif line.startswith("encore_http_request_duration_seconds_sum"): total = v
buckets.sort()
def q(p):
    for le, c in buckets:
        if c >= p * count: return le
print(f"requests {int(count)}, mean {1000 * total / max(count, 1):.3f} ms; " +
      ", ".join(f"p{int(p*100) if p < 0.999 else 99.9} <= {1000 * q(p):g} ms" for p in (0.5, 0.9, 0.99, 0.999)))
'

kill -TERM $SERVER
wait $SERVER && echo "server stopped on SIGTERM"
trap - EXIT
