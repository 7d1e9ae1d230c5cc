#!/usr/bin/env python3
"""Check an Encore model bundle (HDF5) with h5py and numpy, and list recommendations from it.

Usage:
    check_bundle.py BUNDLE [EXPECTED_JSON] [--recommend USER_ID] [-n N] [--content CONTENT_JSON]

With EXPECTED_JSON (written by the Swift test BundleTests.h5pyReadsBundle) the script compares the root
attributes, ids, shapes, dtypes, factors (allclose), ALS parameters, the CSR training matrix, metrics and metadata
with the JSON and exits 1 on any mismatch. With --recommend it prints the user's top-N unplayed items (scores =
item_factors @ user_factor, items in the user's row of /cf/user_items excluded) and, when the JSON lists expected
recommendations for that user, checks them too. The recommendation logic is the one of
notebooks-data/explore_bundle.ipynb. With --content (written by the Swift test of the weekly job's content stages)
it checks the content spaces (/audio, /text, /sequence): every id is an item of /ids/items, one float32 row per
id, and the ids and values the JSON lists.

Exit codes: 0 all checks passed, 1 a mismatch, 2 usage error or unreadable bundle, 3 h5py/numpy missing.
"""

import argparse
import json
import sys

try:
    import h5py
    import numpy as np
except ImportError as exc:  # pragma: no cover - depends on the environment
    print(f"check_bundle.py: {exc}; install with: pip install h5py numpy", file=sys.stderr)
    sys.exit(3)


def read_ids(f, path):
    """The strings of a variable-length UTF-8 dataset as a Python list."""
    return list(f[path].asstr()[()])


def recommend(f, user_id, n=10):
    """Top-n (item_id, score) pairs for user_id, excluding the items the user played in training."""
    users = read_ids(f, "/ids/users")
    items = read_ids(f, "/ids/items")
    try:
        u = users.index(user_id)
    except ValueError:
        raise KeyError(f"unknown user {user_id!r}") from None
    user_factor = f["/cf/user_factors"][u].astype(np.float64)
    item_factors = f["/cf/item_factors"][()].astype(np.float64)
    scores = item_factors @ user_factor
    indptr = f["/cf/user_items/indptr"]
    start, end = int(indptr[u]), int(indptr[u + 1])
    played = f["/cf/user_items/indices"][start:end]
    scores[played] = -np.inf
    order = np.argsort(-scores, kind="stable")  # ties: lower item index first
    order = [int(i) for i in order if np.isfinite(scores[i])][:n]
    return [(items[i], float(scores[i])) for i in order]


class Checker:
    def __init__(self):
        self.failures = []
        self.passed = 0

    def check(self, condition, what):
        if condition:
            self.passed += 1
        else:
            self.failures.append(what)

    def equal(self, actual, expected, what):
        self.check(actual == expected, f"{what}: got {actual!r}, expected {expected!r}")

    def close(self, actual, expected, what, rtol=1e-6, atol=1e-7):
        actual = np.asarray(actual)
        expected = np.asarray(expected, dtype=np.float64)
        ok = actual.shape == expected.shape and np.allclose(actual, expected, rtol=rtol, atol=atol)
        self.check(ok, f"{what}: values differ (shape {actual.shape} vs {expected.shape})")


def check_bundle(f, exp):
    c = Checker()
    # Root attributes.
    c.equal(f.attrs["encore_version"], exp["encore_version"], "/@encore_version")
    c.equal(int(f.attrs["encore_format_version"]), exp["format_version"], "/@encore_format_version")
    if "created_at" in exp:
        c.equal(f.attrs["created_at"], exp["created_at"], "/@created_at")

    # Ids: bytes by default, str through asstr().
    users, items = read_ids(f, "/ids/users"), read_ids(f, "/ids/items")
    c.equal(users, exp["users"], "/ids/users")
    c.equal(items, exp["items"], "/ids/items")
    raw = f["/ids/users"][()]
    c.check(len(raw) == 0 or isinstance(raw[0], bytes), "/ids/users: expected bytes without asstr()")
    c.equal(h5py.check_string_dtype(f["/ids/items"].dtype).encoding, "utf-8", "/ids/items encoding")

    # Factors.
    k = exp["factors"]
    for name, rows in (("user_factors", len(exp["users"])), ("item_factors", len(exp["items"]))):
        d = f["/cf/" + name]
        c.equal(d.shape, (rows, k), f"/cf/{name} shape")
        c.equal(d.dtype, np.dtype("float32"), f"/cf/{name} dtype")
        c.close(d[()], exp[name], f"/cf/{name}")

    # Parameters.
    cf = f["/cf"].attrs
    p = exp["parameters"]
    for key in ("factors", "iterations", "cg_steps", "seed"):
        c.equal(int(cf[key]), p[key], f"/cf@{key}")
    for key in ("regularization", "alpha"):
        c.check(np.isclose(float(cf[key]), p[key], rtol=1e-6), f"/cf@{key}: {cf[key]} vs {p[key]}")
    c.equal(cf["solver"], p["solver"], "/cf@solver")

    # CSR training matrix (the scipy.sparse.csr_matrix layout).
    g = f["/cf/user_items"]
    csr = exp["csr"]
    c.equal([int(x) for x in g.attrs["shape"]], csr["shape"], "/cf/user_items@shape")
    c.equal(g["indptr"].dtype, np.dtype("int64"), "/cf/user_items/indptr dtype")
    c.equal(g["indices"].dtype, np.dtype("int32"), "/cf/user_items/indices dtype")
    c.equal(g["data"].dtype, np.dtype("float32"), "/cf/user_items/data dtype")
    c.equal(g["indptr"][()].tolist(), csr["indptr"], "/cf/user_items/indptr")
    c.equal(g["indices"][()].tolist(), csr["indices"], "/cf/user_items/indices")
    c.close(g["data"][()], csr["data"], "/cf/user_items/data")
    indptr = g["indptr"][()]
    c.check(indptr[0] == 0 and indptr[-1] == len(g["indices"]) and np.all(np.diff(indptr) >= 0),
            "/cf/user_items/indptr is not a valid row pointer array")
    try:
        import scipy.sparse as sp  # optional
        m = sp.csr_matrix((g["data"][()], g["indices"][()], indptr), shape=tuple(g.attrs["shape"]))
        c.equal(m.nnz, len(csr["data"]), "scipy csr_matrix nnz")
    except ImportError:
        pass

    # Metrics and metadata.
    c.equal(sorted(f["/eval"].attrs.keys()), sorted(exp["metrics"].keys()), "/eval attributes")
    for name, value in exp["metrics"].items():
        if name in f["/eval"].attrs:
            c.check(np.isclose(float(f["/eval"].attrs[name]), value), f"/eval@{name}")
    c.equal(dict(f["/meta"].attrs.items()), exp["metadata"], "/meta attributes")
    return c


