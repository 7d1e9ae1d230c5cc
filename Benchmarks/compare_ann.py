#!/usr/bin/env python3
"""Side-by-side comparison of Encore's HNSW index with hnswlib 0.8.0, voyager 2.2.3 and faiss-cpu (IndexHNSWFlat).

Every library indexes the same float32 vectors with M=16 and ef_construction=200, builds on the same number of
threads (--threads, default 2), and answers the same queries one at a time on one thread with k=10 over an ef sweep.
Recall@k is counted for every library (Encore included) against one exact ground truth computed here with numpy,
with ties: a returned id is a hit when it is one of the true k, or when its exact (float64) distance is within 1e-6
(relative) of the k-th true distance. QPS is the median of 3 timed passes after an untimed pass that measures recall
(the rounds of timed passes go over the whole ef sweep, so a burst of load from elsewhere spreads over the efs).
The table gives, per library and metric, QPS at recall 0.90, 0.95 and 0.99 (interpolated on the sweep, in log QPS,
or "not reached"), the build time and the memory per vector.

Notes on what is measured:
- Encore runs as `encore-train ann-bench ... --json --save-results` (a release build under .build-ann); its queries
  are timed inside the Swift process. The Python libraries' queries go through their bindings, so their times include
  a per-call overhead of a few microseconds (a visible share only at small ef).
- Memory per vector: Encore's `HNSWIndex.memoryUsage` (its own accounting of what it holds); for the others the size
  of the saved index (hnswlib `save_index`, voyager `save`, faiss `write_index`), which mirrors their in-memory layout.
- cosine: hnswlib and voyager use their cosine spaces; faiss gets L2-normalized vectors and METRIC_INNER_PRODUCT.
  ip: hnswlib's ip space, voyager's InnerProduct space, faiss METRIC_INNER_PRODUCT, Encore's inner-product metric.
  Two more libraries, for the inner product only, compare like with like: "encore-plain" is Encore with
  --ip-graph plain (links chosen by -x.y, the graph hnswlib's ip space builds), and "hnswlib-aug" is hnswlib's l2 space
  over norm-augmented vectors (x, sqrt(P^2 - |x|^2)) with queries (q, 0), how a hnswlib user gets inner-product
  recall (the transform voyager applies inside); its build time includes the transform.

Data sets:
  als      the item factors of the ALS model in data/bench-lastfm360k/encore.h5 (made by compare_implicit.py with
           --preset lastfm360k) as the base, 2 000 seeded users' factors as queries; metrics cosine and ip.
  mixture  one million 64-d vectors from a seeded Gaussian mixture (1 000 clusters of Zipf-like sizes and varied
           spreads), 1 000 queries from the same mixture; metrics cosine and l2. Saved under data/ann/.
--quick uses 20 000 base vectors (a seeded subset of the items; a 20 000-vector mixture) and 500 queries.

The suite of factor sets (--suite, instead of --datasets): item factors trained by Encore (`encore-train fit`) and by
implicit 0.7.3, on BM25-weighted and on raw play counts, with 64 and 128 factors, on two worlds of the Last.fm-360K
preset with 100 000 and 1 000 000 tracks (data/ann-suite/, generated and trained once), 5 000 seeded users' vectors
as queries, cosine and inner product on every set. Sets are named trainer-weighting-factors-size
(e.g. implicit-raw-64-100k; '*' matches any part). Each (set, metric) runs --rounds rounds (default 2), the libraries
in alternating order; the table gives each library's median QPS at recall 0.95 over the rounds and the median of
Encore's per-round ratio to the metric's peer (hnswlib for cosine, voyager for the inner product), and replaces the
suite's section of docs/benchmarks.md.
    Benchmarks/.venv/bin/python Benchmarks/compare_ann.py --suite '*-*-*-100k' --libraries encore,hnswlib,voyager
    Benchmarks/.venv/bin/python Benchmarks/compare_ann.py --suite '*-*-*-*'      # every set: many hours

Not part of CI. Set up once (the venv of compare_implicit.py):
    Benchmarks/.venv/bin/pip install hnswlib==0.8.0 voyager==2.2.3 faiss-cpu h5py implicit==0.7.3 pandas scipy threadpoolctl
Run:
    Benchmarks/.venv/bin/python Benchmarks/compare_ann.py --quick                 # both data sets, small, minutes
    Benchmarks/.venv/bin/python Benchmarks/compare_ann.py --datasets als          # full ALS factors
    Benchmarks/.venv/bin/python Benchmarks/compare_ann.py --datasets mixture      # 1M vectors: about an hour
Options: --libraries encore,hnswlib,voyager,faiss (also encore-plain, hnswlib-aug: ip only)  --metrics cosine,ip  --ef "10 20 40 ..."  --threads 2
--encore-quantization int8 (Encore's graph walk on 8-bit codes with exact re-ranking; its results are saved as
"encore-int8" beside the float runs)  --binary PATH (skip the build)  --reuse (keep finished (data set, metric, library) results from Benchmarks/results/
and run only the rest)  --report-only (print the table of the saved results, run nothing).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "data", "ann")
RESULTS = os.path.join(ROOT, "Benchmarks", "results")
TARGETS = (0.90, 0.95, 0.99)


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def sh(cmd, **kw):
    log("+", " ".join(cmd))
    return subprocess.run(cmd, check=True, **kw)


def encore_binary():
    """Builds encore-train in release mode under .build-ann (retrying: others may be editing the tree) and returns it."""
    scratch = os.path.join(ROOT, ".build-ann")
    for attempt in range(5):
        try:
            sh(["swift", "build", "-c", "release", "--scratch-path", scratch, "--product", "encore-train"], cwd=ROOT)
            break
        except subprocess.CalledProcessError:
            if attempt == 4:
                raise
            log("build failed; retrying in a minute")
            time.sleep(60)
    out = subprocess.run(["swift", "build", "-c", "release", "--scratch-path", scratch, "--show-bin-path"], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout.strip()
    return os.path.join(out, "encore-train")


# ---------------------------------------------------------------------------------------------------------------
# Data sets


def als_dataset(quick, n_queries, seed):
    import h5py
    path = os.path.join(ROOT, "data", "bench-lastfm360k", "encore.h5")
    if not os.path.exists(path):
        return None
    rng = np.random.default_rng(seed)
    with h5py.File(path, "r") as f:
        items = f["/cf/item_factors"][:].astype(np.float32)
        users = f["/cf/user_factors"]
        rows = np.sort(rng.choice(users.shape[0], size=min(n_queries, users.shape[0]), replace=False))
        queries = users[rows].astype(np.float32)
    if quick:
        items = items[np.sort(rng.choice(items.shape[0], size=min(20_000, items.shape[0]), replace=False))]
    # Cosine needs a direction: nudge all-zero rows (none in practice; the cold items' factors are tiny, not zero).
    zero = ~np.any(items != 0, axis=1)
    if zero.any():
        log(f"als: {zero.sum()} all-zero item rows get a tiny constant vector")
        items[zero] = 1e-12
    tag = "als-quick" if quick else "als"
    return tag, np.ascontiguousarray(items), np.ascontiguousarray(queries), ("cosine", "ip")


def mixture_dataset(quick, n_queries, seed, n=1_000_000, d=64, clusters=1000):
    if quick:
        n = 20_000
    os.makedirs(DATA, exist_ok=True)
    base_path = os.path.join(DATA, f"mixture-{n}x{d}-s{seed}.npy")
    query_path = os.path.join(DATA, f"mixture-{n}x{d}-s{seed}-queries-{n_queries}.npy")
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, d)).astype(np.float32)
    weights = 1.0 / np.arange(1, clusters + 1) ** 0.7
    weights /= weights.sum()
    spreads = rng.uniform(0.25, 0.75, clusters).astype(np.float32)

    def sample(m, r):
        out = np.empty((m, d), dtype=np.float32)
        for lo in range(0, m, 100_000):
            hi = min(m, lo + 100_000)
            c = r.choice(clusters, size=hi - lo, p=weights)
            out[lo:hi] = centers[c] + r.standard_normal((hi - lo, d), dtype=np.float32) * spreads[c, None]
        return out

    if not os.path.exists(base_path):
        log(f"generating {base_path}")
        np.save(base_path, sample(n, np.random.default_rng(seed + 1)))
    if not os.path.exists(query_path):
        np.save(query_path, sample(n_queries, np.random.default_rng(seed + 2)))
    tag = "mixture-quick" if quick else "mixture"
    return tag, np.load(base_path), np.load(query_path), ("cosine", "l2")


# ---------------------------------------------------------------------------------------------------------------
# The suite of factor sets (--suite)
#
# Item factors trained by Encore and by implicit, on BM25-weighted and on raw play counts, with 64 and 128 factors,
# over two worlds of the generator's Last.fm-360K preset (360 000 users) with 100 000 and 1 000 000 tracks. The base
# is every non-zero item vector, the queries are seeded users' vectors (the recommend case); both metrics, cosine
# and inner product, run on every set.

SUITE = os.path.join(ROOT, "data", "ann-suite")
SUITE_SIZES = {"100k": 100_000, "1m": 1_000_000}


def suite_names(spec):
    """Expands a --suite spec: comma-separated names, each part may be '*' ('*-*-64-100k')."""
    out = []
    for pattern in spec.split(","):
        parts = pattern.split("-")
        if len(parts) != 4:
            raise SystemExit(f"--suite: {pattern!r} is not trainer-weighting-factors-size (e.g. implicit-raw-64-100k)")
        choices = [("encore", "implicit"), ("bm25", "raw"), ("64", "128"), tuple(SUITE_SIZES)]
        names = [[]]
        for part, allowed in zip(parts, choices):
            if part != "*" and part not in allowed:
                raise SystemExit(f"--suite: {part!r} in {pattern!r} is not one of {', '.join(allowed)} or *")
            names = [n + [v] for n in names for v in (allowed if part == "*" else (part,))]
        out += ["-".join(n) for n in names if "-".join(n) not in out]
    return out


def suite_world(size, seed, binary):
    world = os.path.join(SUITE, f"world-{size}")
    if not os.path.exists(os.path.join(world, "plays.tsv")):
        sh([binary, "generate", "--preset", "lastfm360k", "--tracks", str(SUITE_SIZES[size]), "--output", world,
            "--seed", str(seed)])
    return world


def suite_factors(name, seed, binary, iterations=15, n_queries=5000):
    """(tag, base, queries, metrics) of one suite set, trained once and kept under data/ann-suite/."""
    trainer, weighting, factors, size = name.split("-")
    base_path = os.path.join(SUITE, f"{name}-items.npy")
    user_path = os.path.join(SUITE, f"{name}-users.npy")
    if not (os.path.exists(base_path) and os.path.exists(user_path)):
        world = suite_world(size, seed, binary)
        plays = os.path.join(world, "plays.tsv")
        if trainer == "encore":
            bundle = os.path.join(SUITE, f"{name}.h5")
            sh([binary, "fit", "--input", plays, "--output", bundle, "--factors", factors, "--iterations",
                str(iterations), "--weighting", "bm25" if weighting == "bm25" else "none", "--threads", "2",
                "--seed", str(seed)])
            import h5py
            with h5py.File(bundle, "r") as f:
                items, users = f["/cf/item_factors"][:], f["/cf/user_factors"][:]
        else:
            import pandas as pd
            import scipy.sparse as sp
            from implicit.cpu.als import AlternatingLeastSquares
            from implicit.nearest_neighbours import bm25_weight
            from threadpoolctl import threadpool_limits
            t = pd.read_csv(plays, sep="\t", usecols=["user", "item"], dtype={"user": str, "item": str})
            t = t.groupby(["user", "item"]).size().reset_index(name="plays")
            users_index, items_index = pd.Index(pd.unique(t["user"])), pd.Index(pd.unique(t["item"]))
            m = sp.csr_matrix((t["plays"].to_numpy(np.float32),
                               (users_index.get_indexer(t["user"]), items_index.get_indexer(t["item"]))),
                              shape=(len(users_index), len(items_index)))
            if weighting == "bm25":
                m = bm25_weight(m.T.tocsr(), K1=100, B=0.8).T.tocsr().astype(np.float32)
            with threadpool_limits(1, "blas"):
                model = AlternatingLeastSquares(factors=int(factors), regularization=0.05, iterations=iterations,
                                                num_threads=2, random_state=seed)
                model.fit(m, show_progress=False)
            items, users = np.asarray(model.item_factors), np.asarray(model.user_factors)
        os.makedirs(SUITE, exist_ok=True)
        np.save(base_path, np.ascontiguousarray(items, dtype=np.float32))
        np.save(user_path, np.ascontiguousarray(users, dtype=np.float32))
    items, users = np.load(base_path), np.load(user_path, mmap_mode="r")
    items = items[np.any(items != 0, axis=1)]
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(users.shape[0], size=min(n_queries, users.shape[0]), replace=False))
    return name, np.ascontiguousarray(items), np.ascontiguousarray(users[rows], dtype=np.float32), ("cosine", "ip")


# The peer each metric's goal is measured against.
SUITE_PEER = {"cosine": "hnswlib", "ip": "voyager", "l2": "hnswlib"}


def suite_table(results, targets=(0.90, 0.95)):
    """Markdown: per set and metric, each library's median QPS at each recall target over its rounds, its build
    seconds, and the median over rounds of Encore's QPS over the metric's peer's QPS of the same round."""
    head = " | ".join(f"QPS@{t:.2f}" for t in targets)
    ratio_head = " | ".join(f"Encore / peer @{t:.2f}" for t in targets)
    lines = [f"| set | vectors | metric | library | {head} | build s | {ratio_head} |",
             "|---|---|---|---|" + "---|" * len(targets) + "---|" + "---|" * len(targets)]
    for (tag, metric), per_lib in results.items():
        peer = SUITE_PEER[metric]
        ratio_cells = []
        for target in targets:
            ratios = []
            for enc, other in zip(per_lib.get("encore", []), per_lib.get(peer, [])):
                a, b = qps_at(enc["sweep"], target), qps_at(other["sweep"], target)
                if a is not None and b:
                    ratios.append(a / b)
            ratio_cells.append(f"{np.median(ratios):.2f}x vs {peer}" if ratios else "n/a (not reached)")
        for lib, rounds in per_lib.items():
            cells = []
            for target in targets:
                reached = [q for q in (qps_at(r["sweep"], target) for r in rounds) if q is not None]
                cells.append(f"{np.median(reached):.0f}" if reached else "not reached")
            build = np.median([r["build_seconds"] for r in rounds])
            ratio = " | ".join(ratio_cells) if lib == "encore" else " | ".join("" for _ in targets)
            lines.append(f"| {tag} | {rounds[0]['n']} x {rounds[0]['dimension']} | {metric} | {lib} | "
                         f"{' | '.join(cells)} | {build:.1f} | {ratio} |")
    return "\n".join(lines)


