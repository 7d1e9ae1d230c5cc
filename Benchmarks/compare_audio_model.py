#!/usr/bin/env python3
"""Encore's audio embedding CNN against the same network in PyTorch (CPU), side by side in one run.

Parity: `encore-train audio-model-bench` initializes a model, writes it (the model file format) and runs one fixed
batch: training-mode outputs, the loss (NT-Xent over rows i / i + rows/2 plus the cosine CF loss), every parameter's
gradient, the batch-norm running statistics, the weights after one AdamW step (clip 5, weight decay 1e-4 on weight
matrices) and evaluation-mode outputs. This script loads the same model file into torch, repeats all of it and reports
the relative error ||encore - torch|| / ||torch|| of each (required below 1e-4) against torch in float32 with its own
CPU kernels, and against torch in float64 (the rounding reference). torch's default oneDNN kernels are shown against
float64 too: their convolution and batch-norm gradients are the least accurate of the three. The evaluation-mode embeddings are
also checked against the numpy forward pass of notebooks-data/audio_model_forward.py.

Speed: training steps (forward, loss, backward, AdamW) and evaluation-mode forward passes on the same batch, 2 threads
for both (torch.set_num_threads(2); OpenBLAS 2 threads in Encore), alternating Encore and torch rounds; medians.
GFLOP/s counts the convolution and dense multiply-adds (2 flops each; backward counts the weight and the input
gradients, none for the first convolution's input) against the sgemm peak of Debian's OpenBLAS (the library Encore
links), measured here through ctypes on 2 threads.

Setup (once):
    python3 -m venv Benchmarks/.venv && Benchmarks/.venv/bin/pip install torch numpy h5py
    swift build -c release --product encore-train
Run:
    Benchmarks/.venv/bin/python Benchmarks/compare_audio_model.py [--rows 64 --frames 129 --rounds 5]
"""
import argparse
import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "notebooks-data"))
import audio_model_forward as npmodel  # noqa: E402


class TorchAudioModel(nn.Module):
    """The network of docs/audio-model.md in torch's own layout: input [batch, bands, frames] (Encore's is
    [batch, frames, bands]; the batch is transposed once, outside the timed steps)."""

    def __init__(self, cfg):
        super().__init__()
        bands, width = cfg["bands"], cfg["conv_width"]
        self.pools = cfg["pool_sizes"]
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        c = bands
        for out in cfg["conv_channels"]:
            self.convs.append(nn.Conv1d(c, out, width))
            self.bns.append(nn.BatchNorm1d(out, eps=1e-5, momentum=0.1))
            c = out
        self.hidden = nn.Linear(3 * c, cfg["hidden"])
        self.embedding = nn.Linear(cfg["hidden"], cfg["dim"])
        self.cf = nn.Linear(cfg["hidden"], cfg["cf_factors"]) if cfg["cf_factors"] > 0 else None
        self.register_buffer("mean", torch.zeros(bands))
        self.register_buffer("std", torch.ones(bands))

    def forward(self, x):
        x = (x - self.mean[:, None]) / self.std[:, None]
        for conv, bn, pool in zip(self.convs, self.bns, self.pools):
            x = F.relu(bn(conv(x)))
            if pool > 1:
                x = F.max_pool1d(x, pool)
        pooled = torch.cat([x.mean(2), x.max(2).values, torch.sqrt((x * x).mean(2) + 1e-6)], dim=1)
        h = F.relu(self.hidden(pooled))
        e = self.embedding(h)
        e = e / torch.sqrt((e * e).sum(1, keepdim=True) + 1e-12)
        return e, (self.cf(h) if self.cf is not None else None)

    def encore_names(self):
        """(Encore weight name, torch tensor, whether it is a conv weight stored [out, width, in] in Encore)."""
        out = []
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns), start=1):
            out += [(f"conv{i}/weight", conv.weight, True), (f"conv{i}/bias", conv.bias, False),
                    (f"bn{i}/gamma", bn.weight, False), (f"bn{i}/beta", bn.bias, False)]
        for name in ("hidden", "embedding", "cf"):
            layer = getattr(self, name)
            if layer is not None:
                out += [(f"{name}/weight", layer.weight, False), (f"{name}/bias", layer.bias, False)]
        return out

    def encore_buffers(self):
        out = []
        for i, bn in enumerate(self.bns, start=1):
            out += [(f"bn{i}/running_mean", bn.running_mean), (f"bn{i}/running_var", bn.running_var)]
        return out

    def load_encore(self, model):
        with torch.no_grad():
            for name, p, conv in self.encore_names():
                w = model["weights"][name]
                p.copy_(torch.from_numpy(w.transpose(0, 2, 1).copy() if conv else w))
            for name, b in self.encore_buffers():
                b.copy_(torch.from_numpy(model["weights"][name]))
            self.mean.copy_(torch.from_numpy(model["mean"]))
            self.std.copy_(torch.from_numpy(model["std"]))


