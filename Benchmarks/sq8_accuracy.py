"""First-pass accuracy of 8-bit scalar codes on factor sets: per-vector symmetric scale against per-dimension ranges.

For each set (item vectors `<set>-items.npy`, user vectors `<set>-users.npy` as queries, as compare_ann.py --suite
writes them to data/ann-suite/) and each metric, encodes the item vectors both ways and reports, over a seeded sample
of queries:
- first-pass recall: the share of the exact top k found in the top R by the quantized distance, for R = k, 4k, 10k
  (what a quantized walk can hand to the exact re-ranking);
- the mean relative error of the quantized distances.
No timing. The per-vector scheme is the one HNSWIndex(quantization: .int8) uses (s = max|x|/127, c = round(x/s));
the per-dimension one is faiss's SQ8 (x_i ~ m_i + s_i c_i over each dimension's min...max).

    Benchmarks/.venv/bin/python Benchmarks/sq8_accuracy.py --sets encore-bm25-64-100k,implicit-raw-64-100k
"""
import argparse
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def per_vector(b):
    s = np.abs(b).max(1, keepdims=True) / 127
    s[s == 0] = 1
    return np.clip(np.round(b / s), -127, 127) * s


def per_dimension(b):
    lo, hi = b.min(0), b.max(0)
    mid, step = (lo + hi) / 2, (hi - lo) / 254
    step[step == 0] = 1
    return mid + np.clip(np.round((b - mid) / step), -127, 127) * step


def distances(q, b, metric):
    if metric == "l2":
        return (q ** 2).sum(1)[:, None] - 2 * q @ b.T + (b ** 2).sum(1)[None, :]
    return -(q @ b.T)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="encore-bm25-64-100k,implicit-raw-64-100k")
    ap.add_argument("--folder", default=os.path.join(ROOT, "data", "ann-suite"))
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    k = args.k
    print(f"| set | metric | scheme | first-pass recall@{k} in top {k} | in top {4 * k} | in top {10 * k} | mean rel. distance error |")
    print("|---|---|---|---|---|---|---|")
    for name in args.sets.split(","):
        x = np.load(os.path.join(args.folder, f"{name}-items.npy")).astype(np.float32)
        u = np.load(os.path.join(args.folder, f"{name}-users.npy")).astype(np.float32)
        x = x[np.linalg.norm(x, axis=1) > 0]
        queries = u[rng.choice(len(u), min(args.queries, len(u)), replace=False)]
        for metric in ("cosine", "l2", "ip"):
            b, q = x.copy(), queries.copy()
            if metric == "cosine":
                b /= np.linalg.norm(b, axis=1, keepdims=True)
                q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-30)
            exact = distances(q.astype(np.float64), b.astype(np.float64), metric)
            truth = np.argsort(exact, axis=1)[:, :k]
            for scheme, encode in (("per-vector", per_vector), ("per-dimension", per_dimension)):
                d = distances(q.astype(np.float64), encode(b).astype(np.float64), metric)
                cells = []
                for r in (k, 4 * k, 10 * k):
                    top = np.argpartition(d, r, axis=1)[:, :r]
                    cells.append(np.mean([len(set(truth[i]) & set(top[i])) / k for i in range(len(q))]))
                err = np.abs(d - exact).mean() / np.abs(exact).mean()
                print(f"| {name} | {metric} | {scheme} | " + " | ".join(f"{c:.4f}" for c in cells) + f" | {err:.2e} |",
                      flush=True)


if __name__ == "__main__":
    main()