def write_suite_section(table, header):
    """Replaces the suite's section of docs/benchmarks.md (between its markers) with the table."""
    doc = os.path.join(ROOT, "docs", "benchmarks.md")
    begin, end = "<!-- ann-suite:begin -->", "<!-- ann-suite:end -->"
    with open(doc) as f:
        text = f.read()
    block = f"{begin}\n{header}\n\n{table}\n{end}"
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text += f"\n## Nearest-neighbor search: the suite of factor sets\n\n{block}\n"
    with open(doc, "w") as f:
        f.write(text)
    log(f"wrote the suite's table to {doc}")


# ---------------------------------------------------------------------------------------------------------------
# Ground truth and recall


def normalized(x):
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-30)).astype(x.dtype)


def exact_distances(base64, q64, ids, metric):
    """float64 distances from each query (rows of q64) to base64[ids[i]] (ids: nq x m)."""
    x = base64[ids]                              # nq x m x d
    if metric == "l2":
        return ((x - q64[:, None, :]) ** 2).sum(axis=2)
    dot = np.einsum("qmd,qd->qm", x, q64)
    return 1.0 - dot if metric == "cosine" else -dot


def ground_truth(base, queries, metric, k, block=32, extra=32):
    """Exact top-k ids and the k-th distance per query: candidates by float32 BLAS, re-ranked in float64."""
    if metric == "cosine":
        base, queries = normalized(base), normalized(queries)
    base64, q64 = base.astype(np.float64), queries.astype(np.float64)
    norms = (base.astype(np.float32) ** 2).sum(axis=1)
    nq, n = queries.shape[0], base.shape[0]
    kk = min(n, k + extra)
    ids = np.empty((nq, k), dtype=np.int64)
    kth = np.empty(nq, dtype=np.float64)
    for lo in range(0, nq, block):
        hi = min(nq, lo + block)
        s = queries[lo:hi] @ base.T
        if metric == "l2":
            dist = norms[None, :] - 2 * s
        elif metric == "cosine":
            dist = 1 - s
        else:
            dist = -s
        cand = np.argpartition(dist, kk - 1, axis=1)[:, :kk] if kk < n else np.tile(np.arange(n), (hi - lo, 1))
        d64 = exact_distances(base64, q64[lo:hi], cand, metric)
        order = np.lexsort((cand, d64), axis=1)[:, :k]
        ids[lo:hi] = np.take_along_axis(cand, order, axis=1)
        kth[lo:hi] = np.take_along_axis(d64, order, axis=1)[:, -1]
    return {"ids": ids, "kth": kth, "base64": base64, "q64": q64, "metric": metric}


