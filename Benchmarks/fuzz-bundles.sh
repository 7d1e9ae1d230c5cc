#!/usr/bin/env bash
# The bundle fuzz test with more corruptions than CI runs (192): seeded bit flips, truncations, zeroed 4 KiB pages
# and changes in the first 8 KiB of the published bundle and its index files, with the manifest's checksums stale
# or updated; every load must succeed or be refused with a clear error while the engine keeps its model.
#
#   Benchmarks/fuzz-bundles.sh [COUNT]      (default 3000; about 0.3 s a corruption on 2 cores, debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests >&2
ENCORE_FUZZ_COUNT="${1:-3000}" swift test --skip-build --filter "fuzzedCorruptionsNeverTakeTheServerDown" 2>&1 \
    | grep -E -A2 "bundle fuzz|✘|passed|failed"  # -A2: an expectation's comment follows its line
