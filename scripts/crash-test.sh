#!/usr/bin/env bash
# Crash test of encore-serve: every acknowledged event survives a SIGKILL, exactly once, in the log and in the state.
#
#   scripts/crash-test.sh [--bin DIR] [--work DIR] [--kills N] [--port P]
#
# 1. Builds encore-serve and encore-train in release (or takes them from --bin DIR).
# 2. Makes the sample bundle (`encore-train generate --preset sample` + `encore-train weekly`), or reuses
#    WORK/bundle/sample.h5 (published as the unit WORK/bundle/sample.h5.d).
# 3. Starts encore-serve (fsync always, a token); a Python client streams batches of events with unique ids to
#    POST /v1/events and records the ids acknowledged with 200; the server is SIGKILLed mid-stream, restarted, and
#    the stream goes on, N times.
# 4. Checks: `encore-train events --log-dir ... --check --tsv` lists every acknowledged event exactly once and no
#    event id twice; every acknowledged listened play is in the user's real-time state (GET /v1/users/{u}/state,
#    a debug endpoint) and absent from the user's recommendations; re-sending every acknowledged event after the
#    last restart is refused as duplicates. Exits non-zero on any loss or duplicate.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN=""
WORK="${TMPDIR:-/tmp}/encore-crash-test"
KILLS=3
PORT=18181
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) BIN="$2"; shift 2 ;;
        --work) WORK="$2"; shift 2 ;;
        --kills) KILLS="$2"; shift 2 ;;
        --port) PORT="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -z "$BIN" ]; then
    (cd "$ROOT" && swift build -c release --scratch-path .build-release --product encore-serve >&2 \
        && swift build -c release --scratch-path .build-release --product encore-train >&2)
    BIN="$(cd "$ROOT" && swift build -c release --scratch-path .build-release --show-bin-path)"
fi
mkdir -p "$WORK"
BUNDLE="$WORK/bundle/sample.h5"
if [ ! -f "$BUNDLE.d/current.json" ]; then
    "$BIN/encore-train" generate --preset sample --output "$WORK/world" >&2
    "$BIN/encore-train" weekly --events "$WORK/world/plays.tsv" --output "$BUNDLE" --eval-users 0 >&2
fi
# Users and tracks of the play log (a sample), plus new users the bundle does not know.
awk -F'\t' 'NR > 1 && NR % 7 == 0 { print $1 }' "$WORK/world/plays.tsv" | sort -u | awk 'NR <= 300' >"$WORK/users.txt"
awk -F'\t' 'NR > 1 && NR % 5 == 0 { print $2 }' "$WORK/world/plays.tsv" | sort -u | awk 'NR <= 2000' >"$WORK/items.txt"
LOG="$WORK/log-$(date +%s)"
TOKEN="crash-test-token"
SERVER_PID=""
cleanup() { if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -9 "$SERVER_PID"; fi; }
trap cleanup EXIT

start_server() {
    "$BIN/encore-serve" --bundle "$BUNDLE" --log-dir "$LOG" --port "$PORT" --token "$TOKEN" --fsync always \
        --poll-seconds 0 >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 600); do
        if curl -fsS "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1; then return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "server died while starting; see $WORK/server.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "server not ready after 60 s" >&2; exit 1
}

ACKED="$WORK/acked.jsonl"
: >"$ACKED"
# The client: streams batches until told to stop (a file), records acknowledged events, survives connection errors.
cat >"$WORK/client.py" <<'PY'
import json, os, random, sys, time, urllib.request, urllib.error
port, token, acked_path, stop_path, prefix, users_path, items_path = sys.argv[1:8]
users = [l.strip() for l in open(users_path) if l.strip()] + [f"crash-new-{n}" for n in range(20)]
items = [l.strip() for l in open(items_path) if l.strip()]
types = ["play"] * 8 + ["like", "skip"]
rng = random.Random(prefix)
n = 0
start = int(time.time())  # events stay within the server's plausibility window (a day ahead)
acked = open(acked_path, "a")
while not os.path.exists(stop_path):
    batch = []
    for _ in range(rng.randint(1, 5)):
        n += 1
        t = rng.choice(types)
        e = {"event_id": f"{prefix}-{n}", "user": rng.choice(users), "item": rng.choice(items), "type": t,
             "timestamp": start + n}
        if t == "play":
            e["ms_played"] = rng.choice([45_000, 180_000, 12_000])
        batch.append(e)
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/events", data=json.dumps(batch).encode(),
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            body = json.loads(r.read())
            if r.status == 200 and body.get("accepted", 0) + body.get("duplicates", 0) == len(batch):
                for e in batch:
                    acked.write(json.dumps(e) + "\n")
                acked.flush()
    except (urllib.error.URLError, ConnectionError, OSError, ValueError):
        time.sleep(0.05)
