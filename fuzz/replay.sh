#!/usr/bin/env bash
# replay.sh <libFuzzer binary> <folder>: runs every saved input of <folder> once (no fuzzing).
set -euo pipefail
bin="$1"; folder="$2"
shopt -s nullglob
inputs=("$folder"/*)
[ ${#inputs[@]} -eq 0 ] && { echo "replay: no inputs in $folder"; exit 0; }
exec "$bin" -runs=1 "${inputs[@]}"