def recall(found, gt, k):
    """Mean recall@k with ties; `found` is nq x k ids, -1 where a library returned fewer."""
    found = np.asarray(found, dtype=np.int64)
    valid = found >= 0
    safe = np.where(valid, found, 0)
    dist = exact_distances(gt["base64"], gt["q64"], safe, gt["metric"])
    limit = gt["kth"] + 1e-6 * np.abs(gt["kth"])
    in_truth = (safe[:, :, None] == gt["ids"][:, None, :]).any(axis=2)
    hit = valid & (in_truth | (dist <= limit[:, None]))
    # A repeated id counts once.
    for j in range(1, found.shape[1]):
        hit[:, j] &= ~(found[:, :j] == found[:, j:j + 1]).any(axis=1)
    return float(hit.sum(axis=1).mean() / k)


def qps_at(sweep, target):
    """QPS at a recall target, interpolated in log QPS between the sweep points around it (None if not reached)."""
    pts = sorted(sweep, key=lambda r: r["ef"])
    best = None
    for i, p in enumerate(pts):
        if p["recall"] >= target:
            if i == 0 or pts[i - 1]["recall"] >= target:
                q = p["qps"]
            else:
                a = pts[i - 1]
                t = (target - a["recall"]) / (p["recall"] - a["recall"])
                q = float(np.exp(np.log(a["qps"]) + t * (np.log(p["qps"]) - np.log(a["qps"]))))
            best = q if best is None else max(best, q)
    return best


