#!/usr/bin/env bash
# The Spark job (spark/encore_weekly.py) on a local Spark (local[2]) against Encore's own fit, on a generated world:
#   1. Spark's weighting equals Encore's on the same data (a sample of pairs against `fit`'s /cf/user_items, relative
#      tolerance 1e-5), for the play log itself (listens from ms_played) and for the training split (weights);
#   2. `encore-train import-factors` on the job's .npy shards makes a bundle holding them exactly;
#   3. quality: `encore-train evaluate` of Spark's factors and of `encore-train fit --confidence-floor 1`'s (Spark's confidence rule) on the same split;
#   4. sharded playlists: the job on the whole play log with --encore-train (import, the item side once, one
#      `encore-train playlists --users-shard I/N` task per shard on the executors, the manifest), checked user by user
#      against the single-process `encore-train weekly --model` on the same imported factors.
# Runs from Benchmarks/ (not CI: it installs pyspark and a Java runtime and takes minutes).
# Usage: Benchmarks/spark/run.sh [--preset tiny|sample] [--factors N --iterations N] [--shards N] [--work DIR]
#                                [--world DIR] [--bench|--bench-stages|--bench-quality [--runs N]]
#   ENCORE_TRAIN=path/to/encore-train (default: the debug build in .build/debug).
#   --world DIR: a world made by `encore-train generate` (its plays.tsv) instead of generating --preset's.
#   --bench: instead of the checks, times the whole Spark job (--encore-train, --shards) and `encore-train weekly`
#     (fit, content, index, playlists; no evaluation) on the play log, --runs times each (default 2), prints the
#     side-by-side stage table (medians), then the quality line: `evaluate` (ndcg@10) of Spark's factors and of
#     `fit`'s on the same random split (--bench-stages or --bench-quality: one of the two). Use a release build
#     (ENCORE_TRAIN). With BENCH_PAUSE_FILE set, a timed run
#     waits while that file exists, and a run during which it appeared is void and run again.
set -euo pipefail
cd "$(dirname "$0")/../.."
preset=sample factors=64 iterations=15 shards=4 work=Benchmarks/results/spark world="" bench="" runs=2
while [ $# -gt 0 ]; do
    case "$1" in
        --preset) preset=$2; shift 2 ;;
        --factors) factors=$2; shift 2 ;;
        --iterations) iterations=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        --shards) shards=$2; shift 2 ;;
        --world) world=$2; shift 2 ;;
        --bench) bench=stages,quality; shift ;;
        --bench-stages) bench=stages; shift ;;
        --bench-quality) bench=quality; shift ;;
        --runs) runs=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
train_bin=${ENCORE_TRAIN:-.build/debug/encore-train}
[ -x "$train_bin" ] || { echo "no $train_bin: run swift build first (or set ENCORE_TRAIN)" >&2; exit 1; }

# What the job needs: a Java 17 runtime (Debian's) and pyspark, numpy, h5py and xxhash (PyPI) in Benchmarks/.venv-spark.
if ! command -v java >/dev/null; then
    apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless
fi
venv=Benchmarks/.venv-spark
if ! "$venv/bin/python" -c 'import pyspark, numpy, h5py, xxhash' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q pyspark numpy h5py xxhash
fi
py="$venv/bin/python"
export PYSPARK_PYTHON="$py" PYSPARK_DRIVER_PYTHON="$py"

mkdir -p "$work"
if [ -n "$world" ]; then
    [ -f "$world/plays.tsv" ] || { echo "--world $world: no plays.tsv there" >&2; exit 1; }
else
    world="$work/world-$preset"
    [ -f "$world/plays.tsv" ] || "$train_bin" generate --preset "$preset" --output "$world"
fi
[ -f "$work/train.tsv" ] && [ "$work/train.tsv" -nt "$world/plays.tsv" ] ||
    "$train_bin" split --input "$world/plays.tsv" --method random --train "$work/train.tsv" --test "$work/test.tsv"
uptime | sed 's/^/load before: /'

als=(--factors "$factors" --iterations "$iterations" --regularization 0.01 --alpha 1)
timed() { local t0=$SECONDS; "$@"; echo "  ($(( SECONDS - t0 )) s: ${*:1:3} ...)"; }

