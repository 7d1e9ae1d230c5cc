"""2-D projections of a bundle's item spaces (CF, audio, text, sequence, hybrid), coloured by catalog genre.

The weekly job stores the content spaces in the bundle (layout in docs/architecture.md): /audio/embeddings and
/audio/descriptors with /audio/ids, /text/vectors with /text/ids, /sequence/vectors with /sequence/ids, the hybrid
space (learned, blended and predicted CF vectors: docs/hybrid.md) /hybrid/vectors with /hybrid/ids, beside the
collaborative item factors /cf/item_factors (all items; a zero row is a track without plays). Genres come from the
bundle's catalog (/catalog/track_genre, /catalog/genre_names): what the catalog says, which may be missing or
wrong, never the synthetic generator's truth files.

Each space is projected on its first two principal components (PCA in numpy: the SVD of the centred rows). The
"genre separation" printed per space is the share of tracks whose nearest track in the 2-D projection has the
same catalog genre, beside the share expected by chance (the sum of squared genre shares).

Also a script: `python3 content_spaces.py BUNDLE [--svg DIR]` prints the figures and writes one SVG scatter plot
per space (no matplotlib needed). BUNDLE is a bundle file or a published unit folder (its current.json names the
bundle). The notebook content_spaces.ipynb imports this module.
"""
import json
import os
import sys

import h5py
import numpy as np

SPACES = (
    # (name, ids dataset or None for all items, vectors dataset)
    ("cf", None, "/cf/item_factors"),
    ("audio", "/audio/ids", "/audio/embeddings"),
    ("audio descriptors", "/audio/ids", "/audio/descriptors"),
    ("text", "/text/ids", "/text/vectors"),
    ("sequence", "/sequence/ids", "/sequence/vectors"),
    ("hybrid", "/hybrid/ids", "/hybrid/vectors"),
)

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd"]


def bundle_path(path):
    """The bundle file of a published unit folder (or `path` itself when it is a file)."""
    if os.path.isdir(path):
        with open(os.path.join(path, "current.json"), encoding="utf-8") as fh:
            manifest = json.load(fh)
        name = next(f["path"] for f in manifest["files"] if f["role"] == "bundle")
        return os.path.join(path, name)
    if not os.path.exists(path) and os.path.isdir(path + ".d"):
        return bundle_path(path + ".d")
    return path


def load_spaces(path):
    """{space: (item indices, vectors)} for every space in the bundle, the item ids, and each item's catalog genre
    (None when the catalog does not say)."""
    with h5py.File(bundle_path(path), "r") as f:
        items = f["/ids/items"].asstr()[()]
        index = {item: i for i, item in enumerate(items)}
        genres = [None] * len(items)
        if "/catalog/track_genre" in f:
            names = f["/catalog/genre_names"].asstr()[()]
            genres = [names[g] if g >= 0 else None for g in f["/catalog/track_genre"][()]]
        spaces = {}
        for name, ids_path, vectors_path in SPACES:
            if vectors_path not in f:
                continue
            vectors = f[vectors_path][()].astype(np.float64)
            if ids_path is None:
                rows = np.arange(len(items))
                keep = np.any(vectors != 0, axis=1)   # tracks without plays have no CF vector
                rows, vectors = rows[keep], vectors[keep]
            else:
                rows = np.array([index[i] for i in f[ids_path].asstr()[()]], dtype=np.int64)
            if name == "audio descriptors":
                # Columns in different units: standardize each before projecting.
                std = vectors.std(axis=0)
                vectors = (vectors - vectors.mean(axis=0)) / np.where(std > 0, std, 1)
            spaces[name] = (rows, vectors)
    return spaces, items, genres


def pca_2d(vectors):
    """The rows projected on their first two principal components, and the share of variance they explain."""
    centred = vectors - vectors.mean(axis=0)
    if centred.shape[0] < 2:
        return np.zeros((centred.shape[0], 2)), 0.0
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(2, vt.shape[0])
    projected = np.zeros((centred.shape[0], 2))
    projected[:, :k] = centred @ vt[:k].T
    total = float((s ** 2).sum())
    return projected, float((s[:k] ** 2).sum() / total) if total > 0 else 0.0


def genre_separation(points, labels):
    """Share of labelled points whose nearest labelled neighbour (2-D) has the same label, and the chance level."""
    keep = [i for i, g in enumerate(labels) if g is not None]
    if len(keep) > 2000:  # an evenly spaced sample keeps the distance matrix small
        keep = keep[:: len(keep) // 2000 + 1]
    if len(keep) < 2:
        return float("nan"), float("nan")
    p = points[keep]
    lab = [labels[i] for i in keep]
    d = ((p[:, None, :] - p[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(d, np.inf)
    nearest = d.argmin(axis=1)
    same = np.mean([lab[i] == lab[j] for i, j in enumerate(nearest)])
    _, counts = np.unique(lab, return_counts=True)
    chance = float(((counts / counts.sum()) ** 2).sum())
    return float(same), chance


def svg_scatter(points, labels, title, size=420):
    """An SVG scatter plot of 2-D points coloured by label, with a legend."""
    names = sorted({g for g in labels if g is not None})
    colour = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(names)}
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1)
    xy = 20 + (points - lo) / span * (size - 40)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size + 160}" height="{size}">',
           f'<text x="10" y="14" font-size="12">{title}</text>']
    for (x, y), g in zip(xy, labels):
        fill = colour.get(g, "#cccccc")
        out.append(f'<circle cx="{x:.1f}" cy="{size - y:.1f}" r="2.5" fill="{fill}" fill-opacity="0.7"/>')
    for k, g in enumerate(names + ["(no genre)"]):
        out.append(f'<rect x="{size + 10}" y="{20 + 14 * k}" width="9" height="9" fill="{colour.get(g, "#cccccc")}"/>')
        out.append(f'<text x="{size + 24}" y="{28 + 14 * k}" font-size="10">{g}</text>')
    out.append("</svg>")
    return "\n".join(out)


def project_all(path):
    """For every space: (name, tracks, 2-D points, labels, explained variance, separation, chance)."""
    spaces, _, genres = load_spaces(path)
    out = []
    for name, (rows, vectors) in spaces.items():
        points, explained = pca_2d(vectors)
        labels = [genres[i] for i in rows]
        same, chance = genre_separation(points, labels)
        out.append((name, len(rows), points, labels, explained, same, chance))
    return out


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 2
    svg_dir = argv[argv.index("--svg") + 1] if "--svg" in argv else None
    for name, tracks, points, labels, explained, same, chance in project_all(argv[1]):
        print(f"{name}: {tracks} tracks, 2 components explain {explained:.1%} of the variance, "
              f"nearest neighbour in 2-D of the same catalog genre {same:.1%} (chance {chance:.1%})")
        if svg_dir:
            os.makedirs(svg_dir, exist_ok=True)
            with open(os.path.join(svg_dir, name.replace(" ", "_") + ".svg"), "w", encoding="utf-8") as fh:
                fh.write(svg_scatter(points, labels, f"{name} ({tracks} tracks)"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