# ---------------------------------------------------------------------------------------------------------------
# Libraries


def sweep_queries(query_for_ef, queries, efs, k, runs=3):
    """For each ef, one untimed pass that collects the ids; then `runs` rounds of one timed pass per ef (rounds outside,
    efs inside, so a burst of load on this shared machine spreads over the efs); the median QPS per ef."""
    out = []
    for ef in efs:
        query_one = query_for_ef(ef)
        out.append({"ef": ef, "found": pad_ids([query_one(q) for q in queries], k), "qps_runs": []})
    for _ in range(runs):
        for row in out:
            query_one = query_for_ef(row["ef"])
            t = time.perf_counter()
            for q in queries:
                query_one(q)
            row["qps_runs"].append(len(queries) / (time.perf_counter() - t))
    for row in out:
        row["qps"] = float(np.median(row["qps_runs"]))
    return out


def pad_ids(rows, k):
    out = np.full((len(rows), k), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        r = np.asarray(r, dtype=np.int64).ravel()[:k]
        out[i, :len(r)] = r
    return out


def file_size(save):
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "index")
        save(p)
        return os.path.getsize(p)


def run_hnswlib(base, queries, metric, args):
    import hnswlib
    n, d = base.shape
    index = hnswlib.Index(space={"cosine": "cosine", "l2": "l2", "ip": "ip"}[metric], dim=d)
    index.init_index(max_elements=n, ef_construction=args.ef_construction, M=args.m, random_seed=args.seed)
    t = time.perf_counter()
    index.add_items(base, np.arange(n), num_threads=args.threads)
    build = time.perf_counter() - t
    memory = file_size(index.save_index)
    qs = [np.ascontiguousarray(q[None, :]) for q in queries]

    def query_for_ef(ef):
        index.set_ef(max(ef, args.k))
        return lambda q: index.knn_query(q, k=args.k, num_threads=1)[0][0]

    sweep = sweep_queries(query_for_ef, qs, args.ef, args.k)
    return {"build_seconds": build, "memory_bytes": memory, "sweep": sweep}


