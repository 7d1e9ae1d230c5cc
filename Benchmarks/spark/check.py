#!/usr/bin/env python3
"""Checks of Benchmarks/spark/run.sh: the imported bundle holds the Spark job's .npy shards exactly, Spark's
weighting equals Encore's on the same data, the two models' metrics side by side, and the sharded playlists equal
the single-process job's."""
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


def bundle_file(path):
    """The bundle file of a published unit (its current.json names it) or a plain bundle."""
    unit = path if os.path.isdir(path) else (path + ".d" if os.path.isdir(path + ".d") else None)
    if unit is None:
        return path
    with open(os.path.join(unit, "current.json")) as f:
        files = json.load(f)["files"]
    return os.path.join(unit, next(x["path"] for x in files if x["role"] == "bundle"))


def playlists(h5, users):
    """{user: (discover weekly [(item, score, source)], daily mixes [(name, cover, [(item, familiar)])])}."""
    dw, dm = h5["playlists"]["discover_weekly"], h5["playlists"]["daily_mix"]
    ptr, items, scores, sources = dw["indptr"][()], dw["items"][()], dw["scores"][()], dw["sources"][()]
    names = [x.decode() if isinstance(x, bytes) else x for x in dw["source_names"][()]]
    uptr, mnames, covers = dm["user_indptr"][()], dm["names"].asstr()[()], dm["covers"][()]
    mptr, mitems, familiar = dm["mix_indptr"][()], dm["items"][()], dm["familiar"][()]
    out = {}
    for u, user in enumerate(users):
        tracks = [(int(items[k]), float(scores[k]), names[sources[k]]) for k in range(ptr[u], ptr[u + 1])]
        mixes = [(mnames[m], int(covers[m]), [(int(mitems[k]), int(familiar[k])) for k in range(mptr[m], mptr[m + 1])])
                 for m in range(uptr[u], uptr[u + 1])]
        out[user] = (tracks, mixes)
    return out


def check_shards(manifest_path, reference):
    """Each part holds the users whose XXH64 (Python's xxhash) mod N is its shard, and the union of the parts equals
    the single-process job's playlists, user by user, exactly."""
    with open(manifest_path) as f:
        manifest = json.load(f)
    folder = os.path.dirname(manifest_path)
    with h5py.File(bundle_file(reference), "r") as h5:
        want = playlists(h5, ids_of(h5, "users"))
    import xxhash  # an implementation of XXH64 independent of Encore's
    got, failures = {}, 0
    n = manifest["shard_count"]
    for shard in manifest["shards"]:
        path = shard["path"] if os.path.isabs(shard["path"]) else os.path.join(folder, shard["path"])
        with h5py.File(path, "r") as h5:
            users = ids_of(h5, "users")
            part = playlists(h5, users)
        strangers = [u for u in users if xxhash.xxh64_intdigest(u.encode("utf-8")) % n != shard["index"]]
        if strangers:
            print(f"  shard {shard['index']}/{n} holds users whose XXH64 mod {n} is another shard: {strangers[:5]}")
            failures += len(strangers)
        for user in part:
            if user in got:
                print(f"  user {user} is in two shards")
                failures += 1
        got.update(part)
        print(f"shard {shard['index']}/{manifest['shard_count']}: {len(users)} users ({shard['path']})")
    missing = set(want) - set(got)
    different = [u for u in want if u in got and got[u] != want[u]]
    print(f"sharded playlists: {len(got)} users in {manifest['shard_count']} shards, {len(want)} in the single-process "
          f"job; {len(missing)} missing, {len(different)} differ")
    for u in sorted(missing)[:5] + different[:5]:
        print("  ", u)
    return failures + len(missing) + len(different) + (len(got) != len(want))


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
    p.add_argument("--shards", nargs=2, metavar=("MANIFEST", "REFERENCE"),
                   help="a sharded bundle's manifest and the single-process weekly job's bundle on the same model")
    a = p.parse_args()
    failures = 0
    if a.bundle:
        failures += check_factors(a.job, a.bundle)
    if a.fit_bundle:
        failures += check_weights(a.job, a.fit_bundle, a.tolerance)
    if a.metrics:
        metrics(*a.metrics)
    if a.shards:
        failures += check_shards(*a.shards)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
