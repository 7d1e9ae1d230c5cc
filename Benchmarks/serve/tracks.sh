#!/usr/bin/env bash
# Delay from POST /v1/tracks acknowledged to the track being recommendable, on loopback.
#
#   Benchmarks/serve/tracks.sh [--bin DIR] [--work DIR] [--preset sample] [--port 18283] [--samples 300]
#
# The bundle is made when missing: `encore-train generate --preset PRESET` and `encore-train weekly` with the world's
# texts (so the bundle has /text/vectors and a text ridge in /hybrid/model beside the artist prior). Each posted
# track takes the artist and text vector of a bundle track (read from the bundle with h5py when
# ENCORE_PYTHON has it, else the artist alone). The server runs with --fsync always; it is stopped with SIGTERM.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/Benchmarks/serve"
. "$HERE/common.sh"
BIN=""; WORK="${TMPDIR:-/tmp}/encore-tracks-bench"; PRESET=sample; PORT=18283; SAMPLES=300
PY="${ENCORE_PYTHON:-python3}"
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) BIN="$2"; shift 2 ;; --work) WORK="$2"; shift 2 ;; --preset) PRESET="$2"; shift 2 ;;
        --port) PORT="$2"; shift 2 ;; --samples) SAMPLES="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -z "$BIN" ]; then
    BIN="$(release_bin "$ROOT")"
fi
mkdir -p "$WORK"
if [ ! -f "$WORK/bundle.h5.d/current.json" ]; then
    [ -f "$WORK/world/plays.tsv" ] || "$BIN/encore-train" generate --preset "$PRESET" --output "$WORK/world" >&2
    "$BIN/encore-train" weekly --events "$WORK/world/plays.tsv" --catalog "$WORK/world" --texts "$WORK/world/texts.tsv" \
        --output "$WORK/bundle.h5" --iterations 10 --eval-users 0 >&2
fi
awk -F'\t' 'NR > 1 && NR % 97 == 0 { print $1 }' "$WORK/world/plays.tsv" | sort -u | awk 'NR <= 2000' >"$WORK/users.txt"
BUNDLE="$(ls -d "$WORK"/bundle.h5.d/v-*/bundle.h5 | tail -1)"
"$PY" - "$BUNDLE" "$WORK" <<'PYEOF' || true
import json, sys
try:
    import h5py
except ImportError:
    sys.exit(0)
f = h5py.File(sys.argv[1], "r")
artists = f["/catalog/artist_ids"].asstr()[()]
open(sys.argv[2] + "/artists.txt", "w").write("\n".join(artists) + "\n")
if "/text/ids" in f and "/hybrid/model" in f:
    items = {t: i for i, t in enumerate(f["/ids/items"].asstr()[()])}
    track_artist = f["/catalog/track_artist"][()]
    with open(sys.argv[2] + "/text-vectors.jsonl", "w") as out:
        for t, v in list(zip(f["/text/ids"].asstr()[()], f["/text/vectors"][()]))[:2000]:
            a = track_artist[items[t]]
            if a >= 0:
                out.write(json.dumps({"artist": artists[a], "vector": [float(x) for x in v]}) + "\n")
PYEOF
[ -s "$WORK/artists.txt" ] || awk -F'\t' 'NR > 1 { print $1 }' "$WORK/world/artists.tsv" | awk 'NR <= 1000' >"$WORK/artists.txt"
TV=""; [ -s "$WORK/text-vectors.jsonl" ] && TV="--text-vectors $WORK/text-vectors.jsonl"
LOG="$WORK/log-$(date +%s)"
"$BIN/encore-serve" --bundle "$WORK/bundle.h5" --log-dir "$LOG" --port "$PORT" --token bench --fsync always \
    --poll-seconds 0 >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill -9 $SERVER 2>/dev/null || true' EXIT
wait_ready "$PORT" $SERVER "$WORK/server.log" 300
echo "== uptime: $(uptime)"
python3 "$HERE/track_to_recs.py" --port "$PORT" --token bench --users "$WORK/users.txt" --artists "$WORK/artists.txt" $TV \
    --samples "$SAMPLES"
echo "== uptime: $(uptime)"
kill -TERM $SERVER
wait $SERVER && echo "server stopped on SIGTERM"
trap - EXIT