def run_hnswlib_aug(base, queries, metric, args):
    """hnswlib's l2 space over the norm-augmenting transform (Bachrach et al. 2014): base (x, sqrt(P^2 - |x|^2)),
    queries (q, 0), P the largest norm, so that |q' - x'|^2 = |q|^2 + P^2 - 2 q.x ranks by the inner product. This is
    how a hnswlib user gets inner-product search with usable recall (voyager does the same inside); ip only."""
    if metric != "ip":
        return None
    norms2 = (base.astype(np.float64) ** 2).sum(axis=1)
    t = time.perf_counter()
    extra = np.sqrt(np.maximum(norms2.max() - norms2, 0.0)).astype(np.float32)
    augmented = np.ascontiguousarray(np.hstack([base, extra[:, None]]))
    prep = time.perf_counter() - t
    zeros = np.zeros((queries.shape[0], 1), dtype=np.float32)
    res = run_hnswlib(augmented, np.hstack([queries, zeros]), "l2", args)
    res["build_seconds"] += prep
    return res


def run_voyager(base, queries, metric, args):
    import voyager
    n, d = base.shape
    space = {"cosine": voyager.Space.Cosine, "l2": voyager.Space.Euclidean, "ip": voyager.Space.InnerProduct}[metric]
    index = voyager.Index(space, num_dimensions=d, M=args.m, ef_construction=args.ef_construction,
                          random_seed=args.seed, max_elements=n, storage_data_type=voyager.StorageDataType.Float32)
    t = time.perf_counter()
    index.add_items(base, ids=list(range(n)), num_threads=args.threads)
    build = time.perf_counter() - t
    memory = file_size(index.save)
    qs = [np.ascontiguousarray(q) for q in queries]

    def query_for_ef(ef):
        e = max(ef, args.k)
        return lambda q: index.query(q, k=args.k, num_threads=1, query_ef=e)[0]

    sweep = sweep_queries(query_for_ef, qs, args.ef, args.k)
    return {"build_seconds": build, "memory_bytes": memory, "sweep": sweep}


