#!/usr/bin/env bash
# The accuracy runs of docs/accuracy.md, with the exact commands. Not a CI step: about an hour on 2 cores.
#   scripts/accuracy.sh [WHICH…]     WHICH: vgg32 vgg64 mbm synth3 (default: all)
# Each run writes its run folder under runs/accuracy/ and prints one JSON line (test MAE, F1, time).
set -euo pipefail
cd "$(dirname "$0")/.."
mc=${MICROCOUNT:-build/bin/microcount}
data=${MICROCOUNT_DATA_DIR:-../shared/data}
out=runs/accuracy
threads=${THREADS:-2}
mkdir -p "$out"
which=("$@"); [ ${#which[@]} -eq 0 ] && which=(vgg32 vgg64 mbm synth3)
for w in "${which[@]}"; do
  case $w in
    # VGG cells, the standard protocol: train on N of image_001…100, test on image_101…200; defaults only.
    vgg32) "$mc" train "$data/vgg-cells" --train 1-32 --test 101-200 --threads "$threads" --out "$out/vgg32" --quiet ;;
    vgg64) "$mc" train "$data/vgg-cells" --train 1-64 --test 101-200 --epochs 25 --threads "$threads" --out "$out/vgg64" --quiet ;;
    # Bone marrow (H&E, RGB): images in name order, 15 train / 7 validation / 22 test.
    mbm) "$mc" train "$data/mbm" --train 1-15 --val 16-22 --test 23-44 --threads "$threads" --out "$out/mbm" \
           --set sigma=5,min_distance=6,match_radius=10,patches_per_image=32 --quiet ;;
    # Three classes (naked / budding / enveloped looks) from the synthesiser: 40 images, 60/20/20 split.
    synth3) rm -rf "$out/synth3-data"
            "$mc" synth "$out/synth3-data" --images 40 --size 192 --classes 3 --seed 11 >/dev/null
            "$mc" train "$out/synth3-data" --epochs 30 --threads "$threads" --out "$out/synth3" --quiet ;;
    *) echo "unknown run '$w' (vgg32 vgg64 mbm synth3)" >&2; exit 2 ;;
  esac
done
