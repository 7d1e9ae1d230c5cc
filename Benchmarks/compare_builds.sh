#!/usr/bin/env bash
# Side-by-side speed of two encore-train builds (e.g. the commit before a refactor and after it), in one run on the
# same data, alternating the two binaries round by round so drift in machine load hits both alike. Reports medians.
#
#   Benchmarks/compare_builds.sh OLD_BIN NEW_BIN [ROUNDS]
#
# Data (made by `encore-train generate`, not committed): data/sample (--preset sample --seed 42) and
# data/lastfm360k (--preset lastfm360k --seed 42). Measured:
#   1. ALS: `fit` on the Last.fm-360K-shaped plays and on the sample plays, 64 factors, CG, 2 threads: seconds
#      per iteration (the fit's own s/iter over 5 iterations).
#   2. HNSW: `ann-bench` single-thread QPS at each ef and build time, over the Last.fm-shaped ALS item factors
#      (cosine and inner product, user factors as queries) and over clustered random vectors (l2).
#   3. The weekly job on the sample world: wall seconds (fresh work directory each time).
# Output: a table on stdout and the raw numbers in Benchmarks/results/compare_builds.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?old encore-train binary}; new=${2:?new encore-train binary}; rounds=${3:-3}
py=${ENCORE_PYTHON:-.venv/bin/python}
out=Benchmarks/results; mkdir -p "$out"; raw="$out/compare_builds.tsv"; : > "$raw"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for d in data/sample data/lastfm360k; do [ -f "$d/plays.tsv" ] || { echo "missing $d (encore-train generate)" >&2; exit 1; }; done

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
# Vectors for ann-bench: factors of one fit of the Last.fm-shaped world (by the new build; both builds read the same
# files), and clustered random vectors.
"$new" fit --input data/lastfm360k/plays.tsv --output "$tmp/lfm.h5" --factors 64 --iterations 15 --threads 2 >/dev/null 2>&1
"$py" - "$tmp" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
with h5py.File(f"{d}/lfm.h5") as f:
    items = f["/cf/item_factors"][:].astype(np.float32); users = f["/cf/user_factors"][:].astype(np.float32)
rng = np.random.default_rng(1)
np.save(f"{d}/items.npy", items)
np.save(f"{d}/users.npy", users[rng.choice(len(users), 2000, replace=False)])
centers = rng.standard_normal((100, 64)).astype(np.float32)
def clustered(n):
    return (centers[rng.integers(0, 100, n)] + 0.3 * rng.standard_normal((n, 64))).astype(np.float32)
np.save(f"{d}/mix.npy", clustered(200_000)); np.save(f"{d}/mixq.npy", clustered(2_000))
PY

als() {  # binary, input -> median s/iter of the fit
    "$1" fit --input "$2" --output "$tmp/als.h5" --factors 64 --iterations 5 --threads 2 2>&1 \
        | grep -o 's/iter=[0-9.]*' | tail -1 | cut -d= -f2
}
ann() {  # binary, label, base, queries, metric -> rows "label ef qps" and "label build s"
    "$1" ann-bench --base "$3" --queries "$4" --metric "$5" --ef 20,40,80,160,320 --runs 3 --json "$tmp/ann.json" >/dev/null 2>&1
    "$py" - "$tmp/ann.json" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); label = sys.argv[2]
print(f"{label} build_s\t{r['build_seconds']:.2f}")
for s in r["results"]:
    print(f"{label} recall@ef{s['ef']}\t{s['recall']:.4f}")
    print(f"{label} qps@ef{s['ef']}\t{s['qps']:.0f}")
PY
}
weekly() {  # binary -> wall seconds
    local start end; rm -rf "$tmp/w.h5"* "$tmp/w-report"
    start=$(date +%s.%N)
    "$1" weekly --events data/sample/plays.tsv --output "$tmp/w.h5" --threads 2 >/dev/null 2>&1
    end=$(date +%s.%N); echo "$end - $start" | bc
}
for r in $(seq 1 "$rounds"); do
    for side in old new; do
        bin=$old; [ "$side" = new ] && bin=$new
        printf '%s\tals lastfm360k s/iter\t%s\n' "$side" "$(als "$bin" data/lastfm360k/plays.tsv)" >> "$raw"
        printf '%s\tals sample s/iter\t%s\n' "$side" "$(als "$bin" data/sample/plays.tsv)" >> "$raw"
        ann "$bin" "hnsw lfm-items cosine" "$tmp/items.npy" "$tmp/users.npy" cosine | sed "s/^/$side\t/" >> "$raw"
        ann "$bin" "hnsw lfm-items ip" "$tmp/items.npy" "$tmp/users.npy" ip | sed "s/^/$side\t/" >> "$raw"
        ann "$bin" "hnsw mixture l2" "$tmp/mix.npy" "$tmp/mixq.npy" l2 | sed "s/^/$side\t/" >> "$raw"
        printf '%s\tweekly sample wall s\t%s\n' "$side" "$(weekly "$bin")" >> "$raw"
        echo "round $r $side done; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    done
done
"$py" - "$raw" <<'PY'
import sys, statistics, collections
vals = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    side, name, v = line.rstrip("\n").split("\t")
    try: vals[name][side].append(float(v))
    except ValueError: pass
print(f"{'measure':60s} {'old':>10s} {'new':>10s} {'new/old':>8s}")
for name, d in vals.items():
    o, n = statistics.median(d["old"]), statistics.median(d["new"])
    print(f"{name:60s} {o:10.3f} {n:10.3f} {n / o if o else float('nan'):8.3f}")
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
