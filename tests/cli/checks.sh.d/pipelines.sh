# train / count / evaluate / tune / demo end to end on a small slice of real data (vgg-cells, mbm),
# with tiny networks so the whole file runs in about a minute on 2 cores; and one-line errors.

# pl_key JSON KEY: the first "KEY":value (number, string or null) in JSON.
pl_key() { printf '%s' "$1" | grep -o "\"$2\":\(\"[^\"]*\"\|[-0-9.eE+]*\|null\)" | head -n 1 | cut -d: -f2- | tr -d '"'; }
# pl_files DIR FILE…: every FILE exists (non-empty) under DIR.
pl_files() { local d="$1" f missing=""; shift; for f in "$@"; do [ -s "$d/$f" ] || missing="$missing $f"; done
  if [ -z "$missing" ]; then pass; else fail "$d lacks:$missing"; fi; }

tiny="base_width=4,patch=64,batch=4,patches_per_image=2,samples=2"
vgg="$data/vgg-cells"

if [ -z "$data" ] || [ ! -f "$vgg/annotations.xml" ]; then
  echo "pipelines: skipped (no vgg-cells under MICROCOUNT_DATA_DIR='$data')"
else
  # ---- train: the run folder tree, and a summary line with the test figures --------------------
  if out=$("$mc" train "$vgg" --out "$tmp/runA" --train 1-6 --test 101-104 --epochs 2 --set "$tiny" --quiet 2>"$tmp/trainA_err"); then
    pass
    t="$tmp/runA/TrainingRun"
    pl_files "$t" hyperparameters.json log.txt checkpoints/best_model.mcm checkpoints/latest_model.mcm \
      plots/training_curves.png plots/training_curves.svg test_results.json test_results.txt
    if [ "$(ls "$t/samples" 2>/dev/null | grep -c '\.png$')" -eq 2 ]; then pass; else fail "train: expected 2 sample pictures in $t/samples: $(ls "$t/samples" 2>&1)"; fi
    if [ "$(grep -c 'epoch [12]/2 ' "$t/log.txt")" -eq 2 ]; then pass; else fail "train: log.txt lacks the two epoch lines: $(cat "$t/log.txt")"; fi
    if grep -q '"base_width": 4' "$t/hyperparameters.json" && grep -q '"epochs": 2' "$t/hyperparameters.json"; then pass
    else fail "train: hyperparameters.json does not hold --set / --epochs: $(cat "$t/hyperparameters.json")"; fi
    case "$out" in *'"test":{'*'"images":4'*) pass ;; *) fail "train: summary lacks the test figures on 4 images: $out" ;; esac
    if [ "$(pl_key "$out" epochs)" = "2" ]; then pass; else fail "train: summary says epochs $(pl_key "$out" epochs): $out"; fi
    if [ ! -s "$tmp/trainA_err" ]; then pass; else fail "train --quiet wrote to stderr: $(head -n 3 "$tmp/trainA_err")"; fi
  else
    fail "train exited non-zero: $(tail -n 3 "$tmp/trainA_err")"
  fi

  if [ -s "$tmp/runA/TrainingRun/checkpoints/best_model.mcm" ]; then
    # ---- count: counts.json with one entry per image, a points CSV and an overlay each ----------
    if "$mc" count --model "$tmp/runA" "$vgg/image_101.tif" "$vgg/image_102.tif" "$vgg/image_103.tif" --out "$tmp/countA" --quiet >/dev/null 2>"$tmp/count_err"; then
      pl_files "$tmp/countA" counts.json points/image_101.csv points/image_103.csv overlays/image_101.png overlays/image_103.png
      n=$(grep -c '"image_10[0-9].tif": {' "$tmp/countA/counts.json")
      if [ "$n" -eq 3 ]; then pass; else fail "count: counts.json has $n image entries, expected 3"; fi
      if grep -q '"per_class"' "$tmp/countA/counts.json" && grep -q '"cell"' "$tmp/countA/counts.json"; then pass; else fail "count: counts.json lacks per_class cell counts"; fi
      # The points CSV holds one row per point counted (header + rows).
      pts=$(pl_key "$(tr -d ' \n' <"$tmp/countA/counts.json" | grep -o '"image_101.tif":{[^}]*}[^}]*}')" points)
      rows=$(($(wc -l <"$tmp/countA/points/image_101.csv") - 1))
      if [ -n "$pts" ] && [ "$rows" -eq "$pts" ]; then pass; else fail "count: image_101 has $pts points in counts.json but $rows CSV rows"; fi
    else
      fail "count exited non-zero: $(cat "$tmp/count_err")"
    fi

    # ---- evaluate: one JSON line with the figures, stating the matching radius -------------------
    if out=$("$mc" evaluate --model "$tmp/runA" "$vgg" --images 101-104 --out "$tmp/evalA" --quiet 2>"$tmp/eval_err"); then
      if [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ]; then pass; else fail "evaluate: expected one line on stdout, got: $out"; fi
      missing=""
      for k in mae rmse precision recall f1 radius per_class; do case "$out" in *"\"$k\":"*) ;; *) missing="$missing $k" ;; esac; done
      if [ -z "$missing" ]; then pass; else fail "evaluate: JSON line lacks$missing: $out"; fi
      case "$out" in *'"per_class":{"cell":{'*) pass ;; *) fail "evaluate: no per-class figures for 'cell': $out" ;; esac
      if [ "$(pl_key "$out" images)" = "4" ] && [ "$(pl_key "$out" radius)" = "5.0" ]; then pass; else fail "evaluate: expected 4 images, radius 5: $out"; fi
      pl_files "$tmp/evalA" test_results.json test_results.txt
      # The same model on the same images gives the figures the training run wrote.
      if [ "$(pl_key "$out" mae)" = "$(pl_key "$(tr -d ' \n' <"$tmp/runA/TrainingRun/test_results.json")" mae)" ]; then pass
      else fail "evaluate: MAE $(pl_key "$out" mae) differs from the run's test_results.json"; fi
    else
      fail "evaluate exited non-zero: $(cat "$tmp/eval_err")"
    fi

    # ---- resume: 1 epoch, then --resume to the end, equals the uninterrupted run ----------------
    if "$mc" train "$vgg" --out "$tmp/runB" --train 1-6 --test 101-104 --epochs 2 --set "$tiny" --max-epochs 1 --quiet >"$tmp/b1" 2>"$tmp/b_err" &&
       [ ! -e "$tmp/runB/TrainingRun/test_results.json" ] &&
       "$mc" train "$vgg" --resume "$tmp/runB" --train 1-6 --test 101-104 --quiet >"$tmp/b2" 2>>"$tmp/b_err"; then
      if cmp -s "$tmp/runA/TrainingRun/test_results.json" "$tmp/runB/TrainingRun/test_results.json"; then pass
      else fail "resume: test_results.json after 1 + 1 epochs differs from 2 epochs in one go: $(diff "$tmp/runA/TrainingRun/test_results.json" "$tmp/runB/TrainingRun/test_results.json" | head -n 6)"; fi
      if grep -q "resumed from .*after epoch 1" "$tmp/runB/TrainingRun/log.txt"; then pass; else fail "resume: log.txt does not say it resumed after epoch 1"; fi
    else
      fail "train --max-epochs 1 then --resume failed: $(tail -n 3 "$tmp/b_err")"
    fi
    expect_error "already holds a training run" "$mc" train "$vgg" --out "$tmp/runA" --train 1-6 --epochs 1 --set "$tiny"
  fi

  # ---- tune: a 2-point grid on a training subset; then resume an "interrupted" sweep -------------
  if out=$("$mc" tune "$vgg" --grid '{"lr":[0.001,0.0003]}' --out "$tmp/tune" --train 1-6 --subset 3 --epochs 1 --set "$tiny" --quiet 2>"$tmp/tune_err"); then
    pl_files "$tmp/tune" tuning_results.json best_sweep_parameters.json tune_settings.json
    for i in 0 1; do
      pl_files "$tmp/tune/Sweep_$i" sweep_parameters.json result.json hyperparameters.json log.txt checkpoints/best_model.mcm \
        checkpoints/latest_model.mcm plots/training_curves.png
    done
    if grep -q '"lr": 0.0003' "$tmp/tune/Sweep_1/hyperparameters.json"; then pass; else fail "tune: Sweep_1 did not train with lr 0.0003"; fi
    if grep -q 'split 3 train / 1 validation' "$tmp/tune/Sweep_0/log.txt"; then pass; else fail "tune: --subset 3 not applied: $(grep split "$tmp/tune/Sweep_0/log.txt")"; fi
    best=$(pl_key "$out" best_metric)
    case "$out" in *'"best_parameters":{"lr":'*) pass ;; *) fail "tune: JSON line lacks best_parameters: $out" ;; esac
    if [ -n "$best" ] && [ "$(pl_key "$out" failed)" = "0" ]; then pass; else fail "tune: no best metric or failed sweeps: $out"; fi
    # Sweep 1 "interrupted" (its result removed): --resume keeps sweep 0 and finishes sweep 1 from its checkpoint.
    rm "$tmp/tune/Sweep_1/result.json"
    lines0=$(wc -l <"$tmp/tune/Sweep_0/log.txt")
    if again=$("$mc" tune --resume "$tmp/tune" --quiet 2>"$tmp/tune_err2"); then
      if [ "$(pl_key "$again" best_metric)" = "$best" ] && [ -s "$tmp/tune/Sweep_1/result.json" ]; then pass
      else fail "tune --resume: best $(pl_key "$again" best_metric), expected $best"; fi
      if [ "$(wc -l <"$tmp/tune/Sweep_0/log.txt")" -eq "$lines0" ]; then pass; else fail "tune --resume reran the finished Sweep_0"; fi
      if grep -q "resumed from" "$tmp/tune/Sweep_1/log.txt"; then pass; else fail "tune --resume: Sweep_1 did not resume from its checkpoint"; fi
    else
      fail "tune --resume exited non-zero: $(cat "$tmp/tune_err2")"
    fi
    expect_error "grid" "$mc" tune --resume "$tmp/tune" --grid '{"lr":[0.01]}'
  else
    fail "tune exited non-zero: $(tail -n 3 "$tmp/tune_err")"
  fi
  mkdir -p "$tmp/not_a_tune"
  expect_error "tune_settings.json" "$mc" tune --resume "$tmp/not_a_tune"
  expect_error "nosuchkey" "$mc" tune "$vgg" --grid '{"nosuchkey":[1,2]}' --out "$tmp/tune_bad" --train 1-6
  expect_error "lr" "$mc" tune "$vgg" --grid '{"lr":["fast"]}' --out "$tmp/tune_bad2" --train 1-6
  if [ ! -e "$tmp/tune_bad/Sweep_0" ]; then pass; else fail "tune with an unknown grid key started a sweep"; fi

  # ---- bad input: status 1 and one line naming the key or the file -----------------------------
  expect_error "nosuchkey" "$mc" train "$vgg" --out "$tmp/bad1" --set nosuchkey=3
  printf 'lr: 0.001\n' >"$tmp/config.yaml"
  expect_error "config.yaml" "$mc" train "$vgg" --out "$tmp/bad2" --config "$tmp/config.yaml"
  printf 'not a checkpoint\n' >"$tmp/model.mcm"
  expect_error "model.mcm" "$mc" count --model "$tmp/model.mcm" "$vgg/image_101.tif" --out "$tmp/bad3"
  expect_error "model.mcm" "$mc" evaluate --model "$tmp/model.mcm" "$vgg"
  mkdir -p "$tmp/no_annotations" && ln -s "$vgg/image_001.tif" "$tmp/no_annotations/image_001.tif"
  expect_error "no_annotations" "$mc" train "$tmp/no_annotations" --out "$tmp/bad4"
