#!/usr/bin/env python3
"""Checks of Benchmarks/spark/run.sh: the imported bundle holds the Spark job's .npy shards exactly, Spark's
weighting equals Encore's on the same data, and the two models' metrics side by side."""
import argparse
import csv
import glob
import json
import os
import sys

import h5py
import numpy as np


def shards(directory):
    ids, parts = [], []
    for path in sorted(glob.glob(os.path.join(directory, "*.npy"))):
        parts.append(np.load(path))
        with open(path[:-4] + ".ids", encoding="utf-8") as f:
            ids += f.read().splitlines()
    return ids, np.concatenate([p for p in parts if p.shape[0] > 0])


def ids_of(h5, side):
    return [x.decode() if isinstance(x, bytes) else x for x in h5["ids"][side][()]]


def check_factors(job, bundle):
    failures = 0
    with h5py.File(bundle, "r") as h5:
        for side, name in (("users", "user_factors"), ("items", "item_factors")):
            ids, factors = shards(os.path.join(job, side))
            stored = h5["cf"][name][()]
            same = ids == ids_of(h5, side) and stored.dtype == np.float32 and np.array_equal(stored, factors)
            print(f"factors {side}: {len(ids)} x {factors.shape[1]}, imported bundle equal to the shards: {same}")
            failures += not same
    return failures


def check_weights(job, fit_bundle, tolerance):
    with h5py.File(fit_bundle, "r") as h5:
        users = {u: k for k, u in enumerate(ids_of(h5, "users"))}
        items = {i: k for k, i in enumerate(ids_of(h5, "items"))}
        g = h5["cf"]["user_items"]
        indptr, indices, data = g["indptr"][()], g["indices"][()], g["data"][()]
    compared, worst, bad = 0, 0.0, []
    for path in glob.glob(os.path.join(job, "weights", "*.csv")):
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                u, i = users.get(row["user"]), items.get(row["item"])
                if u is None or i is None:
                    bad.append((row["user"], row["item"], "not in Encore's bundle"))
                    continue
                lo, hi = indptr[u], indptr[u + 1]
                p = lo + np.searchsorted(indices[lo:hi], i)
                if p >= hi or indices[p] != i:
                    bad.append((row["user"], row["item"], "no stored value in Encore's matrix"))
                    continue
                spark, encore = float(row["weight"]), float(data[p])
                rel = abs(spark - encore) / max(abs(encore), 1e-30)
                worst = max(worst, rel)
                compared += 1
                if rel > tolerance:
                    bad.append((row["user"], row["item"], f"Spark {spark!r}, Encore {encore!r}"))
    print(f"weights: {compared} sampled pairs compared, largest relative difference {worst:.3g} "
          f"(tolerance {tolerance}), {len(bad)} failures")
    for b in bad[:10]:
        print("  ", *b)
    return len(bad) + (compared == 0)


def metrics(spark_json, fit_json):
    a, b = json.load(open(spark_json)), json.load(open(fit_json))
    print(f"{'metric':<16}{'Spark ALS':>12}{'Encore fit':>12}{'Spark/Encore':>14}")
    for key in sorted(set(a) & set(b)):
        if isinstance(a[key], (int, float)) and isinstance(b[key], (int, float)):
            ratio = a[key] / b[key] if b[key] else float("nan")
            print(f"{key:<16}{a[key]:>12.4f}{b[key]:>12.4f}{ratio:>14.3f}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--job", required=True)
    p.add_argument("--bundle", help="the bundle import-factors made from the job's shards")
    p.add_argument("--fit-bundle", help="encore-train fit's bundle on the same data, for the weights")
    p.add_argument("--tolerance", type=float, default=1e-5)
    p.add_argument("--metrics", nargs=2, metavar=("SPARK_JSON", "FIT_JSON"))
    a = p.parse_args()
    failures = 0
    if a.bundle:
        failures += check_factors(a.job, a.bundle)
    if a.fit_bundle:
        failures += check_weights(a.job, a.fit_bundle, a.tolerance)
    if a.metrics:
        metrics(*a.metrics)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
