"""Encore's text and sequence vectors against scikit-learn and gensim, side by side in one run.

Text: a real English corpus available offline, Debian 12 (bookworm) main's package descriptions (the
Translation-en index apt downloads with `apt-get update -o Acquire::Languages=en`; about 64 000 descriptions).
Encore's `encore-train text` and scikit-learn's TfidfVectorizer(min_df=2, max_df=0.95) + TruncatedSVD(100,
algorithm="randomized", n_iter=5) run on the same TSV; the script checks the vocabulary, the TF-IDF values, the
singular values, and times the whole pipeline (read, tokenize, weight, SVD) of both.

Sequences: a synthetic world (`encore-train generate --preset sample`); sessions split at 30 minutes; Encore's
`encore-train sequences` against gensim's Word2Vec(sg=1) with the same parameters and 2 workers: words per second
and neighbour quality (share of an item's 10 nearest neighbours by the same artist / of the same genre; medians over
the repetitions).

A second data set (`--corpus changelogs`): the Debian changelog entries of the installed packages
(/usr/share/doc/*/changelog.Debian.gz, one document per release entry); `--world-seed`/`--preset` pick another world.

Also: how often a simple classifier (logistic regression on TF-IDF) recovers the generator's genre from texts.tsv.

Usage: Benchmarks/.venv/bin/python Benchmarks/compare_text.py --encore .build/release/encore-train
"""
import argparse
import csv
import glob
import gzip
import re
import json
import os
import statistics
import subprocess
import sys
import time

import h5py
import numpy as np
import scipy.sparse as sp

csv.field_size_limit(1 << 30)


def extract_debian(path):
    files = sorted(glob.glob("/var/lib/apt/lists/*debian_dists_bookworm_main_i18n_Translation-en*"))
    if not files and os.path.exists(path):
        # A later plain `apt-get update` drops the index; the extraction made from it is kept.
        with open(path, encoding="utf-8", newline="") as f:
            return sum(1 for _ in csv.reader(f, delimiter="\t", quotechar='"')) - 1, f"{path} (extracted earlier)"
    if not files:
        sys.exit("no Translation-en index: run apt-get update -o Acquire::Languages=en")
    raw = subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", files[0]], check=True, capture_output=True).stdout
    docs, pkg, lines = [], None, []
    for line in raw.decode("utf-8").split("\n") + [""]:
        if line.startswith("Package: "):
            pkg = line[9:]
        elif line.startswith("Description-en: "):
            lines = [line[16:]]
        elif line.startswith(" ") and lines:
            lines.append("" if line == " ." else line[1:])
        elif line == "" and pkg is not None:
            docs.append((pkg, "\n".join(lines)))
            pkg, lines = None, []
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", quotechar='"', quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        w.writerow(["id", "text"])
        for d in docs:
            w.writerow(d)
    return len(docs), files[0]


ENTRY = re.compile(r"\n(?=[a-z0-9][a-z0-9.+-]+ \([^)]*\) [^;\n]*; urgency=)")


def extract_changelogs(path):
    """One document per entry of every installed package's changelog.Debian.gz (ids package/version)."""
    docs = []
    files = sorted(glob.glob("/usr/share/doc/*/changelog.Debian.gz"))
    for name in files:
        text = gzip.open(name, "rt", encoding="utf-8", errors="replace").read()
        package = name.split("/")[-2]
        for k, entry in enumerate(p for p in ENTRY.split(text) if p.strip()):
            docs.append((f"{package}/{k}", entry.strip("\n")))
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", quotechar='"', quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        w.writerow(["id", "text"])
        for d in docs:
            w.writerow(d)
    return len(docs), f"{len(files)} files /usr/share/doc/*/changelog.Debian.gz"


def read_tsv(path):
    with open(path, encoding="utf-8", newline="") as f:
        r = csv.reader(f, delimiter="\t", quotechar='"')
        header = next(r)
        rows = list(r)
    return header, rows


def sklearn_pipeline(path, dims):
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    t0 = time.perf_counter()
    header, rows = read_tsv(path)
    texts = [r[header.index("text")] for r in rows]
    vec = TfidfVectorizer(min_df=2, max_df=0.95)
    x = vec.fit_transform(texts)
    svd = TruncatedSVD(n_components=dims, algorithm="randomized", n_iter=5, random_state=0)
    svd.fit(x)
    return time.perf_counter() - t0, vec, x, svd


def encore_text(encore, path, out, dims, threads):
    t0 = time.perf_counter()
    subprocess.run([encore, "text", "--input", path, "--output", out, "--dimensions", str(dims), "--min-df", "2",
                    "--max-df", "0.95", "--threads", str(threads), "--store-weighted"], check=True,
                   capture_output=True)
    return time.perf_counter() - t0