def nt_xent(z, temperature):
    rows = z.shape[0]
    sim = (z @ z.T) / temperature
    sim = sim.masked_fill(torch.eye(rows, dtype=torch.bool), float("-inf"))
    partner = (torch.arange(rows) + rows // 2) % rows
    return F.cross_entropy(sim, partner)


def cosine_loss(p, t):
    pn = torch.sqrt((p * p).sum(1) + 1e-12)
    tn = torch.sqrt((t * t).sum(1) + 1e-12)
    return (1 - (p * t).sum(1) / (pn * tn)).mean()


def make_optimizer(net, lr):
    decay = [p for name, p, _ in net.encore_names() if name.endswith("/weight")]
    rest = [p for name, p, _ in net.encore_names() if not name.endswith("/weight")]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 1e-4}, {"params": rest, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.999), eps=1e-8)


def loss_of(net, x, targets, temperature):
    e, cf = net(x)
    loss = nt_xent(e, temperature)
    if cf is not None:
        loss = loss + cosine_loss(cf, targets)
    return loss, e, cf


def train_step(net, opt, x, targets, temperature):
    loss, _, _ = loss_of(net, x, targets, temperature)
    opt.zero_grad(set_to_none=False)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
    opt.step()
    return loss


def torch_reference(cfg, model, xt, tt, temperature, dtype, onednn=False):
    """The values Encore's bench writes, computed by torch in `dtype`, under the same names and layouts, with
    torch's own CPU kernels or (`onednn`) its oneDNN ones."""
    with torch.backends.mkldnn.flags(enabled=onednn):
        return _torch_reference(cfg, model, xt, tt, temperature, dtype)


def _torch_reference(cfg, model, xt, tt, temperature, dtype):
    net = TorchAudioModel(cfg)
    net.load_encore(model)
    net = net.to(dtype)
    opt = make_optimizer(net, 1e-3)
    x, t = xt.to(dtype), tt.to(dtype)
    out = {"#parameters": sum(p.numel() for p in net.parameters())}
    net.train()
    loss, e, cf = loss_of(net, x, t, temperature)
    opt.zero_grad(set_to_none=False)
    loss.backward()
    out["train/loss"] = np.array([loss.item()])
    out["train/embeddings"] = e.detach().numpy()
    out["train/cf"] = cf.detach().numpy()
    for name, prm, conv in net.encore_names():
        g = prm.grad.numpy()
        out[f"grads/{name}"] = g.transpose(0, 2, 1) if conv else g
    for name, b in net.encore_buffers():
        out[f"buffers/{name}"] = b.numpy()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
    opt.step()
    for name, prm, conv in net.encore_names():
        w = prm.detach().numpy()
        out[f"step/{name}"] = w.transpose(0, 2, 1) if conv else w
    net.eval()
    with torch.no_grad():
        e_eval, cf_eval = net(x)
    out["eval/embeddings"] = e_eval.numpy()
    out["eval/cf"] = cf_eval.numpy()
    return {k: np.array(v, dtype=np.float64) if k != "#parameters" else v for k, v in out.items()}


