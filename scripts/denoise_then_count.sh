#!/usr/bin/env bash
# Denoise-then-count: does Noise2Void change the counting error on noisy images? (docs/denoising.md)
#
#   scripts/denoise_then_count.sh [BIN_DIR] [WORK_DIR]       BIN_DIR holds microcount and density_counter
#
# 1. A synthetic low-light set with known truth: 40 images 256², clean and noisy (microcount denoise synth).
# 2. Noise2Void trained on the 40 NOISY images (self-supervised: no labels, no clean data), applied to them;
#    PSNR / SSIM of noisy and denoised against the clean truth.
# 3. The same density counter (examples/density_counter.cpp: U-Net depth 3, 60/20/20 split seeded, so the
#    same 24 / 8 / 8 images in every folder) trained and tested on the noisy, the denoised and the clean images.
# Environment: THREADS (2), N2V_EPOCHS (8), N2V_STEPS (25), COUNT_EPOCHS (10).
set -euo pipefail
bin="$(cd "${1:-build/bin}" && pwd)"
work="${2:-runs/denoise_then_count}"
threads="${THREADS:-2}"
rm -rf "$work"; mkdir -p "$work"; work="$(cd "$work" && pwd)"

"$bin/microcount" denoise synth "$work/set" --images 40 --size 256 --photons 0.2 --seed 3
"$bin/microcount" denoise train "$work/set/noisy" --out "$work/n2v" --epochs "${N2V_EPOCHS:-8}" --steps "${N2V_STEPS:-25}" \
  --batch 16 --lr 1e-3 --threads "$threads" --quiet
"$bin/microcount" denoise apply --model "$work/n2v" "$work/set/noisy" --out "$work/set/denoised" --clean "$work/set/clean" \
  --threads "$threads" --quiet
mv "$work/set/denoised/quality.json" "$work/quality.json"
cp "$work/set/noisy/annotations.xml" "$work/set/denoised/annotations.xml"

cd "$work"
for kind in noisy denoised clean; do
  OMP_NUM_THREADS="$threads" "$bin/density_counter" "set/$kind" "${COUNT_EPOCHS:-10}" >"count_$kind.log" 2>&1
  echo "count on $kind: $(grep 'test: MAE' "count_$kind.log" | sed 's/.*test: //')"
done
