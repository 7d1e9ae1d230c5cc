#!/usr/bin/env bash
# Installs what Encore needs on a fresh Debian 12 machine with Swift: the C libraries from Debian (only the
# missing ones) and a Python virtual environment with h5py and numpy for the bundle-reading test.
# Safe to run again: it does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libopenblas-dev liblapacke-dev libhdf5-dev pkg-config python3-venv
          libsndfile1-dev libsoxr-dev libkissfft-dev libebur128-dev libfluidsynth-dev fluid-soundfont-gm libzip-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
    echo "setup: swift is not on PATH (Swift 6 toolchain expected, e.g. /opt/swift/usr/bin)" >&2
    exit 1
fi

# Python for the h5py interoperability test and the notebook.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import h5py, numpy" 2>/dev/null; then
    echo "setup: creating .venv with h5py and numpy" >&2
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check h5py numpy
fi
