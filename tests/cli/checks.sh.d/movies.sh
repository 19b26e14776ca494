# `microcount synth --movie` (sourced by tests/cli/run.sh: $mc, $tmp, pass, fail, expect_error). About 1 s.

# mv_key JSON KEY: the first "KEY":value (number or string) in JSON.
mv_key() { printf '%s' "$1" | grep -o "\"$2\":\(\"[^\"]*\"\|[-0-9.eE+]*\)" | head -n 1 | cut -d: -f2- | tr -d '"'; }

if out=$("$mc" synth --movie "$tmp/movies" --movies 2 --frames 12 --size 48 --events 3 --spots 2 --seed 5 2>"$tmp/mv_err"); then
  pass
  if [ "$(mv_key "$out" movies)" = 2 ] && [ "$(mv_key "$out" events)" = 6 ] && [ "$(mv_key "$out" frames)" = 12 ]; then pass
  else fail "synth --movie: summary does not say 2 movies, 6 events, 12 frames: $out"; fi
  missing=""
  for f in movie_001.tif movie_001.xml movie_002.tif movie_002.xml; do [ -s "$tmp/movies/$f" ] || missing="$missing $f"; done
  [ -z "$missing" ] && pass || fail "synth --movie did not write:$missing"
  ls -a "$tmp/movies" | grep -q '\.tmp-' && fail "synth --movie left a temporary file" || pass
  # Three class-2 objects per movie, in ExoDeepFinder's object-list form.
  n=$(grep -c 'class_label="2"' "$tmp/movies/movie_002.xml"); [ "$n" -eq 3 ] && pass || fail "movie_002.xml holds $n events, expected 3"
  grep -q '^<objlist>' "$tmp/movies/movie_001.xml" && pass || fail "movie_001.xml is not an <objlist>"
  # Same seed, same bytes; movie 2 of seed 5 is movie 1 of seed 6.
  "$mc" synth --movie "$tmp/movies_again" --movies 2 --frames 12 --size 48 --events 3 --spots 2 --seed 5 >/dev/null 2>&1
  cmp -s "$tmp/movies/movie_002.tif" "$tmp/movies_again/movie_002.tif" && pass || fail "synth --movie is not reproducible"
  "$mc" synth --movie "$tmp/movies_six" --movies 1 --frames 12 --size 48 --events 3 --spots 2 --seed 6 >/dev/null 2>&1
  cmp -s "$tmp/movies/movie_002.xml" "$tmp/movies_six/movie_001.xml" && pass || fail "movie k does not use seed + k - 1"
else
  fail "synth --movie exited non-zero: $(cat "$tmp/mv_err")"
fi

expect_error "cannot place every event" "$mc" synth --movie "$tmp/movies_full" --size 16 --events 50
expect_error "at least 1 frame" "$mc" synth --movie "$tmp/movies_none" --frames 0
expect_error "unknown option --images" "$mc" synth --movie "$tmp/movies_bad" --images 3
expect_error "takes one OUT_DIR" "$mc" synth --movie
expect_error "--movies must be at least 1" "$mc" synth --movie "$tmp/movies_zero" --movies 0
