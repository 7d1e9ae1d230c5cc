#!/usr/bin/env python3
"""Encore's audio front-end against librosa 0.11 on real recordings, side by side in one run.

Numerics: frame counts, log-mel (mean and 99th percentile absolute difference in dB), MFCC and chroma differences,
and the decoded samples. Speed on one thread: decode + resample (Encore, librosa.load, and libsndfile + libsoxr alone
through a small C harness), the spectrogram stage (STFT, mel, dB, MFCC on decoded samples), and the whole pipeline;
Encore's real-time factor on 1 and 2 threads.

Setup (once):
    python3 -m venv Benchmarks/.venv && Benchmarks/.venv/bin/pip install librosa==0.11.0 soundfile
    (cd Benchmarks/audio-data && apt-get download asc-music hyperrogue-music drascula-music &&
     for f in *.deb; do dpkg -x $f extracted; done)
    (cd Benchmarks && swift build -c release --product AudioBench)
    gcc -O2 -o Benchmarks/.build/decode_baseline Benchmarks/audio/decode_baseline.c -lsndfile -lsoxr
Run:
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 Benchmarks/.venv/bin/python Benchmarks/compare_audio.py [--tracks 48]
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import librosa  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SR = 22050


def tracks(limit):
    root = os.path.join(HERE, "audio-data", "extracted")
    files = [f for f in glob.glob(root + "/**/*", recursive=True)
             if f.lower().endswith((".ogg", ".mp3", ".flac", ".wav", ".opus")) and os.path.getsize(f) > 300_000]
    return sorted(files)[:limit]


def librosa_spectral(y):
    S = librosa.feature.melspectrogram(y=y, sr=SR)
    L = librosa.power_to_db(S)
    M = librosa.feature.mfcc(S=L, n_mfcc=20)
    return L, M


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out.stdout


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tracks", type=int, default=48)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--bench", default=os.path.join(HERE, ".build", "release", "AudioBench"))
    p.add_argument("--baseline", default=os.path.join(HERE, ".build", "decode_baseline"))
    args = p.parse_args()
    files = tracks(args.tracks)
    if not files:
        sys.exit("no recordings under Benchmarks/audio-data/extracted (see the setup in this script's docstring)")
    print(f"librosa {librosa.__version__}, {len(files)} tracks, load: {os.getloadavg()}")

    # Numerics.
    with tempfile.TemporaryDirectory() as out:
        run([args.bench, "numerics", out] + files)
        frames_equal = 0
        lm_diffs, mf_diffs, ch_diffs, sample_diffs, durations = [], [], [], [], []
        for i, f in enumerate(files):
            y, _ = librosa.load(f, sr=SR)
            durations.append(len(y) / SR)
            L, M = librosa_spectral(y)
            C = librosa.feature.chroma_stft(y=y, sr=SR, tuning=0.0)
            ys = np.load(f"{out}/{i}.samples.npy")
            Ls, Ms, Cs = (np.load(f"{out}/{i}.{k}.npy").T for k in ("logmel", "mfcc", "chroma"))
            if len(ys) == len(y):
                sample_diffs.append(np.abs(ys - y).max())
            if Ls.shape == L.shape:
                frames_equal += 1
                lm_diffs.append(np.abs(Ls - L).ravel())
                mf_diffs.append(np.abs(Ms - M).ravel())
                ch_diffs.append(np.abs(Cs - C).ravel())
            else:
                print(f"  frame mismatch {f}: {Ls.shape} vs {L.shape}")
        lm, mf, ch = (np.concatenate(d) for d in (lm_diffs, mf_diffs, ch_diffs))
        audio_s = sum(durations)
        print(f"\nnumerics ({audio_s / 60:.1f} min of audio)")
        print(f"  same frame count: {frames_equal}/{len(files)}; same sample count: {len(sample_diffs)}/{len(files)}, "
              f"max |sample diff| {max(sample_diffs):.2e}")
        print(f"  log-mel |diff| dB: mean {lm.mean():.5f}, p99 {np.percentile(lm, 99):.4f}, max {lm.max():.3f}")
        print(f"  MFCC |diff|: mean {mf.mean():.5f}, p99 {np.percentile(mf, 99):.4f}, max {mf.max():.3f}")
        print(f"  chroma |diff| (tuning=0): mean {ch.mean():.2e}, p99 {np.percentile(ch, 99):.2e}, max {ch.max():.2e}")

    # Speed, one thread.
    # Wall seconds (key_s) and the process's CPU seconds (key_cpu_s), the steadier figure on a shared machine.
    lib = {f"{k}{unit}": [] for k in ("decode", "spectral", "pipeline") for unit in ("_s", "_cpu_s")}

    def timed(key, body):
        t, c = time.perf_counter(), time.process_time()
        out = body()
        lib[f"{key}_s"].append(time.perf_counter() - t)
        lib[f"{key}_cpu_s"].append(time.process_time() - c)
        return out

    for _ in range(args.repeats):
        ys = timed("decode", lambda: [librosa.load(f, sr=SR)[0] for f in files])
        timed("spectral", lambda: [librosa_spectral(y) for y in ys])
        timed("pipeline", lambda: [librosa_spectral(librosa.load(f, sr=SR)[0]) for f in files])
    lib = {k: statistics.median(v) for k, v in lib.items()}
    enc = json.loads(run([args.bench, "time", str(args.repeats)] + files))
    base = json.loads(run([args.baseline, str(args.repeats)] + files))
    print(f"\nspeed, one thread (medians of {args.repeats} runs over all tracks; load {os.getloadavg()})")
    print(f"  {'stage':<34}{'Encore s':>10}{'librosa s':>11}{'speed-up':>10}")
    for key, name in (("decode_s", "decode + resample"), ("spectral_s", "STFT + mel + dB + MFCC"),
                      ("pipeline_s", "whole pipeline")):
        print(f"  {name:<34}{enc[key]:>10.3f}{lib[key]:>11.3f}{lib[key] / enc[key]:>9.1f}x")
    print(f"  {'the same in process CPU seconds':<34}")
    for key, name in (("decode_cpu_s", "decode + resample"), ("spectral_cpu_s", "STFT + mel + dB + MFCC"),
                      ("pipeline_cpu_s", "whole pipeline")):
        print(f"  {name:<34}{enc[key]:>10.3f}{lib[key]:>11.3f}{lib[key] / enc[key]:>9.1f}x")
    print(f"  libsndfile + libsoxr alone (C): {base['decode_s']:.3f} s; Encore's decode is "
          f"{(enc['decode_s'] / base['decode_s'] - 1) * 100:+.1f}% of it; in CPU seconds {base['decode_cpu_s']:.3f} s, "
          f"Encore's {(enc['decode_cpu_s'] / base['decode_cpu_s'] - 1) * 100:+.1f}%")
    for threads in (1, 2):
        r = json.loads(run([args.bench, "rtf", str(threads)] + files))
        print(f"  Encore whole pipeline, {threads} thread(s): {r['rtf']:.0f}x real time "
              f"({r['audio_s']:.0f} s of audio in {r['wall_s']:.2f} s)")
    print(f"  librosa whole pipeline, 1 thread: {audio_s / lib['pipeline_s']:.0f}x real time")
    print(f"load at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