if [ -n "$bench" ]; then
    pause=${BENCH_PAUSE_FILE:-}
    # bench_run DIR LOG COMMAND...: runs COMMAND (output to LOG) with the load before and after, its wall seconds in
    # DIR/wall.txt; waits while $pause exists and runs it again when $pause appeared during the run or the run was
    # stopped for a while (SIGSTOP): its time is then void.
    bench_run() {
        local dir=$1 log=$2; shift 2
        while :; do
            while [ -n "$pause" ] && [ -e "$pause" ]; do sleep 60; done
            rm -rf "$dir"
            local flag; flag=$(mktemp)
            rm -f "$flag"
            if [ -n "$pause" ]; then
                # A pause that came and went while this poller was stopped too shows as a gap in its clock.
                ( last=$(date +%s)
                  while [ ! -e "$flag.done" ]; do
                      now=$(date +%s)
                      { [ -e "$pause" ] || [ $(( now - last )) -gt 30 ]; } && touch "$flag"
                      last=$now; sleep 5
                  done ) &
            fi
            local before t0 t1
            before=$(uptime)
            t0=$(date +%s.%N)
            "$@" > "$log" 2>&1
            t1=$(date +%s.%N)
            touch "$flag.done"; wait 2>/dev/null || true; rm -f "$flag.done"
            if [ -e "$flag" ]; then rm -f "$flag"; echo "  $pause appeared (or the run was stopped) during the run: void, again"; continue; fi
            mkdir -p "$dir"
            python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.1f}")' "$t0" "$t1" > "$dir/wall.txt"
            echo "  $(cat "$dir/wall.txt") s: ${*:1:2} ...; load before: ${before##*load average: }, after: $(uptime | sed 's/.*load average: //')"
            break
        done
    }
    # fresh_weekly STEM ARGS...: `encore-train weekly ARGS` without the unit and work folder of a run before (a void
    # run's finished stages would otherwise be resumed).
    fresh_weekly() { rm -rf "$1.h5.d" "$1.work"; shift; "$train_bin" weekly "$@"; }
    spark_dirs=() weekly_dirs=()
    for run in $(seq 1 "$runs"); do
        [[ $bench == *stages* ]] || break
        echo "== run $run: the Spark job (load, weight, ALS, factor shards, import, item side, $shards playlist shards, manifest)"
        bench_run "$work/bench-spark-$run" "$work/bench-spark-$run.log" "$py" spark/encore_weekly.py \
            --input "$world/plays.tsv" --output "$work/bench-spark-$run" --master 'local[2]' --partitions 2 "${als[@]}" \
            --encore-train "$train_bin" --shards "$shards" --item-side-threads 2
        spark_dirs+=("$work/bench-spark-$run")
        echo "== run $run: encore-train weekly (2 threads, no evaluation)"
        bench_run "$work/bench-weekly-$run-report" "$work/bench-weekly-$run.log" fresh_weekly "$work/bench-weekly-$run" \
            --events "$world/plays.tsv" "${als[@]}" --eval-users 0 --threads 2 --output "$work/bench-weekly-$run.h5" \
            --work-dir "$work/bench-weekly-$run.work" --report "$work/bench-weekly-$run-report"
        weekly_dirs+=("$work/bench-weekly-$run-report")
    done
    [[ $bench == *stages* ]] &&
        "$py" Benchmarks/spark/check.py --stages "${spark_dirs[@]}" --weekly-reports "${weekly_dirs[@]}"
    [[ $bench == *quality* ]] || exit 0
    echo "== quality on a random split: Spark's ALS and encore-train fit on the training plays, evaluate on the rest"
    rm -rf "$work/job"
    timed "$py" spark/encore_weekly.py --input "$work/train.tsv" --output "$work/job" --master 'local[2]' \
        --partitions 2 "${als[@]}" > "$work/job.log"
    # Spark's confidence 1 + alpha * r is Encore's with --confidence-floor 1: that fit is the like-for-like one; the
    # default fit (implicit's rule, floor 0) is shown beside it.
    timed "$train_bin" fit --input "$work/train.tsv" --output "$work/fit.h5" "${als[@]}" --confidence-floor 1 2>/dev/null
    timed "$train_bin" fit --input "$work/train.tsv" --output "$work/fit-floor0.h5" "${als[@]}" 2>/dev/null
    timed "$train_bin" import-factors --users "$work/job/users" --items "$work/job/items" --output "$work/spark.h5" \
        --regularization 0.01 --alpha 1 --interactions "$work/train.tsv" 2>/dev/null
    for side in spark fit fit-floor0; do
        "$train_bin" evaluate --bundle "$work/$side.h5" --train "$work/train.tsv" --test "$work/test.tsv" --no-save \
            --json "$work/$side-metrics.json" 2>/dev/null
    done
    "$py" Benchmarks/spark/check.py --metrics "$work/spark-metrics.json" "$work/fit-metrics.json" \
        --quality "$work/spark-metrics.json" "$work/fit-metrics.json"
    echo "== the default fit (--confidence-floor 0, implicit's rule) for comparison"
    "$py" Benchmarks/spark/check.py --metrics "$work/spark-metrics.json" "$work/fit-floor0-metrics.json"
    uptime | sed 's/^/load after: /'
    exit 0
