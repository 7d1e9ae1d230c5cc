#!/usr/bin/env bash
# Overload run of encore-serve on loopback with wrk (Debian's): where the recommendations route's p99 passes 5 ms,
# what happens at twice that rate with and without shedding, how fast it recovers, and whether 1 000 idle
# connections keep real requests from being served.
#
#   Benchmarks/load.sh [--bin DIR] [--work DIR] [--rates "500 1000 ..."] [--step 10] [--duration 20]
#                      [--connections 256] [--port 18284] [--knee RATE] [--paired ROUNDS]
#
# 1. The knee: with shedding off (--shed-queue-delay-ms 0 --max-in-flight 0), paced open-loop GETs of
#    /v1/users/{user}/recommendations (Benchmarks/serve/overload.lua, wrk's delay() per connection) at each rate of
#    --rates for --step seconds; the knee is the first rate whose p99 passes 5 ms (or --knee RATE skips the search).
# 2. At 2x the knee for --duration seconds: with the default shedding (the connection guard's 503 + Retry-After
#    while a queue stands, counted; the p99 of the admitted requests bounded from wrk's histogram, see overload.lua),
#    then with shedding off for contrast.
# 3. Recovery: right after the overload run, 0.5x the knee for 5 s (503s counted).
# 4. 1 000 idle connections (Benchmarks/serve/idle_connections.py: connected, silent) held while wrk runs 0.5x the
#    knee for 5 s; then whether the header timeout closed them.
# With --paired ROUNDS (needs --knee), only a paired comparison: ROUNDS rounds, each the default shedding then
# shedding off, every one a fresh server at 2x the knee for --duration seconds then 0.5x the knee for 5 s (recovery),
# with `uptime` before each, so that both sides see the same machine.
# The bundle is WORK/bundle.h5 made from data/sample (or /work/main/data/sample) by a release `encore-train weekly`
# when missing. Every run is bounded in time; the servers are stopped with SIGTERM. `uptime` is printed before each
# phase: the machine has 2 shared cores, wrk and the server share them.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
HERE="$ROOT/Benchmarks/serve"
. "$HERE/common.sh"
BIN=""; WORK="${TMPDIR:-/tmp}/encore-load"; RATES="500 1000 2000 3000 4000 5000 6000 8000 10000 12000"; STEP=10
DURATION=20; CONN=256; PORT=18284; KNEE=""; PAIRED=0
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) BIN="$2"; shift 2 ;; --work) WORK="$2"; shift 2 ;; --rates) RATES="$2"; shift 2 ;;
        --step) STEP="$2"; shift 2 ;; --duration) DURATION="$2"; shift 2 ;; --connections) CONN="$2"; shift 2 ;;
        --port) PORT="$2"; shift 2 ;; --knee) KNEE="$2"; shift 2 ;;
        --paired) PAIRED="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[ "$PAIRED" -eq 0 ] || [ -n "$KNEE" ] || { echo "--paired needs --knee RATE" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }
if [ -z "$BIN" ]; then
    BIN="$(release_bin "$ROOT")"
fi
SAMPLE="$ROOT/data/sample"; [ -f "$SAMPLE/plays.tsv" ] || SAMPLE=/work/main/data/sample
mkdir -p "$WORK"
if [ ! -f "$WORK/bundle.h5.d/current.json" ]; then
    "$BIN/encore-train" weekly --events "$SAMPLE/plays.tsv" --output "$WORK/bundle.h5" --iterations 10 --eval-users 0 >&2
fi
[ -s "$WORK/users.txt" ] || awk -F'\t' 'NR > 1 { print $1 }' "$SAMPLE/plays.tsv" | sort -u >"$WORK/users.txt"

