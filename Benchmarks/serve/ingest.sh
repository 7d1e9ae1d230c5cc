#!/usr/bin/env bash
# Ingest throughput of encore-serve with fsync always: acknowledged POST /v1/events batches (one event each) per
# second at 1 and at 32 concurrent connections (wrk, closed loop, loopback), and the fsyncs they took (group commit:
# concurrent requests share one). Everything is bounded in time; the server is stopped at the end.
#
#   Benchmarks/serve/ingest.sh --bin DIR [--work DIR] [--duration 10] [--port 18283] [--connections "1 32"]
#                              [--bundle B --plays PLAYS.tsv]
#
# The bundle is the sample unit WORK/bundle/sample.h5.d (made when missing, as scripts/crash-test.sh does), or
# --bundle with the play log it was trained on (--plays, for item ids).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/Benchmarks/serve"
. "$HERE/common.sh"
BIN=""; WORK="${TMPDIR:-/tmp}/encore-ingest-bench"; DURATION=10; PORT=18283; CONNS="1 32"; BUNDLE=""; PLAYS=""
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) BIN="$2"; shift 2 ;; --work) WORK="$2"; shift 2 ;; --duration) DURATION="$2"; shift 2 ;;
        --port) PORT="$2"; shift 2 ;; --connections) CONNS="$2"; shift 2 ;;
        --bundle) BUNDLE="$2"; shift 2 ;; --plays) PLAYS="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$BIN" ] || { echo "give --bin DIR (a release build with encore-serve and encore-train)" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }
mkdir -p "$WORK"
if [ -z "$BUNDLE" ]; then
    BUNDLE="$WORK/bundle/sample.h5"; PLAYS="$WORK/world/plays.tsv"
    if [ ! -f "$BUNDLE.d/current.json" ]; then
        "$BIN/encore-train" generate --preset sample --output "$WORK/world" >&2
        "$BIN/encore-train" weekly --events "$WORK/world/plays.tsv" --output "$BUNDLE" --eval-users 0 >&2
    fi
fi
awk -F'\t' 'NR > 1 && NR % 5 == 0 { print $2 }' "$PLAYS" | sort -u | awk 'NR <= 2000' >"$WORK/items.txt"
# A server from before --insecure-no-auth or other flags takes ENCORE_SERVE_EXTRA verbatim.
EXTRA="${ENCORE_SERVE_EXTRA:-}"
echo "load: $(uptime)"
for c in $CONNS; do
    LOG="$WORK/log-$c-$(date +%s%N)"
    # shellcheck disable=SC2086
    "$BIN/encore-serve" --bundle "$BUNDLE" --log-dir "$LOG" --port "$PORT" --token bench --fsync always \
        --poll-seconds 0 --max-in-flight 0 $EXTRA >"$WORK/server-$c.log" 2>&1 &
    SERVER=$!
    trap 'kill -9 $SERVER 2>/dev/null || true' EXIT
    wait_ready "$PORT" $SERVER "$WORK/server-$c.log" 60
    echo "== $c connection(s), ${DURATION} s"
    wrk -t1 -c"$c" -d"${DURATION}s" --timeout 5s -s "$HERE/ingest.lua" "http://127.0.0.1:$PORT" -- \
        "$WORK/items.txt" bench "c$c" | grep -E "Requests/sec|Latency|requests in|Non-2xx"
    curl -fsS "http://127.0.0.1:$PORT/metrics" | grep -E "^encore_(events_applied_total|event_log_fsyncs_total|event_log_last_sequence) " || true
    kill -TERM $SERVER; wait $SERVER || true
done