fi

echo "== 1. weighting on the play log (listens from ms_played): Spark against fit"
rm -rf "$work/job-plays"
timed "$py" spark/encore_weekly.py --input "$world/plays.tsv" --output "$work/job-plays" --weights-only \
    --weights-sample 0.1 --master 'local[2]' --partitions 2 > "$work/job-plays.log"
timed "$train_bin" fit --input "$world/plays.tsv" --output "$work/fit-plays.h5" --factors 8 --iterations 1 2>/dev/null
"$py" Benchmarks/spark/check.py --job "$work/job-plays" --fit-bundle "$work/fit-plays.h5"

echo "== 2. the Spark job on the training split, fit on the same split"
rm -rf "$work/job"
timed "$py" spark/encore_weekly.py --input "$work/train.tsv" --output "$work/job" --weights-sample 0.1 \
    --master 'local[2]' --partitions 2 "${als[@]}" > "$work/job.log"
cat "$work/job/job.json"
timed "$train_bin" fit --input "$work/train.tsv" --output "$work/fit.h5" "${als[@]}" --confidence-floor 1 2>/dev/null
timed "$train_bin" import-factors --users "$work/job/users" --items "$work/job/items" --output "$work/spark.h5" \
    --regularization 0.01 --alpha 1 --interactions "$work/train.tsv" 2>/dev/null
"$py" Benchmarks/spark/check.py --job "$work/job" --bundle "$work/spark.h5" --fit-bundle "$work/fit.h5"

echo "== 3. quality on the same split"
"$train_bin" evaluate --bundle "$work/spark.h5" --train "$work/train.tsv" --test "$work/test.tsv" --no-save \
    --json "$work/spark-metrics.json" 2>/dev/null
"$train_bin" evaluate --bundle "$work/fit.h5" --train "$work/train.tsv" --test "$work/test.tsv" --no-save \
    --json "$work/fit-metrics.json" 2>/dev/null
"$py" Benchmarks/spark/check.py --metrics "$work/spark-metrics.json" "$work/fit-metrics.json"

echo "== 4. sharded playlists: the item side once, Discover Weekly and Daily Mix per user shard on the executors"
rm -rf "$work/job-shards" "$work/reference.h5.d" "$work/reference.work"
timed "$py" spark/encore_weekly.py --input "$world/plays.tsv" --output "$work/job-shards" --master 'local[2]' \
    --partitions 2 "${als[@]}" --encore-train "$train_bin" --shards "$shards" > "$work/job-shards.log"
"$py" -c 'import json, sys; j = json.load(open(sys.argv[1])); print("stage seconds:", j["stage_seconds"]); print("shard seconds:", j["shard_seconds"])' \
    "$work/job-shards/job.json"
# The single-process job on the same imported factors (one thread, as the item side: the sequence vectors'
# training is deterministic on one thread only).
timed "$train_bin" weekly --events "$world/plays.tsv" --model "$work/job-shards/imported.h5" --eval-users 0 --threads 1 \
    --output "$work/reference.h5" --work-dir "$work/reference.work" > /dev/null 2>&1
"$train_bin" inspect "$work/job-shards/sharded.json"
"$py" Benchmarks/spark/check.py --job "$work/job-shards" --shards "$work/job-shards/sharded.json" "$work/reference.h5"
uptime | sed 's/^/load after: /'