def sessions_from_plays(path, gap=1800):
    header, rows = read_tsv(path)
    u, i, t, ms = (header.index(c) for c in ("user", "item", "timestamp", "ms_played"))
    plays = [(r[u], int(r[t]), k, r[i]) for k, r in enumerate(rows) if float(r[ms]) >= 30000]
    plays.sort()
    out, cur, last_user, last_time = [], [], None, 0
    for user, ts, _, item in plays:
        if user != last_user or ts - last_time > gap:
            if len(cur) >= 2:
                out.append(cur)
            cur = []
        cur.append(item)
        last_user, last_time = user, ts
    if len(cur) >= 2:
        out.append(cur)
    return out


def neighbour_quality(ids, vectors, artist, genre, k=10):
    v = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    a = np.unique([artist[i] for i in ids], return_inverse=True)[1]
    g = np.unique([genre[i] for i in ids], return_inverse=True)[1]
    same_artist, same_genre, n = 0.0, 0.0, len(ids)
    for start in range(0, n, 256):
        s = v[start:start + 256] @ v.T
        rows = np.arange(s.shape[0])
        s[rows, start + rows] = -np.inf
        nn = np.argpartition(-s, k, axis=1)[:, :k]
        same_artist += float((a[nn] == a[start + rows, None]).sum()) / k
        same_genre += float((g[nn] == g[start + rows, None]).sum()) / k
    return same_artist / n, same_genre / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--encore", default=".build/release/encore-train")
    ap.add_argument("--workdir", default="Benchmarks/results/text")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-text", action="store_true")
    ap.add_argument("--skip-sequences", action="store_true")
    ap.add_argument("--corpus", choices=["debian", "changelogs"], default="debian")
    ap.add_argument("--preset", default="sample")
    ap.add_argument("--world-seed", type=int, default=42)
    ap.add_argument("--world-users", type=int, help="override the preset's number of users")
    ap.add_argument("--skip-genre", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    result = {"load_before": os.getloadavg(), "loads": []}

    if not args.skip_text:
        if args.corpus == "debian":
            corpus = os.path.join(args.workdir, "debian_descriptions.tsv")
            n, source = extract_debian(corpus)
        else:
            corpus = os.path.join(args.workdir, "debian_changelogs.tsv")
            n, source = extract_changelogs(corpus)
        result["corpus"] = {"name": args.corpus, "documents": n, "source": source, "bytes": os.path.getsize(corpus)}
        print(f"corpus: {n} documents ({args.corpus}) from {source}")
        out = os.path.join(args.workdir, "T.h5")
        enc_times, sk_times = [], []
        for _ in range(args.repeats):
            result["loads"].append(os.getloadavg())
            enc_times.append(encore_text(args.encore, corpus, out, 100, args.threads))
            t, vec, x, svd = sklearn_pipeline(corpus, 100)
            sk_times.append(t)
            print(f"text: encore {enc_times[-1]:.2f} s, scikit-learn {t:.2f} s, load {os.getloadavg()}", flush=True)
        with h5py.File(out, "r") as f:
            terms = [s.decode() for s in f["vocabulary/terms"][:]]
            df = f["vocabulary/document_frequency"][:]
            sv = f["svd/singular_values"][:]
            g = f["weighted"]
            ex = sp.csr_matrix((g["values"][:], g["indices"][:], g["indptr"][:]), shape=tuple(g.attrs["shape"]))
        sk_terms = vec.get_feature_names_out().tolist()
        vocab_equal = terms == sk_terms
        sk_df = np.bincount(x.indices, minlength=x.shape[1])
        diff = (ex.astype(np.float64) - x).tocsr()
        pattern_equal = ex.nnz == x.nnz and (abs(ex).sign() != abs(x).sign()).nnz == 0
        max_abs = float(abs(diff).max()) if diff.nnz else 0.0
        rel = np.abs(sv.astype(np.float64) - svd.singular_values_) / svd.singular_values_
        result["text"] = {
            "terms": len(terms), "vocabulary_equal": vocab_equal, "document_frequency_equal": bool(np.array_equal(df, sk_df)),
            "tfidf_pattern_equal": bool(pattern_equal), "tfidf_max_abs_diff": max_abs,
            "singular_values_max_rel_diff": float(rel.max()), "singular_values_median_rel_diff": float(np.median(rel)),
            "encore_seconds": enc_times, "sklearn_seconds": sk_times,
            "encore_median": statistics.median(enc_times), "sklearn_median": statistics.median(sk_times),
            "speedup": statistics.median(sk_times) / statistics.median(enc_times),
        }
        print(json.dumps(result["text"], indent=1))

    if not args.skip_sequences:
        from gensim.models import Word2Vec
        users = [] if args.world_users is None else ["--users", str(args.world_users)]
        world = os.path.join(args.workdir, f"world-{args.preset}-{args.world_seed}"
                             + ("" if args.world_users is None else f"-u{args.world_users}"))
        if not os.path.exists(os.path.join(world, "world.json")):
            subprocess.run([args.encore, "generate", "--preset", args.preset, "--seed", str(args.world_seed),
                            *users, "--output", world], check=True, capture_output=True)
        _, tracks = read_tsv(os.path.join(world, "tracks.tsv"))
        artist = {r[0]: r[1] for r in tracks}
        genre = {r[0]: r[3] for r in tracks}
        sessions = sessions_from_plays(os.path.join(world, "plays.tsv"))
        params = dict(vector_size=64, window=5, negative=5, min_count=5, epochs=5, sample=1e-3)
        out = os.path.join(args.workdir, "S.h5")
        enc_rates, gs_rates, enc_wall, e_quality, g_quality = [], [], [], [], []
        for rep in range(args.repeats):
            result["loads"].append(os.getloadavg())
            t0 = time.perf_counter()
            p = subprocess.run([args.encore, "sequences", "--events", os.path.join(world, "plays.tsv"), "--output", out,
                                "--dim", "64", "--window", "5", "--negative", "5", "--min-count", "5", "--epochs", "5",
                                "--sample", "1e-3", "--threads", "2", "--seed", str(rep + 1)],
                               check=True, capture_output=True, text=True)
            enc_wall.append(time.perf_counter() - t0)
            line = [l for l in p.stderr.splitlines() if "sequence vectors written" in l][-1]
            enc_rates.append(float(line.split("tokens_per_second=")[1].split()[0]))
            model = Word2Vec(sg=1, workers=2, seed=rep + 1, **params)
            model.build_vocab(sessions)
            t0 = time.perf_counter()
            effective, _raw = model.train(sessions, total_examples=model.corpus_count, epochs=model.epochs)
            gs_rates.append(effective / (time.perf_counter() - t0))
            with h5py.File(out, "r") as f:
                ids = [s.decode() for s in f["ids"][:]]
                ev = f["vectors"][:]
            common = [i for i in ids if i in model.wv.key_to_index]
            e_rows = {t: k for k, t in enumerate(ids)}
            e_quality.append(neighbour_quality(common, ev[[e_rows[i] for i in common]], artist, genre))
            g_quality.append(neighbour_quality(common, model.wv[common], artist, genre))
            print(f"sequences: encore {enc_rates[-1]:.0f} words/s, gensim {gs_rates[-1]:.0f} words/s, "
                  f"load {os.getloadavg()}", flush=True)
        eq = [statistics.median(q[k] for q in e_quality) for k in (0, 1)]
        gq = [statistics.median(q[k] for q in g_quality) for k in (0, 1)]
        result["sequences"] = {
            "world": {"preset": args.preset, "seed": args.world_seed, "users": args.world_users},
            "sessions": len(sessions), "items": len(common),
            "encore_words_per_second": enc_rates, "gensim_words_per_second": gs_rates,
            "encore_median": statistics.median(enc_rates), "gensim_median": statistics.median(gs_rates),
            "ratio": statistics.median(enc_rates) / statistics.median(gs_rates), "encore_wall_seconds": enc_wall,
            "encore_quality_per_run": e_quality, "gensim_quality_per_run": g_quality,
            "encore_same_artist": eq[0], "encore_same_genre": eq[1],
            "gensim_same_artist": gq[0], "gensim_same_genre": gq[1],
        }
        print(json.dumps(result["sequences"], indent=1))

    if not args.skip_sequences and not args.skip_genre:
        # Genre from text alone: logistic regression on TF-IDF, per document and per id (documents combined).
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import cross_val_score
        _, artists = read_tsv(os.path.join(world, "artists.tsv"))
        label = dict(genre)
        label.update({r[0]: r[2] for r in artists})
        th, trows = read_tsv(os.path.join(world, "texts.tsv"))
        docs = [(r[0], r[2]) for r in trows]
        x = TfidfVectorizer(min_df=2).fit_transform([d[1] for d in docs])
        y = [label[d[0]] for d in docs]
        per_doc = cross_val_score(LogisticRegression(max_iter=2000), x, y, cv=5).mean()
        by_id = {}
        for i, t in docs:
            by_id.setdefault(i, []).append(t)
        keys = sorted(by_id)
        xi = TfidfVectorizer(min_df=2).fit_transform([" ".join(by_id[k]) for k in keys])
        per_id = cross_val_score(LogisticRegression(max_iter=2000), xi, [label[k] for k in keys], cv=5).mean()
        with_text = len({d[0] for d in docs if d[0].startswith("t")})
        result["genre_from_text"] = {"documents": len(docs), "per_document_accuracy": float(per_doc),
                                     "per_id_accuracy": float(per_id), "tracks_with_text": with_text,
                                     "tracks": len(tracks), "genres": len(set(genre.values()))}
        print(json.dumps(result["genre_from_text"], indent=1))

    result["load_after"] = os.getloadavg()
    name = (f"results-{args.corpus if not args.skip_text else 'no-text'}-{args.preset}-{args.world_seed}"
            f"{'' if args.world_users is None else f'-u{args.world_users}'}.json")
    with open(os.path.join(args.workdir, name), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
