# `microcount match`, `synth` and `demo`: metrics as one JSON line, reproducible data, one-line errors.

# json_number LINE KEY: the first "KEY":number in LINE (top-level keys come before per_class: keys are sorted).
json_number() { printf '%s' "$1" | grep -o "\"$2\":[-0-9.eE+]*" | head -n 1 | cut -d: -f2; }

# synth: the files exist, the same seed gives the same bytes, another seed does not.
if out=$("$mc" synth "$tmp/synth_a" --images 3 --size 64 --classes 2 --min-cells 5 --max-cells 9 --seed 7 2>/dev/null); then
  pass
  "$mc" synth "$tmp/synth_b" --images 3 --size 64 --classes 2 --min-cells 5 --max-cells 9 --seed 7 >/dev/null 2>&1
  "$mc" synth "$tmp/synth_c" --images 3 --size 64 --classes 2 --min-cells 5 --max-cells 9 --seed 8 >/dev/null 2>&1
  same=1
  for f in image_001.tif image_002.tif image_003.tif annotations.xml; do
    cmp -s "$tmp/synth_a/$f" "$tmp/synth_b/$f" || same=0
  done
  if [ $same -eq 1 ]; then pass; else fail "synth: the same seed wrote different files"; fi
  if cmp -s "$tmp/synth_a/image_001.tif" "$tmp/synth_c/image_001.tif"; then fail "synth: seeds 7 and 8 wrote the same image"; else pass; fi
  case "$out" in *'"images":3'*) pass ;; *) fail "synth: JSON line lacks \"images\":3: $out" ;; esac
else
  fail "synth exited non-zero"
fi

# match: a file against itself is perfect; a copy with a point moved 3 px matches within 5 px, not within 2.
if [ -f "$tmp/synth_a/annotations.xml" ]; then
  out=$("$mc" match "$tmp/synth_a/annotations.xml" "$tmp/synth_a" --per-class 2>"$tmp/match_err")
  if [ "$(json_number "$out" f1)" = "1.0" ] && [ "$(json_number "$out" fp)" = "0" ]; then pass
  else fail "match of a file against itself: expected f1 1.0, got: $out $(cat "$tmp/match_err")"; fi
  case "$out" in *'"mae":'*'"per_class":{"enveloped":{'*'"naked":{'*'"smape":'*) pass ;;
    *) fail "match: JSON line lacks mae / per_class / smape: $out" ;; esac
  # Move the first point of the first image by +3 px in x.
  awk 'BEGIN{done=0} !done && /points="/ { match($0, /points="[0-9.]+,/); x=substr($0, RSTART+8, RLENGTH-9);
       $0=substr($0,1,RSTART+7) (x+3) "," substr($0,RSTART+RLENGTH); done=1 } {print}' \
       "$tmp/synth_a/annotations.xml" > "$tmp/moved.xml"
  wide=$("$mc" match "$tmp/synth_a/annotations.xml" "$tmp/moved.xml" --radius 5 2>/dev/null)
  narrow=$("$mc" match "$tmp/synth_a/annotations.xml" "$tmp/moved.xml" --radius 2 2>/dev/null)
  if [ "$(json_number "$wide" fn)" = "0" ] && [ "$(json_number "$narrow" fn)" = "1" ] && [ "$(json_number "$narrow" fp)" = "1" ]; then pass
  else fail "match: a point moved 3 px should match at radius 5 and not at 2: $wide / $narrow"; fi
fi
if [ -n "$data" ] && [ -f "$data/vgg-cells/annotations.xml" ]; then
  out=$("$mc" match "$data/vgg-cells/annotations.xml" "$data/vgg-cells" 2>/dev/null)
  if [ "$(json_number "$out" f1)" = "1.0" ] && [ "$(json_number "$out" tp)" = "35192" ]; then pass
  else fail "match vgg-cells against itself: expected f1 1.0 and tp 35192, got: $out"; fi
fi

# Bad input: status 1, one stderr line naming the file or option.
printf 'not an annotation file\n' > "$tmp/garbage.xml"
expect_error "garbage.xml" "$mc" match "$tmp/garbage.xml" "$tmp/garbage.xml"
expect_error "missing.xml" "$mc" match "$tmp/missing.xml" "$tmp/garbage.xml"
if [ -f "$tmp/synth_a/annotations.xml" ]; then
  expect_error "garbage.xml" "$mc" match "$tmp/synth_a/annotations.xml" "$tmp/garbage.xml"
  expect_error "radius" "$mc" match "$tmp/synth_a/annotations.xml" "$tmp/synth_a" --radius -1
  # No image name in common: the prediction is named.
  sed 's/image_0/other_0/g' "$tmp/synth_a/annotations.xml" > "$tmp/renamed.xml"
  expect_error "renamed.xml" "$mc" match "$tmp/synth_a/annotations.xml" "$tmp/renamed.xml"
fi
expect_error "match" "$mc" match only-one-argument
expect_error "dtype" "$mc" synth "$tmp/bad" --dtype float64
expect_error "min_cells" "$mc" synth "$tmp/bad" --min-cells 9 --max-cells 3
expect_error "classes" "$mc" synth "$tmp/bad" --classes 12

# demo: it trains a network now; its end-to-end checks (demo --quick) are in pipelines.sh.
expect_error "classes" "$mc" demo --out "$tmp/demo2" --classes 5
