#!/usr/bin/env python3
"""Checks of Benchmarks/spark/run.sh: the imported bundle holds the Spark job's .npy shards exactly, Spark's
weighting equals Encore's on the same data, the two models' metrics side by side, the sharded playlists equal
the single-process job's; for --bench, the stage table (Spark job against `encore-train weekly`) and the quality
line."""
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


def weekly_stages(report_txt):
    """{stage: seconds} from the `stages:` line of a weekly job's report.txt."""
    with open(report_txt, encoding="utf-8") as f:
        line = next((x for x in f if x.startswith("stages: ")), None)
    if line is None:
        raise SystemExit(f"{report_txt}: no 'stages:' line")
    out = {}
    for part in line[len("stages: "):].strip().split(", "):
        name, _, seconds = part.rpartition(" ")
        if not seconds.endswith("s"):
            raise SystemExit(f"{report_txt}: cannot read the stage '{part}'")
        out[name] = float(seconds[:-1])
    return out


def wall_of(folder):
    """The wall seconds run.sh recorded in FOLDER/wall.txt, or None."""
    path = os.path.join(folder, "wall.txt")
    return float(open(path).read().split()[0]) if os.path.exists(path) else None


# The side-by-side rows: a label, the Spark job's stage_seconds keys, the weekly job's stages.
STAGE_ROWS = [
    ("start (Spark session / -)", ["session_s"], []),
    ("load and weight / load", ["load_and_weight_s"], ["load"]),
    ("ALS / fit", ["als_s"], ["fit"]),
    ("factor shards + import-factors / -", ["write_s", "import_s"], []),
    ("item side (content, indexes, bundle) / content + index", ["item_side_s"], ["text", "sequence", "hybrid", "index"]),
    ("playlists (shard tasks) / discover-weekly + daily-mix", ["playlists_s"], ["discover-weekly", "daily-mix"]),
    ("assemble-shards / evaluate + bundle", ["assemble_s"], ["evaluate", "bundle"]),
]


def median(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def stages(job_dirs, report_dirs):
    """Median seconds per stage of the Spark job's runs (job.json) against the weekly job's (report.txt)."""
    jobs = [json.load(open(os.path.join(d, "job.json"))) for d in job_dirs]
    weeklies = [weekly_stages(os.path.join(d, "report.txt")) for d in report_dirs]
    sparks = [j["stage_seconds"] for j in jobs]
    fmt = lambda x: "-" if x is None else f"{x:.1f}"
    print(f"median of {len(jobs)} Spark run(s) and {len(weeklies)} weekly run(s), seconds")
    print(f"{'stage (Spark / Encore)':<58}{'Spark s':>10}{'Encore s':>10}")
    for label, spark_keys, weekly_keys in STAGE_ROWS:
        s = median([sum(t[k] for k in spark_keys if k in t) if any(k in t for k in spark_keys) else None
                    for t in sparks]) if spark_keys else None
        w = median([sum(t[k] for k in weekly_keys if k in t) if any(k in t for k in weekly_keys) else None
                    for t in weeklies]) if weekly_keys else None
        print(f"{label:<58}{fmt(s):>10}{fmt(w):>10}")
    known = {k for _, keys, _ in STAGE_ROWS for k in keys}
    extra = sorted({k for t in sparks for k in t} - known)
    if extra:
        print("  Spark stages not in the table:", ", ".join(extra))
    spark_sum = median([sum(t.values()) for t in sparks])
    weekly_sum = median([sum(t.values()) for t in weeklies])
    print(f"{'sum of stages':<58}{fmt(spark_sum):>10}{fmt(weekly_sum):>10}")
    print(f"{'wall (whole command)':<58}{fmt(median([wall_of(d) for d in job_dirs])):>10}"
          f"{fmt(median([wall_of(d) for d in report_dirs])):>10}")
    items = [os.path.join(d, "item-report", "report.txt") for d in job_dirs]
    items = [weekly_stages(p) for p in items if os.path.exists(p)]
    if items:
        parts = {k: median([t.get(k) for t in items]) for k in items[0]}
        print("  the Spark job's item side (`weekly --model --no-playlists`): "
              + ", ".join(f"{k} {fmt(v)}" for k, v in parts.items()))
    for j in jobs:
        if "shard_seconds" in j:
            print("  shard task seconds:", ", ".join(f"{k}: {v:.1f}" for k, v in sorted(j["shard_seconds"].items())))
    for label, values in (("Spark", [wall_of(d) for d in job_dirs]), ("Encore", [wall_of(d) for d in report_dirs])):
        if any(v is not None for v in values):
            print(f"  {label} wall per run: " + ", ".join(fmt(v) for v in values))


def quality(spark_json, fit_json, metric, tolerance):
    """The quality line: `metric` of Spark's factors against Encore's fit, and the worst metric's ratio."""
    a, b = json.load(open(spark_json)), json.load(open(fit_json))
    if metric not in a or metric not in b:
        raise SystemExit(f"no '{metric}' in {spark_json} or {fit_json} (have: {', '.join(sorted(a))})")
    rel = (a[metric] - b[metric]) / b[metric]
    ratios = {k: a[k] / b[k] for k in sorted(set(a) & set(b))
              if "@" in k and isinstance(a[k], (int, float)) and isinstance(b[k], (int, float)) and b[k]}
    worst = min(ratios, key=ratios.get)
    ok = abs(rel) <= tolerance
    print(f"quality: {metric} Spark {a[metric]:.4f}, Encore {b[metric]:.4f}, relative difference {100 * rel:+.2f} % "
          f"(within {100 * tolerance:g} % either way: {'yes' if ok else 'NO'}); lowest Spark/Encore ratio: {worst} "
          f"{ratios[worst]:.3f}")
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--job", help="the Spark job's output folder (for --bundle and --fit-bundle)")
    p.add_argument("--bundle", help="the bundle import-factors made from the job's shards")
    p.add_argument("--fit-bundle", help="encore-train fit's bundle on the same data, for the weights")
    p.add_argument("--tolerance", type=float, default=1e-5)
    p.add_argument("--metrics", nargs=2, metavar=("SPARK_JSON", "FIT_JSON"))
    p.add_argument("--shards", nargs=2, metavar=("MANIFEST", "REFERENCE"),
                   help="a sharded bundle's manifest and the single-process weekly job's bundle on the same model")
    p.add_argument("--stages", nargs="+", metavar="DIR", help="Spark job output folders (job.json), one per run")
    p.add_argument("--weekly-reports", nargs="+", metavar="DIR", default=[],
                   help="with --stages: the weekly job's report folders (report.txt), one per run")
    p.add_argument("--quality", nargs=2, metavar=("SPARK_JSON", "FIT_JSON"),
                   help="evaluate's JSON of Spark's factors and of fit's: the quality line")
    p.add_argument("--metric", default="ndcg@10", help="the metric of the quality line")
    p.add_argument("--quality-tolerance", type=float, default=0.02,
                   help="how far below Encore's the metric may be (relative)")
    a = p.parse_args()
    if (a.bundle or a.fit_bundle) and not a.job:
        p.error("--bundle and --fit-bundle need --job")
    if a.stages:
        stages(a.stages, a.weekly_reports)
    failures = 0
    if a.bundle:
        failures += check_factors(a.job, a.bundle)
    if a.fit_bundle:
        failures += check_weights(a.job, a.fit_bundle, a.tolerance)
    if a.metrics:
        metrics(*a.metrics)
    if a.shards:
        failures += check_shards(*a.shards)
    if a.quality:
        failures += quality(*a.quality, a.metric, a.quality_tolerance)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
