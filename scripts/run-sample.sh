#!/usr/bin/env bash
# The main job on the sample data: set up, build, generate the small synthetic music world, fit an implicit ALS
# model, evaluate it on held-out plays, and print one user's recommendations with explanations.
# Output goes to data/sample/ (data) and out/ (the model bundle). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
swift build -c release --product encore-train
bin="$(swift build -c release --show-bin-path)/encore-train"

mkdir -p data out
if [ ! -f data/sample/plays.tsv ]; then
    "$bin" generate --preset sample --output data/sample --seed 42
fi
# Hold out 20% of each user's listening, fit on the rest, and score the held-out part.
"$bin" split --input data/sample/plays.tsv --method random --test-fraction 0.2 --seed 42 \
    --train data/sample/train.tsv --test data/sample/test.tsv
"$bin" fit --input data/sample/train.tsv --output out/sample.h5 --factors 64 --iterations 15 --seed 42
"$bin" evaluate --bundle out/sample.h5 --train data/sample/train.tsv --test data/sample/test.tsv --k 10
user="$(awk -F'\t' 'NR==2 {print $1}' data/sample/train.tsv)"
"$bin" recommend --bundle out/sample.h5 --user "$user" --count 10 --explain
