#!/usr/bin/env python3
"""Quality of Encore's audio embedding CNN, with ground truth: the audible synthetic world and real recordings.

`world`: the sample world rendered to audio (`encore-train generate --preset sample --output DIR --seed 42 --audio`,
release build). 20% of the tracks that have plays and audio are held out (seeded): their plays are removed from the
play log, `weekly` fits the CF model on the rest, the CF head is trained (`train-audio --objective cf`) on the tracks
that kept a CF vector, and `embed` predicts the held-out tracks' vectors from audio alone. Each user's held-out
listens (plays of at least 30 s) are the positives; the held-out tracks are ranked for each user by the dot product
of the user's vector with the predicted (unit) item vector. Reported: the mean per-user AUC and the hit rate at 10
(a held-out track the user listened to among the 10 best-ranked held-out tracks), for the CNN, a ridge regression
from MFCC statistics (mean and standard deviation of 20 MFCCs, computed here from the same log-mel with a DCT-II as
librosa.feature.mfcc does) to the same unit vectors, and random vectors. Contrastive: a model trained with
`--objective contrastive` on all rendered tracks; precision@5 of same-artist neighbours (cosine) against the MFCC
statistics (standardized).

`real`: recordings from Debian game-soundtrack packages (see `real --help` for the folder), one soundtrack per
package. `analyze --log-mel` (first --seconds of each file), a contrastive model, precision@5 of same-soundtrack
neighbours against MFCC statistics.

Both also check `encore-train embed` against the numpy forward pass of notebooks-data/audio_model_forward.py.

Setup (once):
    python3 -m venv Benchmarks/.venv && Benchmarks/.venv/bin/pip install numpy scipy h5py scikit-learn
    swift build -c release --product encore-train
Run:
    Benchmarks/.venv/bin/python Benchmarks/audio_model_quality.py world --world /tmp/s --work /tmp/s-quality
    Benchmarks/.venv/bin/python Benchmarks/audio_model_quality.py real --data Benchmarks/audio-model-data/extracted \
        --work /tmp/real-quality
"""
import argparse
import csv
import glob
import os
import subprocess
import sys
import time

import h5py
import numpy as np
from scipy.fft import dct
from sklearn.linear_model import RidgeCV

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "notebooks-data"))
import audio_model_forward as amf  # noqa: E402

ENCORE = os.path.join(ROOT, ".build", "release", "encore-train")


def run(args, log=None):
    started = time.time()
    print("$ " + " ".join(args), flush=True)
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    if log:
        with open(log, "a") as f:
            f.write(out.stdout + out.stderr)
    return time.time() - started


def read_features(path):
    with h5py.File(path, "r") as f:
        ids = list(f["tracks/ids"].asstr()[()])
        logmel = f["logmel/data"][()]
        offsets = f["logmel/offsets"][()]
    return ids, logmel, offsets


def mfcc_stats(logmel, offsets, n_mfcc=20):
    """Mean and standard deviation over frames of 20 MFCCs (DCT-II, orthonormal, of the log-mel dB) per track."""
    out = []
    for t in range(len(offsets) - 1):
        m = dct(logmel[offsets[t]:offsets[t + 1]].astype(np.float64), type=2, axis=1, norm="ortho")[:, :n_mfcc]
        out.append(np.concatenate([m.mean(axis=0), m.std(axis=0)]))
    return np.array(out)


def standardize(x):
    return (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-9)


def unit(v):
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def precision_at(vectors, labels, k=5):
    """Mean over tracks of the share of its k nearest neighbours (cosine, itself excluded) with the same label."""
    v = unit(np.asarray(vectors, dtype=np.float64))
    sims = v @ v.T
    np.fill_diagonal(sims, -np.inf)
    labels = np.asarray(labels)
    top = np.argsort(-sims, axis=1)[:, :k]
    return float((labels[top] == labels[:, None]).mean())


def chance_precision(labels):
    labels = np.asarray(labels)
    _, counts = np.unique(labels, return_counts=True)
    n = len(labels)
    return float(sum(c * (c - 1) / (n - 1) for c in counts) / n)


CHECK_TRACKS = 100