def run_faiss(base, queries, metric, args):
    import faiss
    n, d = base.shape
    if metric == "cosine":
        base, queries = normalized(base), normalized(queries)
    faiss.omp_set_num_threads(args.threads)
    index = faiss.IndexHNSWFlat(d, args.m, faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = args.ef_construction
    t = time.perf_counter()
    index.add(np.ascontiguousarray(base))
    build = time.perf_counter() - t
    memory = file_size(lambda p: faiss.write_index(index, p))
    faiss.omp_set_num_threads(1)
    qs = [np.ascontiguousarray(q[None, :]) for q in queries]

    def query_for_ef(ef):
        index.hnsw.efSearch = max(ef, args.k)
        return lambda q: index.search(q, args.k)[1][0]

    sweep = sweep_queries(query_for_ef, qs, args.ef, args.k)
    return {"build_seconds": build, "memory_bytes": memory, "sweep": sweep}


def run_encore(base, queries, metric, args, tag, ip_graph="mobius"):
    os.makedirs(DATA, exist_ok=True)
    base_path = os.path.join(DATA, f"{tag}-base.npy")
    query_path = os.path.join(DATA, f"{tag}-queries.npy")
    for path, arr in ((base_path, base), (query_path, queries)):
        if not os.path.exists(path) or np.load(path, mmap_mode="r").shape != arr.shape:
            np.save(path, arr)
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "encore.json")
        prefix = os.path.join(d, "ids")
        sh([args.binary, "ann-bench", "--base", base_path, "--queries", query_path, "--metric", metric,
            "--k", str(args.k), "--m", str(args.m), "--ef-construction", str(args.ef_construction),
            "--ef", ",".join(map(str, args.ef)), "--threads", str(args.threads), "--seed", str(args.seed),
            "--ip-graph", ip_graph, "--quantization", args.encore_quantization, "--json", out, "--save-results", prefix, "--measure-io"], stdout=sys.stderr)
        with open(out) as f:
            report = json.load(f)
        sweep = []
        for r in report["results"]:
            ids = np.load(f"{prefix}-ef{r['ef']}.npy").astype(np.int64)
            sweep.append({"ef": r["ef"], "found": ids, "qps": r["qps"], "qps_runs": r["qps_runs"],
                          "self_reported_recall": r["recall"]})
    return {"build_seconds": report["build_seconds"], "memory_bytes": report["memory_bytes"], "sweep": sweep,
            "ground_truth_seconds": report["ground_truth_seconds"], "index_file_io": report.get("index_file_io")}


def result_name(lib, args):
    """The name a library's results are saved under: Encore's with int8 quantization get an '-int8' suffix."""
    if lib.startswith("encore") and args.encore_quantization != "none":
        return f"{lib}-{args.encore_quantization}"
    return lib


