# denoise synth → train (tiny, a few seconds) → resume → apply with quality scores; real files; one-line errors.

# dn_key JSON KEY: the first "KEY":value (number, string or null) in JSON.
dn_key() { printf '%s' "$1" | grep -o "\"$2\":\(\"[^\"]*\"\|[-0-9.eE+]*\|null\)" | head -n 1 | cut -d: -f2- | tr -d '"'; }
dn_tiny="--steps 3 --batch 4 --patch 32 --width 4"

if "$mc" denoise synth "$tmp/dn" --images 3 --size 64 --cells 4-8 >/dev/null 2>"$tmp/dn_err"; then
  n=$(ls "$tmp/dn/noisy" | grep -c '\.tif$'); m=$(ls "$tmp/dn/clean" | grep -c '\.tif$')
  if [ "$n" -eq 3 ] && [ "$m" -eq 3 ] && [ -s "$tmp/dn/noisy/annotations.xml" ]; then pass; else fail "denoise synth: $n noisy, $m clean images"; fi
else
  fail "denoise synth exited non-zero: $(tail -n 2 "$tmp/dn_err")"
fi

# ---- train: run folder, summary line with quality against the clean images ------------------------
if out=$("$mc" denoise train "$tmp/dn/noisy" --out "$tmp/dnrun" --epochs 2 $dn_tiny --clean "$tmp/dn/clean" --quiet 2>"$tmp/dn_err"); then
  t="$tmp/dnrun/TrainingRun"; missing=""
  for f in hyperparameters.json log.txt checkpoints/best_model.mcm checkpoints/latest_model.mcm plots/training_curves.png test_results.json; do
    [ -s "$t/$f" ] || missing="$missing $f"; done
  if [ -z "$missing" ]; then pass; else fail "denoise train: $t lacks:$missing"; fi
  if [ "$(dn_key "$out" epochs)" = "2" ]; then pass; else fail "denoise train: summary epochs: $out"; fi
  case "$(dn_key "$out" psnr_denoised)" in ''|null) fail "denoise train --clean: no psnr_denoised in $out" ;; *) pass ;; esac
  if [ ! -s "$tmp/dn_err" ]; then pass; else fail "denoise train --quiet wrote to stderr: $(head -n 2 "$tmp/dn_err")"; fi
  # ---- resume: the run continues to epoch 3 from latest_model.mcm ---------------------------------
  if out=$("$mc" denoise train "$tmp/dn/noisy" --out "$tmp/dnrun" --resume "$tmp/dnrun" --epochs 3 --quiet 2>"$tmp/dn_err"); then
    if grep -q 'resumed from .* after epoch 2' "$t/log.txt" && grep -q 'epoch 3/3 ' "$t/log.txt"; then pass
    else fail "denoise train --resume: log lacks the resume/epoch 3 lines: $(tail -n 4 "$t/log.txt")"; fi
  else
    fail "denoise train --resume exited non-zero: $(tail -n 2 "$tmp/dn_err")"
  fi
else
  fail "denoise train exited non-zero: $(tail -n 3 "$tmp/dn_err")"
fi

if [ -s "$tmp/dnrun/TrainingRun/checkpoints/best_model.mcm" ]; then
  # ---- apply with --clean: denoised TIFFs, quality.json, one JSON line ------------------------------
  if out=$("$mc" denoise apply --model "$tmp/dnrun" "$tmp/dn/noisy" --out "$tmp/dnout" --clean "$tmp/dn/clean" --quiet 2>"$tmp/dn_err"); then
    n=$(ls "$tmp/dnout" | grep -c '\.tif$')
    if [ "$n" -eq 3 ] && [ -s "$tmp/dnout/quality.json" ]; then pass; else fail "denoise apply: $n TIFFs, quality.json $(ls "$tmp/dnout")"; fi
    for k in psnr_noisy psnr_denoised ssim_noisy ssim_denoised; do
      case "$(dn_key "$out" $k)" in ''|null) fail "denoise apply: no $k in $out" ;; *) pass ;; esac
    done
  else
    fail "denoise apply exited non-zero: $(tail -n 2 "$tmp/dn_err")"
  fi
  # ---- real files: a vgg-cells image (8-bit) and a deep-events float16 movie (every frame) ------------
  if [ -n "$data" ] && [ -f "$data/vgg-cells/image_001.tif" ]; then
    if "$mc" denoise apply --model "$tmp/dnrun/TrainingRun/checkpoints/best_model.mcm" "$data/vgg-cells/image_001.tif" \
         "$data/formats/deep-events/event1_images.tif" --out "$tmp/dnreal" --quiet >/dev/null 2>"$tmp/dn_err" &&
       [ -s "$tmp/dnreal/image_001.tif" ] && [ -s "$tmp/dnreal/event1_images.tif" ]; then pass
    else fail "denoise apply on real files: $(tail -n 2 "$tmp/dn_err")"; fi
    expect_error "channel" "$mc" denoise apply --model "$tmp/dnrun" "$data/mbm/BM_GRAZ_HE_0001_01_000.tif" --out "$tmp/dnbad"
  fi
  printf 'not a checkpoint' >"$tmp/junk.mcm"
  expect_error "junk.mcm" "$mc" denoise apply --model "$tmp/junk.mcm" "$tmp/dn/noisy" --out "$tmp/dnbad"
  mkdir -p "$tmp/dnclean_partial"
  expect_error "dnclean_partial" "$mc" denoise apply --model "$tmp/dnrun" "$tmp/dn/noisy" --out "$tmp/dnbad" --clean "$tmp/dnclean_partial" --quiet
fi
expect_error "--out" "$mc" denoise train "$tmp/dn/noisy"
expect_error "no_such_dir" "$mc" denoise train "$tmp/no_such_dir" --out "$tmp/dnx"
expect_error "patch" "$mc" denoise train "$tmp/dn/noisy" --out "$tmp/dnx" --patch 30
expect_error "tile" "$mc" denoise train "$tmp/dn/noisy" --out "$tmp/dnx" --patch 128 --quiet
expect_error "frobnicate" "$mc" denoise frobnicate
