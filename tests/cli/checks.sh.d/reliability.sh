# Crash safety of training runs (docs/reliability.md), on a small synthetic set so it runs in ~30 s:
#   - kill -9 at a random moment after the first checkpoint, --resume: the same test_results.json, byte for
#     byte, as an uninterrupted run with the same seed and threads;
#   - a full disk while a checkpoint is written: a one-line error naming the file, the previous checkpoint
#     intact and loadable (the run then resumes to the same result);
#   - an unwritable run folder, a diverging loss: one-line errors.

rl_set="base_width=4,patch=32,batch=2,patches_per_image=2,samples=0"
rl_train() { "$mc" train "$tmp/rl_data" --train 1-4 --test 5-6 --threads 1 --seed 3 --set "$rl_set" --quiet "$@"; }
rl_resume() { "$mc" train "$tmp/rl_data" --resume "$1" --train 1-4 --test 5-6 --threads 1 --quiet; }

if ! "$mc" synth "$tmp/rl_data" --images 6 --size 64 --min-cells 5 --max-cells 10 --seed 2 >/dev/null 2>"$tmp/rl_err"; then
  fail "reliability: synth failed: $(cat "$tmp/rl_err")"
else
  # ---- the uninterrupted reference ----------------------------------------------------------------
  if rl_train --out "$tmp/rl_ref" --epochs 12 >/dev/null 2>"$tmp/rl_err"; then pass
  else fail "reliability: reference run failed: $(tail -n 3 "$tmp/rl_err")"; fi
  ref="$tmp/rl_ref/TrainingRun/test_results.json"

  # ---- kill -9 after the first checkpoint, at a random moment; then --resume ----------------------
  rl_train --out "$tmp/rl_kill" --epochs 12 >/dev/null 2>"$tmp/rl_kill_err" &
  pid=$!
  ckpt="$tmp/rl_kill/TrainingRun/checkpoints/latest_model.mcm"
  for _ in $(seq 1 6000); do [ -e "$ckpt" ] && break; kill -0 $pid 2>/dev/null || break; sleep 0.02; done
  delay=$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", r / 32767 * 1.5 }')
  sleep "$delay"
  if kill -9 $pid 2>/dev/null; then killed="killed after ${delay} s past the first checkpoint"; else killed="finished before the kill"; fi
  wait $pid 2>/dev/null
  if [ -e "$tmp/rl_kill/TrainingRun/test_results.json" ] && [ "$killed" != "finished before the kill" ]; then
    fail "reliability: the killed run has test_results.json"
  fi
  if [ ! -e "$ckpt" ]; then
    fail "reliability: no checkpoint before the kill ($killed)"
  elif rl_resume "$tmp/rl_kill" >/dev/null 2>"$tmp/rl_err"; then
    if cmp -s "$ref" "$tmp/rl_kill/TrainingRun/test_results.json"; then pass
    else fail "reliability: after kill -9 ($killed) and --resume, test_results.json differs: $(diff "$ref" "$tmp/rl_kill/TrainingRun/test_results.json" | head -n 4)"; fi
  else
    fail "reliability: --resume after kill -9 ($killed) failed: $(tail -n 3 "$tmp/rl_err")"
  fi

  # ---- disk full while the next checkpoint is written ----------------------------------------------
  # One epoch on a normal disk, then the run folder on a file system with room for what is there but not
  # for a second copy of the latest checkpoint: a 1 MiB tmpfs when this may mount one, else a file-size
  # limit (ulimit -f, SIGXFSZ ignored so write() fails with EFBIG as it would with ENOSPC).
  if rl_train --out "$tmp/rl_full_src" --epochs 12 --max-epochs 1 >/dev/null 2>"$tmp/rl_err"; then
    src="$tmp/rl_full_src/TrainingRun/checkpoints/latest_model.mcm"
    size_kb=$(( $(wc -c <"$src") / 1024 ))
    mkdir -p "$tmp/rl_full"
    if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=$(( size_kb * 3 / 2 + 256 ))k microcount-reliability "$tmp/rl_full" 2>/dev/null; then
      how="a $(( size_kb * 3 / 2 + 256 )) KiB tmpfs"; limit=unlimited
    else
      how="ulimit -f $(( size_kb / 2 ))"; limit=$(( size_kb / 2 ))
    fi
    cp -a "$tmp/rl_full_src" "$tmp/rl_full/run"
    (ulimit -f "$limit"; trap '' XFSZ; rl_resume "$tmp/rl_full/run") >/dev/null 2>"$tmp/rl_full_err"; rc=$?
    if [ $rc -eq 1 ] && [ "$(wc -l <"$tmp/rl_full_err")" -eq 1 ] && grep -q "latest_model.mcm" "$tmp/rl_full_err"; then pass
    else fail "reliability: disk full ($how): expected status 1 and one line naming latest_model.mcm, got $rc: $(head -n 3 "$tmp/rl_full_err")"; fi
    if cmp -s "$src" "$tmp/rl_full/run/TrainingRun/checkpoints/latest_model.mcm"; then pass
    else fail "reliability: disk full ($how): the previous latest_model.mcm was changed"; fi
    if ls -a "$tmp/rl_full/run/TrainingRun/checkpoints" | grep -q '\.tmp-'; then
      fail "reliability: disk full ($how): a temporary file was left behind: $(ls -a "$tmp/rl_full/run/TrainingRun/checkpoints")"
    else pass; fi
    # The kept checkpoint loads: resuming from it (with room again) ends where the uninterrupted run did.
    cp -a "$tmp/rl_full/run" "$tmp/rl_full_done"
    mountpoint -q "$tmp/rl_full" && umount "$tmp/rl_full"
    if rl_resume "$tmp/rl_full_done" >/dev/null 2>"$tmp/rl_err" && cmp -s "$ref" "$tmp/rl_full_done/TrainingRun/test_results.json"; then pass
    else fail "reliability: resuming from the checkpoint kept through the full disk failed or differs: $(tail -n 3 "$tmp/rl_err")"; fi
  else
    fail "reliability: one-epoch run failed: $(tail -n 3 "$tmp/rl_err")"
  fi

  # ---- an unwritable run folder: one line naming it -------------------------------------------------
  : >"$tmp/rl_not_a_folder"
  expect_error "rl_not_a_folder" rl_train --out "$tmp/rl_not_a_folder/run" --epochs 1
  if [ "$(id -u)" -ne 0 ]; then  # root ignores permission bits
    mkdir -p "$tmp/rl_readonly" && chmod 555 "$tmp/rl_readonly"
    expect_error "rl_readonly" rl_train --out "$tmp/rl_readonly/run" --epochs 1
    chmod 755 "$tmp/rl_readonly"
  fi

  # ---- a non-finite loss stops with the epoch, the step and the last good checkpoint ----------------
  # (density_scale 1e300 is a finite, valid double; the targets overflow float, so the first loss is not finite)
  expect_error "epoch 1, step 1: .*diverged.*last good checkpoint: none" "$mc" train "$tmp/rl_data" \
    --out "$tmp/rl_nan" --train 1-4 --test 5-6 --threads 1 --epochs 3 --set "$rl_set,density_scale=1e300" --quiet
fi