def run_library(lib, tag, base, queries, metric, gt, args):
    """Builds and searches one library's index; the result row with recall counted against `gt`."""
    log(f"{tag} {metric} {lib}: building and searching")
    if lib == "encore":
        res = run_encore(base, queries, metric, args, tag)
    elif lib == "encore-plain":
        res = run_encore(base, queries, metric, args, tag, ip_graph="plain")
    else:
        res = RUNNERS[lib](base, queries, metric, args)
    for p in res["sweep"]:
        p["recall"] = recall(p.pop("found"), gt, args.k)
        if "self_reported_recall" in p and abs(p["self_reported_recall"] - p["recall"]) > 0.002:
            log(f"  note: encore ef={p['ef']} counts recall {p['self_reported_recall']:.4f} against its "
                f"own ExactIndex ground truth, {p['recall']:.4f} here")
    row = {"library": lib, "dataset": tag, "metric": metric, "n": int(base.shape[0]),
           "dimension": int(base.shape[1]), "queries": int(queries.shape[0]), "k": args.k, "m": args.m,
           "ef_construction": args.ef_construction, "threads": args.threads,
           "quantization": args.encore_quantization if lib.startswith("encore") else None, **res}
    sweep = "  ".join(f"ef{p['ef']}:{p['recall']:.3f}/{p['qps']:.0f}" for p in row["sweep"])
    log(f"  {lib}: build {row['build_seconds']:.1f} s; recall/QPS {sweep}")
    return row


def run_suite(args, libraries):
    """Every library on every suite set and metric, in `args.rounds` rounds of alternating library order; each
    (set, metric, library, round) result is saved under Benchmarks/results/ (and reused with --reuse); the table goes
    to stdout and docs/benchmarks.md."""
    results = {}
    for name in suite_names(args.suite):
        if args.report_only:
            tag, base, queries, metrics = name, None, None, ("cosine", "ip")
        else:
            tag, base, queries, metrics = suite_factors(name, args.seed, args.binary, n_queries=args.suite_queries)
            log(f"{tag}: base {base.shape}, queries {queries.shape}")
        if args.metrics:
            metrics = tuple(m for m in metrics if m in args.metrics.split(","))
        for metric in metrics:
            gt = None
            per_lib = {}
            for r in range(args.rounds):
                order = [lib for lib in libraries if not (lib in IP_ONLY and metric != "ip")]
                if r % 2 == 1:
                    order.reverse()
                for lib in order:
                    path = os.path.join(RESULTS, f"suite-{tag}-{metric}-{result_name(lib, args)}-r{r}.json")
                    if (args.reuse or args.report_only) and os.path.exists(path):
                        with open(path) as f:
                            per_lib.setdefault(lib, []).append(json.load(f))
                        continue
                    if args.report_only:
                        continue
                    if gt is None:
                        gt = ground_truth(base, queries, metric, args.k)
                    row = run_library(lib, tag, base, queries, metric, gt, args)
                    row["round"] = r
                    with open(path, "w") as f:
                        json.dump(row, f, indent=1)
                    per_lib.setdefault(lib, []).append(row)
            if per_lib:
                results[(tag, metric)] = per_lib
    table = suite_table(results)
    print(table)
    load = os.getloadavg()
    header = (f"`Benchmarks/.venv/bin/python Benchmarks/compare_ann.py --suite '{args.suite}' --rounds {args.rounds}` "
              f"(k {args.k}, M {args.m}, ef_construction {args.ef_construction}, build threads {args.threads}, "
              f"queries one at a time on one thread; load average at the end {load[0]:.2f} / {load[1]:.2f} / "
              f"{load[2]:.2f}; written {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC)")
    if results:
        write_suite_section(table, header)


RUNNERS = {"encore": None, "encore-plain": None, "hnswlib": run_hnswlib, "hnswlib-aug": run_hnswlib_aug,
           "voyager": run_voyager, "faiss": run_faiss}
# Variants that only apply to the inner product.
IP_ONLY = ("encore-plain", "hnswlib-aug")


