# `microcount bench --backend cuda|cudnn` (sourced by tests/cli/run.sh: $mc, $tmp, pass, fail, expect_error).
# With a GPU it prints the U-Net's JSON line; without one (or in a build without CUDA) it fails with one
# line naming the reason.
for backend in cuda cudnn; do
  if "$mc" bench --backend "$backend" --batch 1 --size 16 --iters 1 >"$tmp/out" 2>"$tmp/err"; then
    if grep -qF '"params":482449' "$tmp/out"; then pass; else fail "bench --backend $backend: $(cat "$tmp/out")"; fi
  else
    expect_error 'microcount bench.*\(no CUDA device\|built without CUDA\)' \
      "$mc" bench --backend "$backend" --batch 1 --size 16 --iters 1
  fi
done
expect_error "unknown --backend 'tpu'" "$mc" bench --backend tpu