def rel(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def flops(cfg, rows, frames):
    """Multiply-add flops of one forward pass and of one backward pass (conv and dense layers)."""
    fwd = bwd = 0
    t, c = frames, cfg["bands"]
    for i, (out, pool) in enumerate(zip(cfg["conv_channels"], cfg["pool_sizes"])):
        t_out = t - cfg["conv_width"] + 1
        f = 2 * rows * t_out * cfg["conv_width"] * c * out
        fwd += f
        bwd += f if i == 0 else 2 * f
        t, c = t_out // pool, out
    dense = [(3 * c, cfg["hidden"]), (cfg["hidden"], cfg["dim"])]
    if cfg["cf_factors"]:
        dense.append((cfg["hidden"], cfg["cf_factors"]))
    for fan_in, fan_out in dense:
        f = 2 * rows * fan_in * fan_out
        fwd += f
        bwd += 2 * f
    return fwd, bwd


def sgemm_peak(threads, n=2048, repeats=5):
    """GFLOP/s of Debian's OpenBLAS sgemm (n x n x n) on `threads` threads: the median of `repeats` runs."""
    lib = ctypes.CDLL("libopenblas.so.0")
    lib.openblas_set_num_threads(threads)
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = a.copy()
    c = np.zeros((n, n), np.float32)
    fp = ctypes.POINTER(ctypes.c_float)
    args = (101, 111, 111, n, n, n, ctypes.c_float(1.0), a.ctypes.data_as(fp), n, b.ctypes.data_as(fp), n,
            ctypes.c_float(0.0), c.ctypes.data_as(fp), n)
    lib.cblas_sgemm(*args)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        lib.cblas_sgemm(*args)
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def run_encore(args, batch, out, model_out, train_steps, inference_steps):
    cmd = [args.encore, "audio-model-bench", "--batch", batch, "--output", out, "--model-output", model_out,
           "--channels", args.channels, "--pools", args.pools, "--hidden", str(args.hidden), "--dim", str(args.dim),
           "--threads", "2", "--train-steps", str(train_steps), "--inference-steps", str(inference_steps)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    with h5py.File(out, "r") as f:
        return {k: f[k][()] for k in ("timing/train_seconds", "timing/inference_seconds")}


def time_torch(net, opt, x, targets, temperature, train_steps, inference_steps):
    net.train()
    train_step(net, opt, x, targets, temperature)
    train = []
    for _ in range(train_steps):
        t0 = time.perf_counter()
        train_step(net, opt, x, targets, temperature)
        train.append(time.perf_counter() - t0)
    net.eval()
    infer = []
    with torch.inference_mode():
        net(x)
        for _ in range(inference_steps):
            t0 = time.perf_counter()
            net(x)
            infer.append(time.perf_counter() - t0)
    return train, infer


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--encore", default=os.path.join(ROOT, ".build", "release", "encore-train"))
    p.add_argument("--rows", type=int, default=64, help="crops per batch (two views of rows/2 tracks)")
    p.add_argument("--frames", type=int, default=129, help="crop length (129 frames = 3 s)")
    p.add_argument("--factors", type=int, default=32)
    p.add_argument("--channels", default="256,256,512")
    p.add_argument("--pools", default="4,2,2")
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((args.rows, args.frames, 128)) * 2).astype(np.float32)
    targets = rng.standard_normal((args.rows, args.factors)).astype(np.float32)
    print(f"torch {torch.__version__}, {os.cpu_count()} cpus, load at start {os.getloadavg()}")
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        batch = os.path.join(tmp, "batch.h5")
        with h5py.File(batch, "w") as f:
            f["input"] = x
            f["targets"] = targets
        out, model_out = os.path.join(tmp, "out.h5"), os.path.join(tmp, "model.h5")
        run_encore(args, batch, out, model_out, 0, 0)
        model = npmodel.load_model(model_out)
        cfg = model["config"]
        net = TorchAudioModel(cfg)
        net.load_encore(model)
        opt = make_optimizer(net, 1e-3)
        xt, tt = torch.from_numpy(x.transpose(0, 2, 1).copy()), torch.from_numpy(targets)
        temperature = float(cfg["temperature"])

        # Parity: Encore against torch in float32, both against torch in float64 (the reference for rounding).
        with h5py.File(out, "r") as f:
            enc = {}
            f.visititems(lambda name, obj: enc.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        ref32 = torch_reference(cfg, model, xt, tt, temperature, torch.float32)
        ref64 = torch_reference(cfg, model, xt, tt, temperature, torch.float64)
        dnn32 = torch_reference(cfg, model, xt, tt, temperature, torch.float32, onednn=True)
        print(f"\nParity, {args.rows} rows x {args.frames} frames, {ref32.pop('#parameters')} parameters; relative "
              f"error ||a - b|| / ||b||.\n  torch32: float32 with torch's own CPU kernels; torch64: float64 (the "
              f"rounding reference); torch32-oneDNN: float32 with oneDNN, torch's default and the timed path")
        ref64.pop("#parameters")
        dnn32.pop("#parameters")
        print(f"  {'':44s} {'Encore-torch32':>14s} {'Encore-torch64':>14s} {'oneDNN-torch64':>15s}")
        worst = 0.0
        grad_errors = []
        for key, b in ref32.items():
            a = enc[key]
            if key.startswith("step/conv") and key.endswith("/bias"):
                # AdamW normalizes the rounding noise of those gradients to steps of about the learning rate, with
                # arbitrary signs, on every side alike (batch normalization cancels whatever the biases become).
                continue
            if key.startswith("grads/conv") and key.endswith("/bias"):
                # A bias right before batch normalization has a gradient of exactly 0 in exact arithmetic (the
                # normalization removes the channel mean); both sides hold rounding noise, compared by size.
                wkey = key.replace("/bias", "/weight")
                print(f"  {key:44s} |g| / |weight grad|: Encore {np.linalg.norm(a) / np.linalg.norm(enc[wkey]):.1e}, "
                      f"torch32 {np.linalg.norm(b) / np.linalg.norm(ref32[wkey]):.1e}, "
                      f"torch64 {np.linalg.norm(ref64[key]) / np.linalg.norm(ref64[wkey]):.1e} (zero in exact arithmetic)")
                continue
            r, r64, t64 = rel(a, b), rel(a, ref64[key]), rel(dnn32[key], ref64[key])
            worst = max(worst, r)
            if key.startswith("grads/"):
                grad_errors.append(r)
            flag = "" if r < 1e-4 else "  <-- above 1e-4"
            if r >= 1e-4:
                failures.append(key)
            print(f"  {key:44s} {r:14.2e} {r64:14.2e} {t64:15.2e}{flag}")
        # numpy forward of the saved model (weights as initialized, running statistics 0/1) vs torch on it.
        fresh = TorchAudioModel(cfg)
        fresh.load_encore(model)
        fresh.eval()
        with torch.no_grad():
            e_np, cf_np = npmodel.forward(model, x)
            e_fresh, cf_fresh = fresh(xt)
        for key, a, b in (("numpy vs torch32 eval embeddings (fresh)", e_np, e_fresh.numpy()),
                          ("numpy vs torch32 eval cf (fresh)", cf_np, cf_fresh.numpy())):
            r = rel(a, b)
            worst = max(worst, r)
            print(f"  {key:44s} {r:14.2e}")
            if r >= 1e-4:
                failures.append(key)
        print(f"  weight gradients: {len(grad_errors)} tensors (conv biases aside), largest Encore-torch32 relative "
              f"error {max(grad_errors):.2e}; largest overall {worst:.2e}")
        net = TorchAudioModel(cfg)
        net.load_encore(model)
        opt = make_optimizer(net, 1e-3)

        # Speed: alternate rounds.
        enc_train, enc_infer, tor_train, tor_infer = [], [], [], []
        loads = []
        for r in range(args.rounds):
            loads.append(os.getloadavg()[0])
            t = run_encore(args, batch, out, model_out, args.steps, args.steps)
            enc_train.append(statistics.median(t["timing/train_seconds"]))
            enc_infer.append(statistics.median(t["timing/inference_seconds"]))
            tr, inf = time_torch(net, opt, xt, tt, temperature, args.steps, args.steps)
            tor_train.append(statistics.median(tr))
            tor_infer.append(statistics.median(inf))
            print(f"  round {r + 1}: encore train {enc_train[-1] * 1e3:.1f} ms, infer {enc_infer[-1] * 1e3:.1f} ms; "
                  f"torch train {tor_train[-1] * 1e3:.1f} ms, infer {tor_infer[-1] * 1e3:.1f} ms")
        peak = sgemm_peak(2)
        fwd, bwd = flops(cfg, args.rows, args.frames)
        print(f"\nSpeed, 2 threads, batch {args.rows} x {args.frames} frames, medians of {args.rounds} rounds x "
              f"{args.steps} steps (1-min load during the rounds: {min(loads):.2f}-{max(loads):.2f}):")
        print(f"  sgemm peak (OpenBLAS, 2048^3, 2 threads): {peak:.1f} GFLOP/s")
        print(f"  {'':10s} {'train samples/s':>16s} {'GFLOP/s':>8s} {'infer samples/s':>16s} {'GFLOP/s':>8s}")
        res = {}
        for label, tr, inf in (("Encore", enc_train, enc_infer), ("PyTorch", tor_train, tor_infer)):
            mt, mi = statistics.median(tr), statistics.median(inf)
            res[label] = (args.rows / mt, args.rows / mi)
            print(f"  {label:10s} {args.rows / mt:16.1f} {(fwd + bwd) / mt / 1e9:8.1f} {args.rows / mi:16.1f} "
                  f"{fwd / mi / 1e9:8.1f}")
        tr_ratio = res["Encore"][0] / res["PyTorch"][0]
        in_ratio = res["Encore"][1] / res["PyTorch"][1]
        print(f"  Encore / PyTorch: training {tr_ratio:.2f}x (target >= 1), inference {in_ratio:.2f}x (target >= 1.5)")
        print(f"  GFLOP/s as a share of the sgemm peak: Encore train {(fwd + bwd) / statistics.median(enc_train) / 1e9 / peak:.0%}, "
              f"infer {fwd / statistics.median(enc_infer) / 1e9 / peak:.0%}")
    if failures:
        sys.exit(f"parity above 1e-4: {', '.join(failures)}")


if __name__ == "__main__":
    main()