# ---------------------------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20 000 base vectors and 500 queries per data set")
    ap.add_argument("--datasets", default="als,mixture")
    ap.add_argument("--libraries", default="encore,hnswlib,voyager,faiss")
    ap.add_argument("--metrics", default=None,
                    help="only these metrics of each data set (comma-separated; default: all of the data set's)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--ef", default="10 20 40 80 120 160 240 320 480",
                    help="space- or comma-separated ef values")
    ap.add_argument("--threads", type=int, default=2, help="build threads of every library (queries: one thread)")
    ap.add_argument("--als-queries", type=int, default=2000)
    ap.add_argument("--mixture-queries", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--binary", default=None, help="an encore-train to use as it is (default: build one)")
    ap.add_argument("--reuse", action="store_true", help="reuse finished results from Benchmarks/results/")
    ap.add_argument("--suite", default=None,
                    help="run the suite of factor sets instead of --datasets: comma-separated trainer-weighting-"
                         "factors-size names, '*' for any part (all: '*-*-*-*'; the 100k sets: '*-*-*-100k')")
    ap.add_argument("--rounds", type=int, default=2,
                    help="with --suite: rounds per set and metric, the libraries in alternating order")
    ap.add_argument("--suite-queries", type=int, default=5000)
    ap.add_argument("--encore-quantization", default="none", choices=("none", "int8"),
                    help="Encore's index quantization (ann-bench --quantization); int8 results are saved under "
                         "'<library>-int8' result names, so both can be kept and compared")
    ap.add_argument("--report-only", action="store_true",
                    help="print the table of the saved results in Benchmarks/results/ and run nothing")
    args = ap.parse_args()
    args.ef = [int(x) for x in args.ef.replace(",", " ").split()]
    libraries = [x for x in args.libraries.split(",") if x]
    for lib in libraries:
        if lib not in RUNNERS:
            ap.error(f"unknown library {lib!r} (choose from {', '.join(RUNNERS)})")
    if any(lib.startswith("encore") for lib in libraries) and not args.binary and not args.report_only:
        args.binary = encore_binary()
    os.makedirs(RESULTS, exist_ok=True)
    nq_als = 500 if args.quick else args.als_queries
    nq_mix = 500 if args.quick else args.mixture_queries

    if args.suite:
        return run_suite(args, libraries)

    tables = []
    for name in [x for x in args.datasets.split(",") if x]:
        if name == "als":
            ds = als_dataset(args.quick, nq_als, args.seed)
            if ds is None:
                log("als: data/bench-lastfm360k/encore.h5 not found (run compare_implicit.py --preset lastfm360k); skipped")
                continue
        elif name == "mixture":
            ds = mixture_dataset(args.quick, nq_mix, args.seed)
        else:
            ap.error(f"unknown data set {name!r}")
        tag, base, queries, metrics = ds
        if args.metrics:
            metrics = tuple(m for m in metrics if m in args.metrics.split(","))
        log(f"{tag}: base {base.shape}, queries {queries.shape}")
        for metric in metrics:
            gt = None
            rows = []
            for lib in libraries:
                if lib in IP_ONLY and metric != "ip":
                    continue
                path = os.path.join(RESULTS, f"ann-{tag}-{metric}-{result_name(lib, args)}.json")
                if (args.reuse or args.report_only) and os.path.exists(path):
                    with open(path) as f:
                        rows.append(json.load(f))
                    log(f"{tag} {metric} {lib}: reused {path}")
                    continue
                if args.report_only:
                    log(f"{tag} {metric} {lib}: no saved result ({path}); left out")
                    continue
                if gt is None:
                    t = time.perf_counter()
                    gt = ground_truth(base, queries, metric, args.k)
                    log(f"{tag} {metric}: ground truth in {time.perf_counter() - t:.1f} s")
                row = run_library(lib, tag, base, queries, metric, gt, args)
                with open(path, "w") as f:
                    json.dump(row, f, indent=1)
                rows.append(row)
            if rows:
                tables.append((tag, metric, base.shape, queries.shape[0], rows))

    print()
    print(f"k={args.k}, M={args.m}, ef_construction={args.ef_construction}, build threads={args.threads}, "
          f"queries one at a time on one thread; ef sweep "
          + ("as listed per library" if args.report_only else " ".join(map(str, args.ef))))
    for tag, metric, shape, nq, rows in tables:
        print()
        print(f"== {tag} ({shape[0]} x {shape[1]}), {metric}, {nq} queries")
        header = f"{'library':<12} {'build s':>8} {'B/vec':>7} " + " ".join(f"{'QPS@' + format(t, '.2f'):>13}" for t in TARGETS)
        header += f" {'max recall':>10}"
        print(header)
        for row in rows:
            cells = []
            for t in TARGETS:
                q = qps_at(row["sweep"], t)
                cells.append(f"{'not reached' if q is None else format(q, '.0f'):>13}")
            best = max(p["recall"] for p in row["sweep"])
            print(f"{row['library']:<12} {row['build_seconds']:>8.1f} {row['memory_bytes'] / row['n']:>7.0f} "
                  + " ".join(cells) + f" {best:>10.4f}")
        print("  sweep (ef: recall / QPS)")
        for row in rows:
            print(f"  {row['library']:<12} " + "  ".join(f"{p['ef']}: {p['recall']:.3f}/{p['qps']:.0f}" for p in row["sweep"]))


if __name__ == "__main__":
    main()
