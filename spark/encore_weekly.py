#!/usr/bin/env python3
"""Encore's weekly CF stages on Apache Spark (PySpark).

Stages, as `encore-train weekly` runs them on one machine:
  1. load a play log (TSV/CSV with a header, or Parquet; a file or a directory of partitions) and weight the summed
     (user, item) strengths with Encore's confidence weighting (ConfidenceWeighting.swift): bm25 (default, k1 100,
     b 0.8, as implicit's bm25_weight over the items x users matrix), linear, log or none;
  2. fit implicit-feedback ALS with Spark MLlib, Encore's parameters mapped to Spark's (see map_parameters);
  3. write the factors as .npy shards with an .ids file beside each, one per partition, from the executors
     (OUTPUT/users/part-XXXXX.npy + .ids, OUTPUT/items/...): `encore-train import-factors --users OUTPUT/users
     --items OUTPUT/items --output B.h5` makes the bundle. Nothing is collected on the driver.
With --encore-train BIN (the binary installed on the driver and the workers, OUTPUT on storage they share):
  4. import the factors (`encore-train import-factors`, OUTPUT/imported.h5), build the item side once in one process
     (`encore-train weekly --model OUTPUT/imported.h5 --no-playlists`: content spaces and HNSW indexes, the unit
     OUTPUT/item.h5.d), then run Discover Weekly and Daily Mix for --shards user shards in parallel on the executors:
     one task per shard calls `encore-train playlists --users-shard I/N` (OUTPUT/parts/part-I.h5);
  5. assemble the sharded bundle (`encore-train assemble-shards`): OUTPUT/sharded.json names the item side and the
     parts (`encore-serve --bundle OUTPUT/sharded.json --users-shard I/N` serves shard I).
A user belongs to shard I of N when the XXH64 of its UTF-8 id is I modulo N (docs/scale.md).

Input columns: `user`, `item`, and either a strength column (`weight`, `plays`, `count` or `rating`: summed per pair)
or `ms_played` (Encore's play log: a row of at least --min-ms-played milliseconds is one listen, shorter rows are
skips and are dropped, as EventRules say), else every row counts 1.
"""
import argparse
import json
import math
import os
import sys
import time

