#!/usr/bin/env bash
# Property-based API testing of encore-serve against docs/openapi.yaml with schemathesis (PyPI), on loopback.
#
#   Benchmarks/schemathesis.sh [--bin DIR] [--work DIR] [--examples 50] [--seed 1] [--port 18283] [--max-time SECS]
#
# Builds encore-serve and encore-train (debug, the package's .build) unless --bin names a folder holding both,
# makes a bundle from data/sample (or /work/main/data/sample) with `encore-train weekly` when WORK has none, starts
# the server with a token on a fresh event log, runs every check schemathesis has (no 5xx, status codes, content
# types, headers and bodies as documented, negative data refused, ...) with at most --examples cases per operation
# and a fixed seed, then stops the server with SIGTERM. Shedding by queueing delay is off for the run
# (--shed-queue-delay-ms 0): schemathesis counts a 503 as a server error, and on a shared machine requests do queue.
# So is the plausibility window of event timestamps (--max-event-ahead-seconds beyond year 9999): it moves with the
# server clock, which the document can only describe in words; the document's static bounds (1970 ... 9999) stay. Exits non-zero when schemathesis finds a failure.
# schemathesis comes from Benchmarks/.venv (made and filled when missing: python3 -m venv; pip install schemathesis).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/Benchmarks/serve/common.sh"
BIN=""; WORK="${TMPDIR:-/tmp}/encore-schemathesis"; EXAMPLES=50; SEED=1; PORT=18283; MAXTIME=""
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) BIN="$2"; shift 2 ;; --work) WORK="$2"; shift 2 ;; --examples) EXAMPLES="$2"; shift 2 ;;
        --seed) SEED="$2"; shift 2 ;; --port) PORT="$2"; shift 2 ;; --max-time) MAXTIME="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
VENV="$ROOT/Benchmarks/.venv"
if [ ! -x "$VENV/bin/schemathesis" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q schemathesis
fi
if [ -z "$BIN" ]; then
    (cd "$ROOT" && swift build --product encore-serve >&2 && swift build --product encore-train >&2)
    BIN="$(cd "$ROOT" && swift build --show-bin-path)"
fi
SAMPLE="$ROOT/data/sample"; [ -f "$SAMPLE/plays.tsv" ] || SAMPLE=/work/main/data/sample
mkdir -p "$WORK"
if [ ! -f "$WORK/bundle.h5.d/current.json" ]; then
    "$BIN/encore-train" weekly --events "$SAMPLE/plays.tsv" --output "$WORK/bundle.h5" --iterations 5 --eval-users 0 >&2
fi
LOG="$WORK/log-$(date +%s)"
TOKEN=schemathesis-token
"$BIN/encore-serve" --bundle "$WORK/bundle.h5" --log-dir "$LOG" --port "$PORT" --token "$TOKEN" --poll-seconds 0 \
    --fsync never --shed-queue-delay-ms 0 \
    --max-event-ahead-seconds 300000000000 >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill -9 $SERVER 2>/dev/null || true' EXIT
wait_ready "$PORT" $SERVER "$WORK/server.log"
START=$(date +%s)
set +e
"$VENV/bin/schemathesis" run "$ROOT/docs/openapi.yaml" --url "http://127.0.0.1:$PORT" \
    -H "Authorization: Bearer $TOKEN" --checks all --max-examples "$EXAMPLES" --seed "$SEED" \
    --generation-database none --workers 2 --request-timeout 10 --no-color \
    --report junit --report-dir "$WORK/report" ${MAXTIME:+--max-time "$MAXTIME"}
STATUS=$?
set -e
echo "schemathesis exit status $STATUS in $(( $(date +%s) - START )) s (report: $WORK/report; server log: $WORK/server.log)"
kill -0 $SERVER 2>/dev/null || { echo "the server died during the run; see $WORK/server.log" >&2; exit 1; }
kill -TERM $SERVER
wait $SERVER || true
trap - EXIT
exit $STATUS
