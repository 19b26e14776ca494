#!/usr/bin/env bash
# Whole event detection of a 1000-frame 400×300 movie (issue #6: < 2 min on this 2-core machine):
# read + per-frame normalisation + chunked/tiled 3D U-Net + argmax + mean-shift + XML/CSV/PNG writing,
# timed by `microcount events detect` itself (one JSON line with the time of every stage) and by `time`.
#
#   scripts/bench_events.sh [BUILD_DIR] [THREADS]      (defaults: build, 2)
#
# Steps: 8 synthetic training movies (48×96×96) → a model trained with the defaults for 6 epochs
# (the speed does not depend on the weights, but an untrained network labels noise as events and the
# clustering would then measure something no user runs) → one synthetic 1000×300×400 movie → detect.
set -euo pipefail
build="${1:-build}"
threads="${2:-2}"
mc="$build/bin/microcount"
work="${BENCH_EVENTS_DIR:-/tmp/bench_events}"
mkdir -p "$work"
if [ ! -s "$work/run/TrainingRun/checkpoints/best_model.mcm" ]; then
  "$mc" synth --movie "$work/train" --movies 8 --frames 48 --size 96 --seed 1 >/dev/null
  "$mc" events train "$work/train" --out "$work/run" --epochs 6 --set steps_per_epoch=30 --threads "$threads" --quiet
fi
if [ ! -s "$work/movie/movie_001.tif" ]; then
  "$mc" synth --movie "$work/movie" --movies 1 --frames 1000 --height 300 --width 400 --events 150 --spots 40 --seed 77 >/dev/null
fi
echo "detecting $work/movie/movie_001.tif (1000 frames, 300×400) with $threads thread(s)"
time OMP_NUM_THREADS="$threads" OMP_WAIT_POLICY=passive "$mc" events detect --model "$work/run" "$work/movie/movie_001.tif" \
  --out "$work/detections" --threads "$threads" --quiet
"$mc" events evaluate --model "$work/run" "$work/movie" --threads "$threads"
