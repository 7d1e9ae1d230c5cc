#!/usr/bin/env bash
# The main job on the sample data: set up, build, generate the small synthetic music world, run the weekly job
# (fit, indexes, Discover Weekly and Daily Mix for every user, offline evaluation, bundle, report), show one
# user's playlists and explained recommendations, and export the playlists as JSON Lines.
# Output: data/sample/ (the generated world, its MIDI, audio and audio_truth.tsv), out/sample.h5.d/ (the bundle and its HNSW indexes, published as one
# unit; out/sample.h5 names it), out/sample-report/,
# out/*.jsonl. Safe to run again (finished stages are reused from out/sample.h5.work/).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
swift build -c release --product encore-train
bin="$(swift build -c release --show-bin-path)/encore-train"

mkdir -p data out
# The world and its music (reused when present; the world files are deterministic, so regenerating them with the
# audio rewrites the same bytes).
if [ ! -f data/sample/world.json ] || [ ! -f data/sample/audio_truth.tsv ]; then
    "$bin" generate --preset sample --output data/sample --seed 42 --audio
fi
"$bin" weekly --events data/sample/plays.tsv --output out/sample.h5 --show-user u000448
"$bin" recommend --bundle out/sample.h5 --user u000448 --count 5 --explain
"$bin" export --bundle out/sample.h5 --playlists discover-weekly --output out/discover-weekly.jsonl
"$bin" export --bundle out/sample.h5 --playlists daily-mix --output out/daily-mix.jsonl
echo "report: out/sample-report/report.html; playlists: out/discover-weekly.jsonl, out/daily-mix.jsonl"
