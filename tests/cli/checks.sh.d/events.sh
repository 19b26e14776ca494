# events: synth --movie -> events train (tiny network, seconds) -> resume -> detect -> evaluate, and one-line
# errors for bad input. Synthetic movies only (no annotated movie with events exists in the shared data).

# ev_key JSON KEY: the first "KEY":value (number, string or null) in JSON.
ev_key() { printf '%s' "$1" | grep -o "\"$2\":\(\"[^\"]*\"\|[-0-9.eE+]*\|null\)" | head -n 1 | cut -d: -f2- | tr -d '"'; }
ev_files() { local d="$1" f missing=""; shift; for f in "$@"; do [ -s "$d/$f" ] || missing="$missing $f"; done
  if [ -z "$missing" ]; then pass; else fail "$d lacks:$missing"; fi; }

ev_tiny="base_width=4,patch_frames=8,patch_size=32,batch=2,steps_per_epoch=3,tile_frames=16,min_size=3"
ev="$tmp/ev_data"
if "$mc" synth --movie "$ev" --movies 3 --frames 24 --size 64 --seed 5 >/dev/null 2>"$tmp/ev_err"; then
  pass
  # ---- train: run folder, summary line with 2 epochs and one validation movie ----------------------
  if out=$("$mc" events train "$ev" --out "$tmp/ev_run" --epochs 2 --set "$ev_tiny" --quiet 2>"$tmp/ev_err"); then
    pass
    ev_files "$tmp/ev_run/TrainingRun" hyperparameters.json log.txt checkpoints/best_model.mcm checkpoints/latest_model.mcm \
      plots/training_curves.png plots/training_curves.svg
    if [ "$(ev_key "$out" epochs)" = "2" ] && [ "$(ev_key "$out" validation_movies)" = "1" ]; then pass
    else fail "events train: expected 2 epochs and 1 validation movie: $out"; fi
    if grep -q '"base_width": 4' "$tmp/ev_run/TrainingRun/hyperparameters.json"; then pass; else fail "events train: --set not in hyperparameters.json"; fi
    if [ "$(grep -c 'epoch [12]/2 ' "$tmp/ev_run/TrainingRun/log.txt")" -eq 2 ]; then pass; else fail "events train: log lacks epoch lines"; fi
    # ---- resume one more epoch in the same run folder --------------------------------------------
    if out=$("$mc" events train "$ev" --resume "$tmp/ev_run" --epochs 3 --quiet 2>"$tmp/ev_err") && [ "$(ev_key "$out" epochs)" = "3" ]; then pass
    else fail "events train --resume: $out $(cat "$tmp/ev_err")"; fi
    if grep -q '"epochs": 3' "$tmp/ev_run/TrainingRun/hyperparameters.json" && grep -q '"base_width": 4' "$tmp/ev_run/TrainingRun/hyperparameters.json"
    then pass; else fail "events train --resume: hyperparameters.json lacks the resumed values (epochs 3, base_width 4)"; fi
    expect_error "already holds a training run" "$mc" events train "$ev" --out "$tmp/ev_run" --set "$ev_tiny" --quiet
  else
    fail "events train exited non-zero: $(tail -n 3 "$tmp/ev_err")"
  fi
  if [ -s "$tmp/ev_run/TrainingRun/checkpoints/best_model.mcm" ]; then
    # ---- detect: object lists (XML + CSV with cluster_size) and a picture per movie ---------------
    if out=$("$mc" events detect --model "$tmp/ev_run" "$ev/movie_001.tif" "$ev/movie_002.tif" --out "$tmp/ev_det" --quiet 2>"$tmp/ev_err"); then
      ev_files "$tmp/ev_det" movie_001.xml movie_001.csv movie_001.png movie_002.xml movie_002.csv movie_002.png
      if head -n 1 "$tmp/ev_det/movie_001.csv" | grep -q '^tomo_idx,obj_id,class_label,x,y,z,cluster_size'; then pass
      else fail "events detect: CSV header: $(head -n 1 "$tmp/ev_det/movie_001.csv")"; fi
      n=$(printf '%s' "$out" | grep -o '"movie_001.tif":{"events":[0-9]*' | grep -o '[0-9]*$')
      rows=$(($(wc -l <"$tmp/ev_det/movie_001.csv") - 1))
      if [ -n "$n" ] && [ "$n" -eq "$rows" ]; then pass; else fail "events detect: $n events in the summary, $rows CSV rows: $out"; fi
    else
      fail "events detect exited non-zero: $(cat "$tmp/ev_err")"
    fi
    # ---- evaluate: one JSON line ----------------------------------------------------------------
    if out=$("$mc" events evaluate --model "$tmp/ev_run" "$ev" --sizes 1,5,20 2>"$tmp/ev_err"); then
      missing=""
      for k in precision recall f1 size_sweep distance; do case "$out" in *"\"$k\":"*) ;; *) missing="$missing $k" ;; esac; done
      if [ -z "$missing" ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ]; then pass; else fail "events evaluate: lacks$missing: $out"; fi
      if [ "$(ev_key "$out" movies)" = "3" ]; then pass; else fail "events evaluate: expected 3 movies: $out"; fi
    else
      fail "events evaluate exited non-zero: $(cat "$tmp/ev_err")"
    fi
    # ---- bad input ------------------------------------------------------------------------------
    head -c 3000 "$ev/movie_001.tif" >"$tmp/ev_cut.tif"
    expect_error "ev_cut.tif" "$mc" events detect --model "$tmp/ev_run" "$tmp/ev_cut.tif" --out "$tmp/ev_det2"
    expect_error "nosuch.tif" "$mc" events detect --model "$tmp/ev_run" "$tmp/nosuch.tif" --out "$tmp/ev_det2"
    expect_error "bandwidth" "$mc" events detect --model "$tmp/ev_run" "$ev/movie_001.tif" --out "$tmp/ev_det2" --bandwidth 0
    expect_error "TrainingRun" "$mc" events evaluate --model "$tmp/ev_data" "$ev"
  fi
else
  fail "synth --movie exited non-zero: $(cat "$tmp/ev_err")"
fi
expect_error "nosuch" "$mc" events train "$tmp/nosuch" --out "$tmp/ev_run2" --quiet
expect_error "base_width" "$mc" events train "$ev" --out "$tmp/ev_run3" --set base_width=0 --quiet
expect_error "frobnicate" "$mc" events frobnicate
expect_error "model" "$mc" events evaluate "$ev"
expect_error "missing.mcm" "$mc" events detect --model "$tmp/missing.mcm" "$ev/movie_001.tif" --out "$tmp/ev_det3"
