#!/usr/bin/env bash
# Runs Encore's tests: installs what they need (scripts/setup.sh), then `swift test`.
# The h5py test is required here (ENCORE_REQUIRE_H5PY=1): it reads a bundle from Python and checks the factors.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export ENCORE_PYTHON="$PWD/.venv/bin/python"
export ENCORE_REQUIRE_H5PY=1
swift build --build-tests
swift test --skip-build "$@"