SERVER=""
trap '[ -n "$SERVER" ] && kill -9 $SERVER 2>/dev/null || true' EXIT
start_server() {  # extra flags...
    "$BIN/encore-serve" --bundle "$WORK/bundle.h5" --log-dir "$WORK/log-$(date +%s%N)" --port "$PORT" --token load \
        --poll-seconds 0 --fsync never "$@" >>"$WORK/server.log" 2>&1 &
    SERVER=$!
    wait_ready "$PORT" $SERVER "$WORK/server.log"
    wrk -t2 -c8 -d3s -s "$HERE/overload.lua" "http://127.0.0.1:$PORT" -- "$WORK/users.txt" 0 2 >/dev/null  # warm-up
}
stop_server() { kill -TERM $SERVER; wait $SERVER || true; SERVER=""; }
run() {  # rate seconds
    wrk -t2 -c"$CONN" -d"$2s" --timeout 10s -s "$HERE/overload.lua" "http://127.0.0.1:$PORT" -- "$WORK/users.txt" "$1" 2 \
        | sed -n '/^requests /,$p'
}
p99() { awk '/^all p99 / { print $3 }'; }

echo "== load: $(uptime)"
if [ "$PAIRED" -gt 0 ]; then
    OVER=$((2 * KNEE)); LOW=$((KNEE / 2))
    for round in $(seq 1 "$PAIRED"); do
        for mode in on off; do
            if [ $mode = on ]; then flags=(); else flags=(--shed-queue-delay-ms 0 --max-in-flight 0); fi
            echo "== round $round, shedding $mode: $OVER/s for $DURATION s, then $LOW/s for 5 s; load: $(uptime)"
            start_server ${flags[@]+"${flags[@]}"}
            run "$OVER" "$DURATION"
            echo "-- recovery: $LOW/s for 5 s right after"
            run "$LOW" 5
            echo "-- shed counters: $(curl -fsS "http://127.0.0.1:$PORT/metrics" \
                | grep -E '^encore_http_(requests_shed_total|requests_waiting|queue_standing)' | tr '\n' ' ')"
            stop_server
        done
    done
    trap - EXIT
    exit 0
fi
if [ -z "$KNEE" ]; then
    echo "== 1. the knee: shedding off, $STEP s per rate, $CONN connections"
    start_server --shed-queue-delay-ms 0 --max-in-flight 0
    for r in $RATES; do
        out="$(run "$r" "$STEP")"
        p="$(echo "$out" | p99)"
        echo "rate $r/s: p99 $p ms; $(echo "$out" | head -1)"
        if awk -v p="$p" 'BEGIN { exit !(p > 5) }'; then KNEE=$r; break; fi
    done
    stop_server
    [ -n "$KNEE" ] || { echo "p99 stayed under 5 ms up to the last rate; give higher --rates" >&2; exit 1; }
fi
OVER=$((2 * KNEE)); LOW=$((KNEE / 2))
echo "== knee $KNEE/s (first rate with p99 > 5 ms); overload at $OVER/s, recovery at $LOW/s"

echo "== 2. $OVER/s for $DURATION s with the default shedding; load: $(uptime)"
start_server
run "$OVER" "$DURATION"
echo "== 3. recovery: $LOW/s for 5 s right after"
run "$LOW" 5
echo "-- shed counters: $(curl -fsS "http://127.0.0.1:$PORT/metrics" \
    | grep -E '^encore_http_(requests_shed_total|requests_waiting|queue_standing)' | tr '\n' ' ')"

echo "== 4. 1 000 idle connections held while $LOW/s for 5 s; load: $(uptime)"
python3 "$HERE/idle_connections.py" --port "$PORT" --count 1000 --seconds 14 &
IDLE=$!
sleep 2
run "$LOW" 5
wait $IDLE
echo "-- $(curl -fsS "http://127.0.0.1:$PORT/metrics" | grep -E '^encore_http_connections(_timed_out_total.*header| )' | tr '\n' ' ')"
stop_server

echo "== 2b. contrast: $OVER/s for $DURATION s with shedding off; load: $(uptime)"
start_server --shed-queue-delay-ms 0 --max-in-flight 0
run "$OVER" "$DURATION"
stop_server
trap - EXIT