PY

start_server
for round in $(seq 1 "$KILLS"); do
    rm -f "$WORK/stop"
    python3 "$WORK/client.py" "$PORT" "$TOKEN" "$ACKED" "$WORK/stop" "r$round" "$WORK/users.txt" "$WORK/items.txt" &
    CLIENT=$!
    sleep "$(python3 -c 'import random; print(round(random.uniform(1.5, 3.0), 2))')"
    kill -9 "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    echo "round $round: SIGKILLed the server mid-stream after $(wc -l <"$ACKED") acknowledged events in all" >&2
    start_server
    sleep 0.5
    touch "$WORK/stop"
    wait "$CLIENT"
done

"$BIN/encore-train" events --log-dir "$LOG" --check --tsv "$WORK/log.tsv" >&2
python3 - "$ACKED" "$WORK/log.tsv" "$PORT" "$TOKEN" <<'PY'
import csv, json, sys, urllib.parse, urllib.request
acked_path, tsv, port, token = sys.argv[1:5]
acked = [json.loads(l) for l in open(acked_path)]
ids = {}
with open(tsv, newline="") as f:
    for row in csv.DictReader(f, delimiter="\t"):
        ids[row["event_id"]] = ids.get(row["event_id"], 0) + 1
twice = [i for i, c in ids.items() if c > 1]
lost = [e["event_id"] for e in acked if ids.get(e["event_id"], 0) == 0]
print(f"acknowledged {len(acked)}, in the log {len(ids)} distinct ids ({sum(ids.values())} records), "
      f"lost {len(lost)}, duplicated {len(twice)}")
def get(path):
    # /state needs the token like the writes.
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())
missing_state, in_recs = [], []
states = {}
listened = [e for e in acked if e["type"] == "play" and e.get("ms_played", 0) >= 30000]
for e in listened:
    u = e["user"]
    if u not in states:
        states[u] = get(f"/v1/users/{urllib.parse.quote(u)}/state")
        states[u]["recs"] = [x["item"] for x in get(f"/v1/users/{urllib.parse.quote(u)}/recommendations?k=50")["items"]]
    if e["item"] not in states[u]["played"]:
        missing_state.append(e["event_id"])
    if e["item"] in states[u]["recs"]:
        in_recs.append(e["event_id"])
print(f"listened plays {len(listened)}: missing from the state {len(missing_state)}, still recommended {len(in_recs)}")
# Re-sending every acknowledged event: all duplicates.
dups = 0
for i in range(0, len(acked), 500):
    batch = acked[i:i + 500]
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/events", data=json.dumps(batch).encode(),
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        body = json.loads(r.read())
        if body["accepted"] != 0:
            print(f"re-sent batch accepted {body['accepted']} events: the seen set lost them", file=sys.stderr)
            sys.exit(1)
        dups += body["duplicates"]
print(f"re-sent {len(acked)} acknowledged events: {dups} refused as duplicates")
ok = not lost and not twice and not missing_state and not in_recs and dups == len(acked) and len(acked) > 0
print("CRASH TEST", "PASSED" if ok else "FAILED")
sys.exit(0 if ok else 1)
PY
# Graceful shutdown on SIGTERM.
kill -TERM "$SERVER_PID"
if wait "$SERVER_PID"; then echo "server stopped on SIGTERM with status 0" >&2; else echo "server exit status $? on SIGTERM" >&2; exit 1; fi
SERVER_PID=""