def embed_and_check(model, features, out):
    run([ENCORE, "embed", "--model", model, "--features", features, "--output", out, "--threads", "2"])
    diff, cf_diff = amf.check(model, features, out, limit=CHECK_TRACKS)
    print(f"numpy forward vs encore embed (first {CHECK_TRACKS} tracks): max abs diff {diff:.2e} (embeddings), "
          f"{cf_diff:.2e} (cf)")
    with h5py.File(out, "r") as f:
        ids = list(f["tracks/ids"].asstr()[()])
        e = f["embeddings"][()]
        cf = f["cf_predicted"][()] if "cf_predicted" in f else None
    return ids, e, cf, max(diff, cf_diff)


def find_bundle(unit_dir):
    files = sorted(glob.glob(os.path.join(unit_dir, "**", "*.h5"), recursive=True), key=os.path.getmtime)
    files = [f for f in files if "work" not in os.path.relpath(f, unit_dir).split(os.sep)[0]]
    if not files:
        sys.exit(f"no bundle under {unit_dir}")
    return files[-1]


def auc_and_hits(user_vectors, item_vectors, positives, k=10):
    """Mean per-user AUC of the positives against the other items, and the share of users with a positive in the
    top k."""
    scores = user_vectors @ item_vectors.T
    aucs, hits = [], []
    for u, pos in positives.items():
        s = scores[u]
        mask = np.zeros(len(s), bool)
        mask[list(pos)] = True
        if mask.all() or not mask.any():
            continue
        order = np.argsort(s)
        ranks = np.empty(len(s))
        ranks[order] = np.arange(1, len(s) + 1)
        n_pos, n_neg = mask.sum(), (~mask).sum()
        aucs.append((ranks[mask].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
        hits.append(mask[np.argsort(-s)[:k]].any())
    return float(np.mean(aucs)), float(np.mean(hits)), len(aucs)


def world(args):
    os.makedirs(args.work, exist_ok=True)
    log = os.path.join(args.work, "log.txt")
    features = os.path.join(args.work, "features.h5")
    if not os.path.exists(features):
        secs = run([ENCORE, "analyze", "--audio", os.path.join(args.world, "audio"), "--output", features, "--log-mel",
                    "--threads", "2"], log)
        print(f"analyze: {secs:.0f} s")
    # analyze names each track by its path under audio/ (t0000042.flac); the world's plays, and so the bundle, by
    # its track id (t0000042): a copy of the features file carries the ids.
    features_ids = os.path.join(args.work, "features_ids.h5")
    if not os.path.exists(features_ids):
        import shutil
        shutil.copyfile(features, features_ids + ".tmp")
        with h5py.File(features_ids + ".tmp", "r+") as f:
            stems = [os.path.splitext(os.path.basename(i))[0] for i in f["tracks/ids"].asstr()[()]]
            del f["tracks/ids"]
            f.create_dataset("tracks/ids", data=np.array(stems, dtype=object), dtype=h5py.string_dtype())
        os.replace(features_ids + ".tmp", features_ids)
    features = features_ids
    ids, logmel, offsets = read_features(features)
    index = {t: i for i, t in enumerate(ids)}
    artist = {}
    with open(os.path.join(args.world, "tracks.tsv")) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            artist[row["item"]] = row["artist"]
    with open(os.path.join(args.world, "plays.tsv")) as f:
        header = f.readline()
        plays = [line.rstrip("\n").split("\t") for line in f]
    played = sorted({p[1] for p in plays if p[1] in index})
    rng = np.random.default_rng(args.seed)
    held = set(rng.choice(played, size=int(round(0.2 * len(played))), replace=False).tolist())
    print(f"{len(ids)} tracks with audio, {len(played)} of them played; {len(held)} held out")

    train_dir = os.path.join(args.work, "train")
    os.makedirs(train_dir, exist_ok=True)
    train_plays = os.path.join(train_dir, "plays.tsv")
    with open(train_plays, "w") as f:
        f.write(header)
        for p in plays:
            if p[1] not in held:
                f.write("\t".join(p) + "\n")
    unit_dir = os.path.join(args.work, "bundle.h5")
    if not glob.glob(os.path.join(unit_dir + ".d", "**", "*.h5"), recursive=True):
        secs = run([ENCORE, "weekly", "--events", train_plays, "--no-catalog", "--output", unit_dir,
                    "--eval-users", "0", "--threads", "2"], log)
        print(f"weekly: {secs:.0f} s")
    bundle = find_bundle(unit_dir + ".d")
    with h5py.File(bundle, "r") as f:
        users = list(f["ids/users"].asstr()[()])
        items = list(f["ids/items"].asstr()[()])
        user_factors = f["cf/user_factors"][()]
        item_factors = f["cf/item_factors"][()]
    print(f"bundle {bundle}: {len(users)} users, {len(items)} items, {item_factors.shape[1]} factors")
    assert not held & set(items), "a held-out track is in the bundle"

    cf_model = os.path.join(args.work, "cf_model.h5")
    if not os.path.exists(cf_model):
        secs = run([ENCORE, "train-audio", "--features", features, "--output", cf_model, "--objective", "cf",
                    "--bundle", bundle, "--epochs", str(args.epochs), "--threads", "2", "--seed", str(args.seed)], log)
        print(f"train-audio --objective cf: {secs:.0f} s")
    with h5py.File(cf_model, "r") as f:
        hist = {k: f["history"][k][()] for k in f["history"]}
    print(f"cf model: {len(hist['epoch'])} epochs, {hist['seconds'].sum():.0f} s of training, best validation "
          f"loss {np.nanmin(hist['validation_loss']):.4f}")
    emb_ids, _, cf_pred, _ = embed_and_check(cf_model, features, os.path.join(args.work, "cf_embeddings.h5"))
    assert emb_ids == ids

    # Held-out listens of the users the bundle knows.
    user_index = {u: i for i, u in enumerate(users)}
    held_list = sorted(held)
    held_pos = {t: j for j, t in enumerate(held_list)}
    positives = {}
    for user, item, _, ms in plays:
        if item in held_pos and user in user_index and (ms == "" or int(ms) >= 30000):
            positives.setdefault(user_index[user], set()).add(held_pos[item])
    rows = [index[t] for t in held_list]

    # Ridge from MFCC statistics to the unit CF vectors of the training tracks.
    stats = standardize(mfcc_stats(logmel, offsets))
    item_index = {t: i for i, t in enumerate(items)}
    train_rows = [index[t] for t in items if t in index]
    targets = unit(item_factors[[item_index[ids[r]] for r in train_rows]])
    ridge = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(stats[train_rows], targets)
    ridge_pred = unit(ridge.predict(stats[rows]))
    random_pred = unit(rng.standard_normal((len(rows), item_factors.shape[1])))

    print(f"\nCold start: {len(held_list)} held-out tracks, {len(positives)} users with held-out listens")
    print(f"  {'method':34s} {'AUC':>7s} {'hit@10':>7s}")
    for name, pred in (("CNN CF head (audio only)", unit(cf_pred[rows])), ("ridge on MFCC statistics", ridge_pred),
                       (f"ridge alpha {ridge.alpha_:g}: -", None), ("random vectors", random_pred)):
        if pred is None:
            continue
        auc, hits, n = auc_and_hits(user_factors, pred, positives)
        print(f"  {name:34s} {auc:7.3f} {hits:7.3f}   ({n} users)")
    # Upper reference: the ALS vectors of the held-out tracks fitted with their plays are not available by design.

    # Contrastive embeddings: same-artist precision@5.
    con_model = os.path.join(args.work, "contrastive_model.h5")
    if not os.path.exists(con_model):
        secs = run([ENCORE, "train-audio", "--features", features, "--output", con_model, "--objective",
                    "contrastive", "--epochs", str(args.contrastive_epochs), "--threads", "2", "--seed", str(args.seed)],
                   log)
        print(f"train-audio --objective contrastive: {secs:.0f} s")
    with h5py.File(con_model, "r") as f:
        hist = {k: f["history"][k][()] for k in f["history"]}
    print(f"contrastive model: {len(hist['epoch'])} epochs, {hist['seconds'].sum():.0f} s of training")
    _, con, _, _ = embed_and_check(con_model, features, os.path.join(args.work, "contrastive_embeddings.h5"))
    labels = [artist[t] for t in ids]
    print(f"\nSame-artist precision@5 over {len(ids)} tracks ({len(set(labels))} artists; chance "
          f"{chance_precision(labels):.3f}):")
    print(f"  contrastive CNN embeddings   {precision_at(con, labels):.3f}")
    print(f"  CNN CF-head predictions      {precision_at(unit(cf_pred), labels):.3f}")
    print(f"  MFCC statistics              {precision_at(stats, labels):.3f}")


def real(args):
    os.makedirs(args.work, exist_ok=True)
    log = os.path.join(args.work, "log.txt")
    files, labels = [], []
    for package in sorted(os.listdir(args.data)):
        found = []
        for ext in ("ogg", "opus", "mp3", "flac"):
            found += glob.glob(os.path.join(args.data, package, "**", f"*.{ext}"), recursive=True)
        # Music only: sound effects and speech live in other folders of some packages.
        # Some packages link one recording into several folders (languages): keep each file once.
        found = sorted({os.path.realpath(f) for f in found if os.path.getsize(f) > 300_000
                        and not any(s in f.split(os.sep) for s in ("sounds", "speech", "sfx"))})
        if len(found) >= 3:
            files += found
            labels += [package] * len(found)
    manifest = os.path.join(args.work, "manifest.tsv")
    with open(manifest, "w") as f:
        for p in files:
            f.write(p + "\n")
    print(f"{len(files)} recordings from {len(set(labels))} soundtracks: "
          + ", ".join(f"{p} {labels.count(p)}" for p in sorted(set(labels))))
    features = os.path.join(args.work, "features.h5")
    if not os.path.exists(features):
        secs = run([ENCORE, "analyze", "--audio", manifest, "--output", features, "--log-mel", "--duration",
                    str(args.seconds), "--threads", "2"], log)
        print(f"analyze ({args.seconds} s of each): {secs:.0f} s")
    ids, logmel, offsets = read_features(features)
    by_id = {}
    for p, lab in zip(files, labels):
        by_id[p] = lab
        by_id[os.path.splitext(os.path.basename(p))[0]] = lab
    track_labels = [by_id.get(i, by_id.get(os.path.splitext(os.path.basename(i))[0])) for i in ids]
    assert all(track_labels), "a features id matches no file"
    model = os.path.join(args.work, "contrastive_model.h5")
    if not os.path.exists(model):
        secs = run([ENCORE, "train-audio", "--features", features, "--output", model, "--objective", "contrastive",
                    "--epochs", str(args.epochs), "--threads", "2", "--seed", str(args.seed)], log)
        print(f"train-audio --objective contrastive: {secs:.0f} s")
    with h5py.File(model, "r") as f:
        hist = {k: f["history"][k][()] for k in f["history"]}
    print(f"contrastive model: {len(hist['epoch'])} epochs, {hist['seconds'].sum():.0f} s of training")
    _, e, _, _ = embed_and_check(model, features, os.path.join(args.work, "embeddings.h5"))
    stats = standardize(mfcc_stats(logmel, offsets))
    print(f"\nSame-soundtrack precision@5 over {len(ids)} recordings (chance {chance_precision(track_labels):.3f}):")
    print(f"  contrastive CNN embeddings   {precision_at(e, track_labels):.3f}")
    print(f"  MFCC statistics              {precision_at(stats, track_labels):.3f}")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser("world")
    w.add_argument("--world", required=True, help="the folder of generate --audio")
    w.add_argument("--work", required=True)
    w.add_argument("--epochs", type=int, default=30, help="epochs of the CF model")
    w.add_argument("--contrastive-epochs", type=int, default=30)
    w.add_argument("--seed", type=int, default=42)
    r = sub.add_parser("real")
    r.add_argument("--data", default=os.path.join(HERE, "audio-model-data", "extracted"),
                   help="one folder per Debian package (apt-get download PKG && dpkg -x PKG.deb DATA/PKG)")
    r.add_argument("--work", required=True)
    r.add_argument("--seconds", type=float, default=60)
    r.add_argument("--epochs", type=int, default=30)
    r.add_argument("--seed", type=int, default=42)
    args = p.parse_args()
    print(f"load at start: {os.getloadavg()}")
    world(args) if args.command == "world" else real(args)


if __name__ == "__main__":
    main()
