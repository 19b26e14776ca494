# `microcount info`: one JSON line per readable file; a bad file is one stderr line naming it, status 1.
printf 'this is not an image\n' > "$tmp/garbage.tif"
expect_error "garbage.tif" "$mc" info "$tmp/garbage.tif"
expect_error "missing.tif" "$mc" info "$tmp/missing.tif"
expect_error "info" "$mc" info

# info_has FILE KEY:VALUE…: runs info on FILE and checks each "key":value appears in its JSON line.
info_has() {
  local file="$1"; shift
  local out rc
  out=$("$mc" info "$file" 2>"$tmp/info_err"); rc=$?
  if [ $rc -ne 0 ]; then fail "info $file exited $rc: $(cat "$tmp/info_err")"; return; fi
  if [ "$(printf '%s\n' "$out" | wc -l)" -ne 1 ]; then fail "info $file: expected one line, got: $out"; return; fi
  local kv
  for kv in "$@"; do
    if ! printf '%s' "$out" | grep -qF -- "$kv"; then fail "info $file: missing $kv in $out"; return; fi
  done
  pass
}

# A 3×2 RGB PNG built byte by byte: pixel (y, x) = 10·x + 60·y in every channel → min 0, max 80, mean 40.
printf '\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x03\x00\x00\x00\x02\x08\x02\x00\x00\x00\x12\x16\xf1\x4d\x00\x00\x00\x1c\x49\x44\x41\x54\x78\x9c\x63\x60\x60\x60\xe0\xe2\xe2\x12\x11\x11\x61\xb0\xb1\xb1\x71\x73\x73\x0b\x08\x08\x00\x00\x10\x40\x02\xd1\x14\xbf\xe2\x0c\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82' > "$tmp/rgb.png"
info_has "$tmp/rgb.png" '"format":"png"' '"width":3' '"height":2' '"channels":3' '"dtype":"uint8"' '"min":0.0' '"max":80.0' '"mean":40.0'
head -c 40 "$tmp/rgb.png" > "$tmp/cut.png"
expect_error "cut.png" "$mc" info "$tmp/cut.png"

if [ -n "$data" ] && [ -d "$data/vgg-cells" ]; then
  info_has "$data/vgg-cells/image_001.tif" '"width":256' '"height":256' '"frames":1' '"channels":1' \
    '"dtype":"uint8"' '"min":4.0' '"max":252.0' '"compression":"none"' '"bigtiff":false'
  info_has "$data/mbm/BM_GRAZ_HE_0001_01_000.tif" '"width":600' '"channels":3' '"dtype":"uint8"' '"compression":"lzw"'
  info_has "$data/formats/deep-events/event1_images.tif" '"frames":5' '"dtype":"float16"' '"min":78.0' '"max":626.0' '"pages":5'
  # No calibration in that file (tifffile's default XResolution 1/1, unit none): no pixel_size key.
  if "$mc" info "$data/formats/deep-events/event1_images.tif" | grep -q pixel_size; then
    fail "info: event1_images.tif has no calibration but pixel_size was printed"
  else pass; fi

  # Several files with a bad one among them: the good ones are printed, the bad one named once, status 1.
  "$mc" info "$data/vgg-cells/image_001.tif" "$tmp/garbage.tif" "$data/vgg-cells/image_002.tif" \
    >"$tmp/info_out" 2>"$tmp/info_err"; rc=$?
  if [ $rc -eq 1 ] && [ "$(wc -l <"$tmp/info_out")" -eq 2 ] && [ "$(wc -l <"$tmp/info_err")" -eq 1 ] \
     && grep -q "garbage.tif" "$tmp/info_err" && grep -q "image_002.tif" "$tmp/info_out"; then
    pass
  else
    fail "info with one bad file among good ones: status $rc, stdout $(cat "$tmp/info_out"), stderr $(cat "$tmp/info_err")"
  fi

  # A truncated copy of a real file fails with its name.
  head -c 30000 "$data/mbm/BM_GRAZ_HE_0001_01_000.tif" > "$tmp/cut.tif"
  expect_error "cut.tif" "$mc" info "$tmp/cut.tif"
fi
