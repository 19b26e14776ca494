#!/usr/bin/env bash
# Speed of the reference U-Net: microcount vs PyTorch (../shared/bench/peer_unet_torch.py) on this machine,
# in one run, alternating the two so that machine noise hits both. Prints both JSON lines per round and
# the ratios (microcount / PyTorch) of the best round of each.
#   scripts/bench_vs_pytorch.sh [ROUNDS=3] [THREADS=2] [BATCH=8] [SIZE=256]
# Needs Debian's PyTorch: apt-get install python3-torch
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}; threads=${2:-2}; batch=${3:-8}; size=${4:-256}
peer=../shared/bench/peer_unet_torch.py
mc=build/bin/microcount
[ -x "$mc" ] || bash scripts/setup.sh >/dev/null
out=$(mktemp)
for r in $(seq "$rounds"); do
  OMP_NUM_THREADS=$threads "$mc" bench --threads "$threads" --batch "$batch" --size "$size" | tee -a "$out"
  /usr/bin/python3 "$peer" --threads "$threads" --batch "$batch" --size "$size" | tee -a "$out"
done
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
mc = [r for r in rows if r.get("peer") is None]
pt = [r for r in rows if r.get("peer") == "pytorch"]
best = lambda rs, k: max(r[k] for r in rs)
for k in ("infer_images_per_s", "train_images_per_s"):
    print(f"{k}: microcount {best(mc, k)}  pytorch {best(pt, k)}  ratio {best(mc, k) / best(pt, k):.2f}x")
print(f"peak_rss_mb: microcount {max(r['peak_rss_mb'] for r in mc)}  pytorch {max(r['peak_rss_mb'] for r in pt)}")
PY
rm -f "$out"