STRENGTH_COLUMNS = ["weight", "plays", "count", "rating"]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, help="play log: a file or a directory (TSV/CSV with a header, or Parquet)")
    p.add_argument("--format", choices=["auto", "tsv", "csv", "parquet"], default="auto")
    p.add_argument("--output", required=True, help="output directory (users/, items/, job.json)")
    p.add_argument("--weighting", choices=["bm25", "linear", "log", "none"], default="bm25")
    p.add_argument("--weight-alpha", type=float, help="a of linear (default 40) and log (default 1)")
    p.add_argument("--log-epsilon", type=float, default=1.0)
    p.add_argument("--bm25-k1", type=float, default=100.0)
    p.add_argument("--bm25-b", type=float, default=0.8)
    p.add_argument("--min-ms-played", type=int, default=30000, help="shortest play that is a listen (ms_played input)")
    p.add_argument("--factors", type=int, default=100)
    p.add_argument("--regularization", type=float, default=0.01, help="Encore's (implicit's) L2 regularization")
    p.add_argument("--alpha", type=float, default=1.0, help="Encore's confidence scale: confidence = alpha * weight")
    p.add_argument("--iterations", type=int, default=15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-dir", help="where ALS checkpoints its factor RDDs every --checkpoint-interval "
                                            "iterations (shared storage on a cluster; default OUTPUT/checkpoints, "
                                            "removed at the end)")
    p.add_argument("--checkpoint-interval", type=int, default=5,
                   help="ALS iterations between checkpoints: without them the lineage grows with every iteration "
                        "and a long fit fails with a StackOverflowError")
    p.add_argument("--partitions", type=int, default=0, help="shards per side and ALS blocks (0: Spark's parallelism)")
    p.add_argument("--weights-sample", type=float, default=0.0,
                   help="also write this fraction of the weighted pairs to OUTPUT/weights (CSV: user,item,raw,weight)")
    p.add_argument("--weights-only", action="store_true", help="stop after stage 1 (with --weights-sample)")
    p.add_argument("--master", help="Spark master (default: spark-submit's, else local[2])")
    p.add_argument("--encore-train", help="the encore-train binary (same path on the workers): run stages 4 and 5")
    p.add_argument("--shards", type=int, default=0, help="user shards of stage 4 (default: Spark's parallelism)")
    p.add_argument("--encore-events", help="the play log as Encore reads it for the item side and the playlists "
                                           "(default: --input, when it is a TSV/CSV file)")
    p.add_argument("--encore-threads", type=int, default=1, help="threads of each shard's encore-train process")
    p.add_argument("--item-side-threads", type=int,
                   help="threads of the item side's encore-train (it runs alone on the driver; default --encore-threads)")
    p.add_argument("--weekly-arg", action="append", default=[],
                   help="an extra argument of the item side's `encore-train weekly` (repeatable, e.g. --weekly-arg=--no-hybrid)")
    a = p.parse_args(argv)
    if a.factors <= 0 or a.iterations <= 0:
        p.error("--factors and --iterations must be > 0")
    if a.checkpoint_interval < 1:
        p.error("--checkpoint-interval must be >= 1")
    if not (a.regularization >= 0 and a.alpha > 0):
        p.error("--regularization must be >= 0 and --alpha > 0")
    if not (0 <= a.bm25_b <= 1 and a.bm25_k1 >= 0 and a.log_epsilon > 0):
        p.error("--bm25-b must be in [0, 1], --bm25-k1 >= 0, --log-epsilon > 0")
    if not (0 <= a.weights_sample <= 1):
        p.error("--weights-sample must be in [0, 1]")
    if a.encore_train and a.weights_only:
        p.error("--encore-train needs the factors: drop --weights-only")
    if a.item_side_threads is None:
        a.item_side_threads = a.encore_threads
    if a.shards < 0 or a.encore_threads < 1 or a.item_side_threads < 1:
        p.error("--shards must be >= 0, --encore-threads and --item-side-threads >= 1")
    if a.encore_train and a.encore_events is None:
        if os.path.isfile(a.input) and not a.input.endswith(".parquet"):
            a.encore_events = a.input
        else:
            p.error("--encore-train needs --encore-events: the play log as a file Encore reads (TSV/CSV)")
    if a.weight_alpha is None:
        a.weight_alpha = 40.0 if a.weighting == "linear" else 1.0
    return a


def load(spark, args):
    """The log as a DataFrame of (user string, item string, value double): one row per kept input row."""
    from pyspark.sql import functions as F
    fmt = args.format
    if fmt == "auto":
        probe = args.input.rstrip("/")
        fmt = "parquet" if probe.endswith(".parquet") or (
            os.path.isdir(probe) and any(n.endswith(".parquet") for n in os.listdir(probe))) else (
            "csv" if probe.endswith(".csv") else "tsv")
    if fmt == "parquet":
        df = spark.read.parquet(args.input)
    else:
        df = spark.read.option("header", True).option("sep", "\t" if fmt == "tsv" else ",").csv(args.input)
    columns = {c.lower(): c for c in df.columns}
    for need in ("user", "item"):
        if need not in columns:
            sys.exit(f"{args.input}: no '{need}' column (columns: {', '.join(df.columns)})")
    user, item = F.col(columns["user"]).cast("string"), F.col(columns["item"]).cast("string")
    strength = next((columns[c] for c in STRENGTH_COLUMNS if c in columns), None)
    if strength is not None:
        value = F.col(strength).cast("double")
        out = df.select(user.alias("user"), item.alias("item"), value.alias("value"))
        bad = out.filter(F.col("value").isNull() | (F.col("value") < 0) | F.isnan("value")).limit(1).collect()
        if bad:
            sys.exit(f"{args.input}: column '{strength}' must hold numbers >= 0, got a row {bad[0].asDict()}")
        return out, f"summed '{strength}'"
    if "ms_played" in columns:
        ms = F.col(columns["ms_played"]).cast("long")
        out = df.filter(ms.isNull() | (ms >= args.min_ms_played)) \
            .select(user.alias("user"), item.alias("item"), F.lit(1.0).alias("value"))
        return out, f"listens (ms_played >= {args.min_ms_played})"
    return df.select(user.alias("user"), item.alias("item"), F.lit(1.0).alias("value")), "rows counted"