fi

# ---- mbm: RGB images with napari CSVs, one epoch ------------------------------------------------
if [ -n "$data" ] && [ -f "$data/mbm/BM_GRAZ_HE_0001_01_000.csv" ]; then
  if out=$("$mc" train "$data/mbm" --out "$tmp/mbm" --train 1-3 --val 4 --test 5 --epochs 1 \
             --set base_width=4,patch=64,batch=4,patches_per_image=1,samples=1 --quiet 2>"$tmp/mbm_err"); then
    pl_files "$tmp/mbm/TrainingRun" checkpoints/best_model.mcm test_results.json
    if grep -q 'classes \[' "$tmp/mbm/TrainingRun/log.txt" && [ "$(pl_key "$out" images)" = "1" ]; then pass; else fail "mbm: unexpected summary: $out"; fi
  else
    fail "mbm: train exited non-zero: $(tail -n 3 "$tmp/mbm_err")"
  fi
else
  echo "pipelines: mbm skipped (no mbm under MICROCOUNT_DATA_DIR='$data')"
fi

# ---- demo --quick: the README's command, small enough for CI -------------------------------------
start=$(date +%s)
if out=$("$mc" demo --quick --out "$tmp/demo" 2>"$tmp/demo_err"); then
  last=$(printf '%s\n' "$out" | tail -n 1)
  missing=""
  for k in mae rmse precision recall f1 per_class demo; do case "$last" in *"\"$k\":"*) ;; *) missing="$missing $k" ;; esac; done
  if [ -z "$missing" ]; then pass; else fail "demo --quick: last line lacks$missing: $last"; fi
  pl_files "$tmp/demo" data/annotations.xml data/image_010.tif run/TrainingRun/log.txt run/TrainingRun/plots/training_curves.png \
    run/TrainingRun/test_results.txt counts/counts.json counts/overlays/image_008.png run/Evaluate/test_results.json
  if grep -q "training curves" <<<"$out" && grep -q "counts/counts.json" <<<"$out"; then pass; else fail "demo: the report does not say where the outputs are"; fi
  echo "pipelines: demo --quick took $(( $(date +%s) - start )) s (reported, not asserted: CI shares the machine)"
  # A second demo into the same folder replaces the first; a folder that is not a demo is refused.
  if "$mc" demo --quick --out "$tmp/demo" >/dev/null 2>&1; then pass; else fail "demo --quick into an earlier demo folder failed"; fi
  mkdir -p "$tmp/not_demo" && echo keep >"$tmp/not_demo/notes.txt"
  expect_error "not_demo" "$mc" demo --quick --out "$tmp/not_demo"
  if [ -f "$tmp/not_demo/notes.txt" ]; then pass; else fail "demo removed files from a folder that is not a demo"; fi
else
  fail "demo --quick exited non-zero: $(tail -n 3 "$tmp/demo_err")"
fi