CONTENT_SPACES = (
    # (JSON key, ids dataset, vectors dataset)
    ("audio_embeddings", "/audio/ids", "/audio/embeddings"),
    ("audio_descriptors", "/audio/ids", "/audio/descriptors"),
    ("text", "/text/ids", "/text/vectors"),
    ("sequence", "/sequence/ids", "/sequence/vectors"),
)


def check_content(f, exp, c=None):
    """Checks the content spaces against exp: {key: {"ids": [...], "vectors": [[...]]}, "descriptor_names": [...],
    "text_inherited": [0/1...]}; a key set to null means the space must be absent."""
    c = c or Checker()
    items = read_ids(f, "/ids/items")
    index = {item: i for i, item in enumerate(items)}
    for key, ids_path, vectors_path in CONTENT_SPACES:
        if key not in exp:
            continue
        want = exp[key]
        if want is None:
            c.check(vectors_path not in f, f"{vectors_path}: present, expected absent")
            continue
        if vectors_path not in f or ids_path not in f:
            c.check(False, f"{vectors_path} or {ids_path} missing")
            continue
        ids = read_ids(f, ids_path)
        c.equal(ids, want["ids"], ids_path)
        positions = [index.get(i, -1) for i in ids]
        c.check(all(p >= 0 for p in positions), f"{ids_path}: an id is not an item of /ids/items")
        c.check(positions == sorted(set(positions)), f"{ids_path}: ids not distinct and in item order")
        d = f[vectors_path]
        c.equal(d.dtype, np.dtype("float32"), f"{vectors_path} dtype")
        c.equal(d.shape[0], len(ids), f"{vectors_path} rows")
        c.close(d[()], want["vectors"], vectors_path, rtol=1e-6, atol=1e-6)
    if "descriptor_names" in exp:
        c.equal(read_ids(f, "/audio/descriptor_names"), exp["descriptor_names"], "/audio/descriptor_names")
    if "text_inherited" in exp:
        c.equal([int(x) for x in f["/text/inherited"][()]], exp["text_inherited"], "/text/inherited")
    return c


def main(argv=None):
    parser = argparse.ArgumentParser(description="Check an Encore model bundle with h5py.")
    parser.add_argument("bundle")
    parser.add_argument("expected", nargs="?", help="JSON of expected contents (from the Swift test)")
    parser.add_argument("--recommend", metavar="USER_ID", help="print this user's top-N recommendations")
    parser.add_argument("-n", type=int, default=10, help="number of recommendations (default 10)")
    parser.add_argument("--content", metavar="CONTENT_JSON", help="JSON of the expected content spaces")
    args = parser.parse_args(argv)

    try:
        f = h5py.File(args.bundle, "r")
    except OSError as exc:
        print(f"{args.bundle}: cannot open with h5py: {exc}", file=sys.stderr)
        return 2
    with f:
        expected = None
        checker = Checker()
        if args.expected:
            with open(args.expected, encoding="utf-8") as fh:
                expected = json.load(fh)
            checker = check_bundle(f, expected)
        if args.content:
            with open(args.content, encoding="utf-8") as fh:
                check_content(f, json.load(fh), checker)
        if args.recommend is not None:
            try:
                recs = recommend(f, args.recommend, args.n)
            except KeyError as exc:
                print(f"{args.bundle}: {exc.args[0]}", file=sys.stderr)
                return 2
            print(f"top {args.n} for user {args.recommend!r}:")
            for rank, (item, score) in enumerate(recs, 1):
                print(f"  {rank:2d}. {item!r}  score {score:.6f}")
            want = (expected or {}).get("recommendations", {}).get(args.recommend)
            if want is not None:
                checker.equal([item for item, _ in recs], want, f"recommendations for {args.recommend!r}")
    if checker.failures:
        for failure in checker.failures:
            print(f"MISMATCH {failure}", file=sys.stderr)
        print(f"FAILED: {len(checker.failures)} mismatches, {checker.passed} checks passed", file=sys.stderr)
        return 1
    print(f"OK: {checker.passed} checks passed ({args.bundle})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