def weight(raw, args):
    """Encore's ConfidenceWeighting over the summed (user, item, raw) pairs, in double, as a `weight` column."""
    from pyspark.sql import functions as F
    v = F.col("raw")
    if args.weighting == "none":
        return raw.withColumn("weight", v)
    if args.weighting == "linear":
        return raw.withColumn("weight", 1 + args.weight_alpha * v)
    if args.weighting == "log":
        return raw.withColumn("weight", 1 + args.weight_alpha * F.log1p(v / args.log_epsilon))
    # bm25_weight on items x users: items are the documents (length = an item's summed strength, normalized by the
    # mean over all items), users the terms (idf from the number of items a user has).
    k1, b = args.bm25_k1, args.bm25_b
    items = raw.groupBy("item").agg(F.sum("raw").alias("item_sum"))
    stats = items.agg(F.count("*").alias("n"), F.sum("item_sum").alias("total")).first()
    n, average = stats["n"], (stats["total"] / stats["n"] if stats["n"] else 0.0)
    norms = items.select("item", ((1 - b) + b * (F.col("item_sum") / average if average > 0 else F.lit(1.0)))
                         .alias("length_norm"))
    users = raw.groupBy("user").agg(F.count("*").alias("df"))
    idf = users.select("user", (F.lit(math.log(n)) - F.log1p(F.col("df").cast("double"))).alias("idf"))
    denominator = k1 * F.col("length_norm") + v
    w = F.when(denominator > 0, v * (k1 + 1) / denominator * F.col("idf")).otherwise(F.lit(0.0))
    return raw.join(F.broadcast(norms) if n < 2_000_000 else norms, "item").join(idf, "user") \
        .withColumn("weight", w).drop("length_norm", "idf")


def map_parameters(args, nnz, n_users, n_items):
    """Encore's (implicit's) ALS parameters as Spark's.

    Encore: an observed pair of weight w has confidence max(alpha * w, floor) and preference 1 (a negative alpha * w:
    confidence max(|alpha * w|, floor), preference 0), `--confidence-floor` 0 by default (implicit's rule); an unobserved pair
    confidence 1, preference 0; the L2 penalty is `regularization` for every row.
    Spark (implicitPrefs): a rating r has confidence 1 + alpha_s * |r| and preference 1 when r > 0, else 0; its
    penalty is regParam times the row's number of positive ratings (ALS-WR).
    So Spark gets alpha_s = 1 and ratings r = sign(c) * (|c| - 1), c = alpha * w: the confidences are equal wherever
    |c| > 1. Where |c| <= 1 the rating is sign(c) * 1e-6: confidence 1 (within 1e-6), the preference kept, which is
    Encore's rule with `--confidence-floor 1` (with the default 0, as implicit, such a pair weighs |c| < 1 instead). The penalty cannot be matched
    row by row; regParam = regularization / m with m = 2 * nnz / (users + items), the mean number of ratings of a
    row, makes the penalty equal for a row of average length (lighter rows get less, heavier ones more).
    """
    mean_ratings = 2.0 * nnz / max(1, n_users + n_items)
    return {"rank": args.factors, "maxIter": args.iterations, "alpha": 1.0,
            "regParam": args.regularization / mean_ratings if mean_ratings > 0 else args.regularization,
            "mean_ratings_per_row": mean_ratings, "rating": "sign(c) * max(|c| - 1, 1e-6), c = alpha * weight"}


