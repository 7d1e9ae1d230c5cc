"""The forward pass of an Encore audio model file (`encore-train train-audio`) in numpy, in evaluation mode.

The layout is in docs/audio-model.md: input [batch, frames, bands] in dB, standardized per band with
/normalization/mean and /normalization/std; convolution blocks convN (width 4, valid) -> bnN (running statistics)
-> ReLU -> max-pool (non-overlapping, remainder dropped); global pooling (mean, max, sqrt(mean(x^2) + 1e-6))
concatenated; hidden dense + ReLU; embedding dense, L2-normalized; optional cf dense.

`embed_tracks` cuts each track into windows of the model's crop length the way `encore-train embed` does and
averages them. The notebook audio_model_forward.ipynb imports this module; Benchmarks/compare_audio_model.py uses it
as a third implementation next to Encore and PyTorch.
"""
import h5py
import numpy as np

BN_EPS = 1e-5
L2_POOL_EPS = 1e-6
NORM_EPS = 1e-12


def load_model(path):
    """The configuration, normalization statistics and weights of a model file, as plain numpy arrays."""
    with h5py.File(path, "r") as f:
        if f.attrs.get("encore_audio_model_format") != 1:
            raise ValueError(f"{path}: not an Encore audio model file of format version 1")
        config = {}
        for k, v in f["config"].attrs.items():
            if isinstance(v, bytes):
                v = v.decode()
            config[k] = v if isinstance(v, str) else (v.item() if np.ndim(v) == 0 else [int(x) for x in v])
        weights = {}
        f["weights"].visititems(lambda name, obj: weights.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        return {
            "config": config,
            "mean": f["normalization/mean"][()],
            "std": f["normalization/std"][()],
            "weights": weights,
        }


def conv1d_valid(x, weight, bias):
    """x [batch, time, in], weight [out, width, in] -> [batch, time - width + 1, out] (im2col + one matmul)."""
    b, t, c = x.shape
    out, width, _ = weight.shape
    windows = np.lib.stride_tricks.sliding_window_view(x, width, axis=1)  # [b, t-w+1, c, w]
    cols = windows.transpose(0, 1, 3, 2).reshape(b, t - width + 1, width * c)
    return cols @ weight.reshape(out, width * c).T + bias


def forward(model, x):
    """Embeddings [batch, dim] (unit rows) and the CF prediction [batch, factors] (or None) for raw log-mel x."""
    w = model["weights"]
    cfg = model["config"]
    h = (np.asarray(x, dtype=np.float32) - model["mean"]) / model["std"]
    for i, pool in enumerate(cfg["pool_sizes"], start=1):
        h = conv1d_valid(h, w[f"conv{i}/weight"], w[f"conv{i}/bias"])
        inv = 1 / np.sqrt(w[f"bn{i}/running_var"].astype(np.float64) + BN_EPS)
        h = ((h - w[f"bn{i}/running_mean"]) * inv.astype(np.float32)) * w[f"bn{i}/gamma"] + w[f"bn{i}/beta"]
        h = np.maximum(h, 0)
        if pool > 1:
            b, t, c = h.shape
            h = h[:, : (t // pool) * pool].reshape(b, t // pool, pool, c).max(axis=2)
    pooled = np.concatenate([h.mean(axis=1), h.max(axis=1), np.sqrt((h * h).mean(axis=1) + L2_POOL_EPS)], axis=1)
    hidden = np.maximum(pooled @ w["hidden/weight"].T + w["hidden/bias"], 0)
    e = hidden @ w["embedding/weight"].T + w["embedding/bias"]
    e = e / np.sqrt((e.astype(np.float64) ** 2).sum(axis=1, keepdims=True) + NORM_EPS).astype(np.float32)
    cf = hidden @ w["cf/weight"].T + w["cf/bias"] if "cf/weight" in w else None
    return e, cf


def windows(length, window):
    """Start frames of the windows of one track, as `encore-train embed` cuts them (the last aligned with the end)."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window, window))
    return starts + [length - window]


def embed_tracks(model, logmel, offsets, batch=64):
    """Per-track embeddings (mean over windows, L2-normalized again) and CF predictions, like `encore-train embed`."""
    window = int(model["config"]["crop_frames"])
    items = []
    for t in range(len(offsets) - 1):
        a, n = int(offsets[t]), int(offsets[t + 1] - offsets[t])
        for s in windows(n, window):
            idx = a + (s + np.arange(window)) % n  # a track shorter than a window is tiled
            items.append((t, idx))
    tracks = len(offsets) - 1
    dim = model["weights"]["embedding/weight"].shape[0]
    factors = model["weights"]["cf/weight"].shape[0] if "cf/weight" in model["weights"] else 0
    sums = np.zeros((tracks, dim))
    cf_sums = np.zeros((tracks, factors))
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        x = np.stack([logmel[idx] for _, idx in chunk])
        e, cf = forward(model, x)
        for r, (t, _) in enumerate(chunk):
            sums[t] += e[r]
            if cf is not None:
                cf_sums[t] += cf[r]

    def unit(v):
        return (v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    return unit(sums), (unit(cf_sums) if factors else None)


def embed_file(model_path, features_path, limit=None):
    """Track ids, embeddings and CF predictions of every track of a features file (analyze --log-mel), or of its
    first `limit` tracks."""
    model = load_model(model_path)
    with h5py.File(features_path, "r") as f:
        ids = [s.decode() if isinstance(s, bytes) else s for s in f["tracks/ids"][()]]
        offsets = f["logmel/offsets"][()]
        if limit is not None:
            ids, offsets = ids[:limit], offsets[:limit + 1]
        logmel = f["logmel/data"][: int(offsets[-1])]
    e, cf = embed_tracks(model, logmel, offsets)
    return ids, e, cf


def check(model_path, features_path, embeddings_path, tolerance=1e-4, limit=None):
    """The largest absolute differences between this module's embeddings (and CF predictions) and those of
    `encore-train embed` (over the first `limit` tracks, or all); raises AssertionError above `tolerance`."""
    ids, e, cf = embed_file(model_path, features_path, limit)
    with h5py.File(embeddings_path, "r") as f:
        encore_ids = list(f["tracks/ids"].asstr()[()])[: len(ids)]
        encore_e = f["embeddings"][: len(ids)]
        encore_cf = f["cf_predicted"][: len(ids)] if "cf_predicted" in f else None
    assert ids == encore_ids, "the track ids differ"
    diff = float(np.abs(e - encore_e).max())
    cf_diff = float(np.abs(cf - encore_cf).max()) if cf is not None else 0.0
    assert diff < tolerance and cf_diff < tolerance, (diff, cf_diff)
    return diff, cf_diff


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 4:
        sys.exit("usage: audio_model_forward.py MODEL.h5 FEATURES.h5 EMBEDDINGS.h5")
    d, c = check(*sys.argv[1:])
    print(f"max |numpy - encore embed|: embeddings {d:.2e}, cf {c:.2e}")
