#!/usr/bin/env python3
"""Side-by-side comparison of Encore's ImplicitALS with implicit 0.7.3 (PyPI) on the same split of the same data.

Both libraries get the same training matrix (play counts summed per user and track), the same BM25 weighting
(K1=100, B=0.8, on the items x users matrix, as implicit's Last.fm example does), the same factors,
regularization, alpha, iterations and thread count. Quality is scored with implicit's own
`ranking_metrics_at_k` for implicit and with `encore-train evaluate` for Encore (same definitions).

Not part of CI. Set up once:
    python3 -m venv Benchmarks/.venv && Benchmarks/.venv/bin/pip install implicit==0.7.3 pandas scipy threadpoolctl
Run (sample data, a minute):
    Benchmarks/.venv/bin/python Benchmarks/compare_implicit.py --preset sample
Run (Last.fm-360K-shaped synthetic data; generation and both fits take a while):
    Benchmarks/.venv/bin/python Benchmarks/compare_implicit.py --preset lastfm360k --factors 64 --iterations 15
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, **kw)


def encore_binary():
    sh(["swift", "build", "-c", "release", "--product", "encore-train"], cwd=ROOT)
    out = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    return os.path.join(out, "encore-train")


def flops_per_iteration(users, items, nnz, f, cg_steps):
    """Floating-point operations of one CG sweep over users and items, counted as implicit's algorithm does them:
    per vector (1 + steps) products with the f x f Gram matrix (2 f^2 each), per stored value (1 + steps) dot
    products and axpys (4 f each)."""
    return (users + items) * (1 + cg_steps) * 2 * f * f + 2 * nnz * (1 + cg_steps) * 4 * f


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="sample", help="encore-train generate preset (sample, lastfm360k)")
    ap.add_argument("--data", default=None, help="data folder (default: data/bench-<preset>)")
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--regularization", type=float, default=0.05)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--confidence-floor", type=float, default=0.0,
                    help="Encore's --confidence-floor; implicit gets the same objective through values raised to "
                         "floor / alpha (0, the default: implicit's rule for both)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--solver", default="cg", choices=["cg", "cholesky"])
    ap.add_argument("--weighting", default="bm25", choices=["bm25", "none"],
                    help="confidence weighting given to both libraries: bm25 (K1 100, B 0.8) or none (raw play counts)")
    ap.add_argument("--speed-rounds", type=int, default=0,
                    help="only time: this many rounds, each an Encore fit then an implicit fit of --round-iterations "
                         "iterations on the same matrix (alternating, so load from elsewhere hits both); no quality")
    ap.add_argument("--round-iterations", type=int, default=5)
    ap.add_argument("--binary", default=None, help="an encore-train release binary (default: build one)")
    ap.add_argument("--eval-users", type=int, default=20000,
                    help="score this many test users (a seeded sample, the same for both libraries; 0 = all)")
    args = ap.parse_args()

    data = args.data or os.path.join(ROOT, "data", f"bench-{args.preset}")
    binary = args.binary or encore_binary()
    if not os.path.exists(os.path.join(data, "plays.tsv")):
        sh([binary, "generate", "--preset", args.preset, "--output", data, "--seed", str(args.seed)])
    train_path, test_path = os.path.join(data, "train.tsv"), os.path.join(data, "test.tsv")
    if not os.path.exists(test_path):
        sh([binary, "split", "--input", os.path.join(data, "plays.tsv"), "--method", "random",
            "--test-fraction", "0.2", "--seed", str(args.seed), "--train", train_path, "--test", test_path])

    # Scoring every user against every track is O(users x items x factors) for both libraries; a seeded sample of
    # test users, written once and read by both, keeps that part short without changing what is compared.
    scored_test = test_path
    if args.eval_users > 0:
        scored_test = os.path.join(data, f"test-{args.eval_users}-users.tsv")
        if not os.path.exists(scored_test):
            t = pd.read_csv(test_path, sep="\t", dtype={"user": str, "item": str})
            users_all = np.sort(pd.unique(t["user"]))
            rng = np.random.default_rng(args.seed)
            keep = set(rng.choice(users_all, size=min(args.eval_users, len(users_all)), replace=False))
            t[t["user"].isin(keep)].to_csv(scored_test, sep="\t", index=False)

    if args.speed_rounds > 0:
        return speed_rounds(args, binary, data, train_path)

    # --- Encore -------------------------------------------------------------------------------------------
    bundle = os.path.join(data, "encore.h5")
    timings = os.path.join(data, "encore-fit.json")
    metrics = os.path.join(data, "encore-eval.json")
    sh([binary, "fit", "--input", train_path, "--output", bundle, "--factors", str(args.factors),
        "--regularization", str(args.regularization), "--alpha", str(args.alpha), "--iterations", str(args.iterations),
        "--threads", str(args.threads), "--solver", args.solver, "--weighting", args.weighting, "--seed", str(args.seed), "--confidence-floor", str(args.confidence_floor),
        "--timings", timings])
    sh([binary, "evaluate", "--bundle", bundle, "--train", train_path, "--test", scored_test, "--k", str(args.k),
        "--json", metrics])
    enc_fit = json.load(open(timings))
    enc_eval = json.load(open(metrics))

    # --- implicit -----------------------------------------------------------------------------------------
    import implicit
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.evaluation import ranking_metrics_at_k

    t0 = time.time()
    train = pd.read_csv(train_path, sep="\t", dtype={"user": str, "item": str})
    test = pd.read_csv(scored_test, sep="\t", dtype={"user": str, "item": str})
    # Index users and items by the training data, as Encore does; test rows of users or items never seen in
    # training cannot be scored by either library and are left out of both evaluations.
    users = pd.Index(pd.unique(train["user"]))
    items = pd.Index(pd.unique(train["item"]))
    test = test[users.get_indexer(test["user"]) >= 0]
    test = test[items.get_indexer(test["item"]) >= 0]
    def matrix(df):
        m = sp.csr_matrix((df["weight"].to_numpy(np.float32),
                           (users.get_indexer(df["user"]), items.get_indexer(df["item"]))),
                          shape=(len(users), len(items)))
        m.sum_duplicates()
        return m
    x_train, x_test = matrix(train), matrix(test)
    weighted = confidence(x_train, args.weighting, args.confidence_floor / args.alpha)
    load_seconds = time.time() - t0

    iteration_seconds = []
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=args.factors, regularization=args.regularization, alpha=args.alpha,
                                        iterations=args.iterations, use_cg=args.solver == "cg",
                                        num_threads=args.threads, random_state=args.seed)
        model.fit_callback = lambda it, seconds, loss: iteration_seconds.append(seconds)
        t0 = time.time()
        model.fit(weighted, show_progress=False)
        fit_seconds = time.time() - t0
        imp = ranking_metrics_at_k(model, x_train, x_test, K=args.k, show_progress=False, num_threads=args.threads)
    imp_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # --- report -------------------------------------------------------------------------------------------
    nnz = x_train.nnz
    flops = flops_per_iteration(len(users), len(items), nnz, args.factors, 3)
    enc_iter = float(np.median(enc_fit["iteration_seconds"]))
    imp_iter = float(np.median(iteration_seconds))
    rows = [
        ("users x items, training pairs", f"{len(users)} x {len(items)}, {nnz}", f"{enc_fit['users']} x {enc_fit['items']}, {enc_fit['nnz']}"),
        ("median seconds / iteration", f"{imp_iter:.3f}", f"{enc_iter:.3f}"),
        ("GFLOP/s (CG model count)" if args.solver == "cg" else "GFLOP/s (n/a for cholesky)",
         f"{flops / imp_iter / 1e9:.2f}", f"{flops / enc_iter / 1e9:.2f}"),
        ("fit seconds", f"{fit_seconds:.1f}", f"{enc_fit['fit_seconds']:.1f}"),
        ("peak RSS MiB (whole process)", f"{imp_rss_mb:.0f}", f"{enc_fit['peak_rss_mib']:.0f}"),
    ]
    for name in ["precision", "map", "ndcg", "auc"]:
        rows.append((f"{name}@{args.k}", f"{imp[name]:.4f}", f"{enc_eval[name + '@' + str(args.k)]:.4f}"))
    print(f"\nimplicit {implicit.__version__} vs Encore, weighting={args.weighting} factors={args.factors} reg={args.regularization} "
          f"alpha={args.alpha} iterations={args.iterations} solver={args.solver} threads={args.threads}")
    print(f"{'':34} {'implicit':>16} {'Encore':>16}")
    for name, a, b in rows:
        print(f"{name:34} {a:>16} {b:>16}")
    print(f"\nspeed-up (implicit s/iter / Encore s/iter): {imp_iter / enc_iter:.2f}x")
    for name in ["precision", "ndcg"]:
        a, b = imp[name], enc_eval[f"{name}@{args.k}"]
        print(f"{name}@{args.k}: Encore / implicit = {b / a:.4f} ({(b - a) / a * 100:+.2f}%)")


def confidence(user_items, weighting, least=0.0):
    """What both libraries are given: BM25 (K1 100, B 0.8, over items x users as implicit's Last.fm example does) or
    the raw summed play counts, as float32 users x items. For implicit, positive values are raised to `least` (the
    confidence floor over alpha), which is what Encore's --confidence-floor does inside its fit."""
    if weighting == "bm25":
        from implicit.nearest_neighbours import bm25_weight
        m = bm25_weight(user_items.T.tocsr(), K1=100, B=0.8).T.tocsr().astype(np.float32)
    else:
        m = user_items.astype(np.float32)
    if least > 0:
        positive = m.data > 0
        m.data[positive] = np.maximum(m.data[positive], np.float32(least))
    return m


def speed_rounds(args, binary, data, train_path):
    """Alternating short fits of both libraries on the same training matrix; medians of the per-iteration times."""
    from implicit.cpu.als import AlternatingLeastSquares
    train = pd.read_csv(train_path, sep="\t", dtype={"user": str, "item": str})
    users, items = pd.Index(pd.unique(train["user"])), pd.Index(pd.unique(train["item"]))
    m = sp.csr_matrix((train["weight"].to_numpy(np.float32),
                       (users.get_indexer(train["user"]), items.get_indexer(train["item"]))),
                      shape=(len(users), len(items)))
    m.sum_duplicates()
    weighted = confidence(m, args.weighting, args.confidence_floor / args.alpha)
    del train
    enc, imp, loads = [], [], []
    for r in range(args.speed_rounds):
        timings = os.path.join(data, f"encore-speed-{r}.json")
        sh([binary, "fit", "--input", train_path, "--output", os.path.join(data, "encore-speed.h5"), "--factors",
            str(args.factors), "--regularization", str(args.regularization), "--alpha", str(args.alpha),
            "--iterations", str(args.round_iterations), "--threads", str(args.threads), "--solver", args.solver,
            "--weighting", args.weighting, "--seed", str(args.seed), "--confidence-floor", str(args.confidence_floor), "--timings", timings], stdout=subprocess.DEVNULL,
           stderr=subprocess.DEVNULL)
        enc += json.load(open(timings))["iteration_seconds"]
        seconds = []
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(factors=args.factors, regularization=args.regularization, alpha=args.alpha,
                                            iterations=args.round_iterations, use_cg=args.solver == "cg",
                                            num_threads=args.threads, random_state=args.seed)
            model.fit_callback = lambda it, sec, loss: seconds.append(sec)
            model.fit(weighted, show_progress=False)
        imp += seconds
        loads.append(os.getloadavg()[0])
        print(f"round {r + 1}: Encore {np.median(enc[-args.round_iterations:]):.3f} s/iter, implicit "
              f"{np.median(seconds):.3f} s/iter, load {loads[-1]:.2f}", flush=True)
    e, i = float(np.median(enc)), float(np.median(imp))
    flops = flops_per_iteration(m.shape[0], m.shape[1], m.nnz, args.factors, 3)
    print(f"\n{args.speed_rounds} rounds x {args.round_iterations} iterations, weighting={args.weighting}, "
          f"factors={args.factors}, {m.shape[0]} x {m.shape[1]}, {m.nnz} pairs, threads={args.threads}")
    print(f"median s/iteration: Encore {e:.3f} ({flops / e / 1e9:.1f} GFLOP/s), implicit {i:.3f} "
          f"({flops / i / 1e9:.1f} GFLOP/s); speed-up {i / e:.2f}x; load averages after each round {loads}")


if __name__ == "__main__":
    main()