def write_side(factors_df, out_dir, rank):
    """Writes (id string, features array) rows as part-XXXXX.npy (float32) + part-XXXXX.ids, one per partition."""
    os.makedirs(out_dir, exist_ok=True)

    def write(index, rows):
        import numpy as np
        ids, vectors = [], []
        for r in rows:
            if "\n" in r[0] or "\r" in r[0]:
                raise ValueError(f"id {r[0]!r} holds a line break; .ids files are one id a line")
            ids.append(r[0])
            vectors.append(r[1])
        matrix = np.asarray(vectors, dtype=np.float32).reshape(len(ids), rank)
        stem = os.path.join(out_dir, "part-%05d" % index)
        # Written under temporary names and renamed, so a retried task never leaves a torn shard.
        with open(stem + ".npy.tmp", "wb") as f:
            np.save(f, matrix)
        with open(stem + ".ids.tmp", "w", encoding="utf-8") as f:
            f.write("".join(i + "\n" for i in ids))
        os.replace(stem + ".npy.tmp", stem + ".npy")
        os.replace(stem + ".ids.tmp", stem + ".ids")
        yield len(ids)

    return sum(factors_df.rdd.mapPartitionsWithIndex(write).collect())  # row counts only, one per partition


def encore(binary, *args):
    """Runs `encore-train` with `args` on this machine; its log goes to stderr, a failure stops the job."""
    import subprocess
    t = time.time()
    r = subprocess.run([binary, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"encore-train {args[0]} failed ({r.returncode}):\n{r.stderr[-4000:]}")
    return time.time() - t, r.stdout


def sharded_playlists(spark, args, times, report):
    """Stages 4 and 5: import, the item side once, the user shards on the executors, the manifest."""
    out = os.path.abspath(args.output)
    binary = os.path.abspath(args.encore_train)
    imported, item = os.path.join(out, "imported.h5"), os.path.join(out, "item.h5")
    times["import_s"], _ = encore(binary, "import-factors", "--users", os.path.join(out, "users"),
                                  "--items", os.path.join(out, "items"), "--output", imported,
                                  "--regularization", str(args.regularization), "--alpha", str(args.alpha))
    events = os.path.abspath(args.encore_events)
    times["item_side_s"], _ = encore(binary, "weekly", "--events", events, "--model", imported, "--no-playlists",
                                     "--eval-users", "0", "--threads", str(args.item_side_threads), "--output", item,
                                     "--work-dir", os.path.join(out, "item.work"), *args.weekly_arg)
    n = args.shards or spark.sparkContext.defaultParallelism
    parts_dir = os.path.join(out, "parts")
    os.makedirs(parts_dir, exist_ok=True)
    threads = str(args.encore_threads)

    def run_shards(numbers):
        import subprocess
        import time as clock
        for i in numbers:
            path = os.path.join(parts_dir, "part-%d.h5" % i)
            t = clock.time()
            r = subprocess.run([binary, "playlists", "--bundle", item, "--users-shard", "%d/%d" % (i, n), "--output",
                                path, "--events", events, "--threads", threads],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:  # the task fails, so Spark retries it and then stops the job with this message
                raise RuntimeError("shard %d/%d: encore-train playlists failed (%d): %s" % (i, n, r.returncode, r.stderr[-2000:]))
            yield i, path, clock.time() - t, r.stdout.strip()

    t = time.time()
    done = spark.sparkContext.parallelize(range(n), n).mapPartitions(run_shards).collect()  # n small tuples
    times["playlists_s"] = time.time() - t
    manifest = os.path.join(out, "sharded.json")
    times["assemble_s"], _ = encore(binary, "assemble-shards", "--item-side", item, "--output", manifest,
                                    *[path for _, path, _, _ in sorted(done)])
    report.update(shards=n, manifest=manifest,
                  shard_seconds={str(i): round(s, 3) for i, _, s, _ in sorted(done)},
                  shard_summaries=[line for _, _, _, line in sorted(done)])


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    started = time.time()
    from pyspark.sql import SparkSession, functions as F
    from pyspark.ml.recommendation import ALS
    builder = SparkSession.builder.appName("encore-weekly").config("spark.ui.showConsoleProgress", "false")
    if args.partitions:
        builder = builder.config("spark.sql.shuffle.partitions", str(args.partitions))
    if args.master:
        builder = builder.master(args.master)
    elif "spark.master" not in os.environ.get("PYSPARK_SUBMIT_ARGS", ""):
        builder = builder.master("local[2]")
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    times, report = {"session_s": time.time() - started}, {"input": args.input, "weighting": args.weighting}
    parts = args.partitions or spark.sparkContext.defaultParallelism
    os.makedirs(args.output, exist_ok=True)

    t = time.time()
    rows, how = load(spark, args)
    raw = rows.groupBy("user", "item").agg(F.sum("value").alias("raw"))
    weighted = weight(raw, args).cache()
    nnz = weighted.count()
    if nnz == 0:
        sys.exit(f"{args.input}: no interactions left to train on ({how})")
    times["load_and_weight_s"] = time.time() - t
    report.update(values=how, pairs=nnz)
    if args.weights_sample > 0:
        weighted.sample(fraction=args.weights_sample, seed=args.seed).select("user", "item", "raw", "weight") \
            .coalesce(1).write.mode("overwrite").option("header", True).csv(os.path.join(args.output, "weights"))
    if not args.weights_only:
        checkpoints = args.checkpoint_dir or os.path.join(args.output, "checkpoints")
        spark.sparkContext.setCheckpointDir(checkpoints)
        t = time.time()
        user_index = weighted.select("user").distinct().rdd.map(lambda r: r[0]).zipWithIndex().toDF(["user", "uid"])
        item_index = weighted.select("item").distinct().rdd.map(lambda r: r[0]).zipWithIndex().toDF(["item", "iid"])
        n_users, n_items = user_index.count(), item_index.count()
        mapped = map_parameters(args, nnz, n_users, n_items)
        c = F.lit(args.alpha) * F.col("weight")
        rating = F.signum(c) * F.greatest(F.abs(c) - 1, F.lit(1e-6))
        ratings = weighted.join(user_index, "user").join(item_index, "item") \
            .select(F.col("uid").cast("int"), F.col("iid").cast("int"), rating.cast("float").alias("rating"))
        als = ALS(rank=mapped["rank"], maxIter=mapped["maxIter"], regParam=mapped["regParam"], alpha=mapped["alpha"],
                  implicitPrefs=True, nonnegative=False, userCol="uid", itemCol="iid", ratingCol="rating",
                  numUserBlocks=parts, numItemBlocks=parts, seed=args.seed, coldStartStrategy="drop",
                  checkpointInterval=args.checkpoint_interval)
        model = als.fit(ratings)
        times["als_s"] = time.time() - t
        t = time.time()
        users = model.userFactors.join(user_index.withColumnRenamed("uid", "id"), "id").select("user", "features") \
            .repartition(parts)
        items = model.itemFactors.join(item_index.withColumnRenamed("iid", "id"), "id").select("item", "features") \
            .repartition(parts)
        written_users = write_side(users, os.path.join(args.output, "users"), args.factors)
        written_items = write_side(items, os.path.join(args.output, "items"), args.factors)
        times["write_s"] = time.time() - t
        report.update(users=n_users, items=n_items, written_users=written_users, written_items=written_items,
                      encore={"factors": args.factors, "regularization": args.regularization, "alpha": args.alpha,
                              "iterations": args.iterations},
                      spark=mapped)
        if args.encore_train:
            sharded_playlists(spark, args, times, report)
    if not args.weights_only and args.checkpoint_dir is None:
        import shutil
        shutil.rmtree(os.path.join(args.output, "checkpoints"), ignore_errors=True)
    report["stage_seconds"] = times
    report["wall_seconds"] = time.time() - started  # from the start of main, the Spark session's start included
    with open(os.path.join(args.output, "job.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(report))
    spark.stop()


if __name__ == "__main__":
    main()
