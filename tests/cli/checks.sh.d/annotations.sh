# `microcount annotations` and `microcount convert` (sourced by tests/cli/run.sh: $mc, $data, $tmp, pass, fail, expect_error).

# expect_json NAME CMD…: status 0 and stdout contains the JSON fragment NAME.
expect_json() {
  local needle="$1"; shift
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ $rc -ne 0 ]; then fail "$* exited $rc: $(cat "$tmp/err")"; return; fi
  if ! grep -qF -- "$needle" "$tmp/out"; then fail "$*: output lacks '$needle':"; cat "$tmp/out"; return; fi
  pass
}

if [ -n "$data" ] && [ -d "$data/vgg-cells" ]; then
  vgg="$data/vgg-cells/annotations.xml"
  expect_json '"format":"cvat_images","images":200,"points":35192,"points_per_label":{"cell":35192},"points_per_image":{"min":74,"max":317}' "$mc" annotations "$vgg"
  expect_json '"points":35192' "$mc" annotations "$data/vgg-cells"
  expect_json '"points_per_label":{"1":10000,"2":216}' "$mc" annotations "$data/formats/exodeepfinder/objl_cell6.xml"
  expect_json '"format":"napari_csv","images":44,"points":5553' "$mc" annotations "$data/mbm"
  expect_json '"points":96' "$mc" annotations "$data/formats/deep-events/labels_1_f.csv"
  expect_json '"skipped_shapes":3,"skipped_by_kind":{"box":1,"polygon":1,"polyline":1}' "$mc" annotations "$data/formats/cvat/datumaro_export_task.xml"
  expect_json '"images":6,"points":9' "$mc" annotations "$data/formats/cvat/datumaro_export_project.xml"
  expect_json '"format":"cvat_video","images":1,"points":3' "$mc" annotations "$data/formats/cvat/datumaro_video.xml"
  # Exactly one JSON object on one line.
  n=$("$mc" annotations "$vgg" | wc -l); [ "$n" -eq 1 ] && pass || fail "annotations printed $n lines, expected 1"

  # convert: CVAT -> napari folder -> CVAT, objlist XML -> CSV, video -> images; counts survive.
  expect_json '"format":"napari_csv","images":200,"points":35192' "$mc" convert "$vgg" "$tmp/vgg_napari"
  [ -f "$tmp/vgg_napari/image_117.csv" ] && pass || fail "convert did not write vgg_napari/image_117.csv"
  expect_json '"points":35192' "$mc" annotations "$tmp/vgg_napari"
  expect_json '"format":"cvat_images"' "$mc" convert "$tmp/vgg_napari" "$tmp/vgg_back.xml"
  expect_json '"points_per_label":{"cell":35192}' "$mc" annotations "$tmp/vgg_back.xml"
  expect_json '"format":"objlist_csv"' "$mc" convert "$data/formats/exodeepfinder/objl_cell6.xml" "$tmp/objl.csv"
  expect_json '"format":"objlist_csv","images":1,"points":10216,"points_per_label":{"1":10000,"2":216}' "$mc" annotations "$tmp/objl.csv"
  expect_json '"format":"cvat_images"' "$mc" convert "$data/formats/cvat/datumaro_video.xml" "$tmp/video_frames.xml" --to cvat_images
  expect_json '"images":20,"points":3' "$mc" annotations "$tmp/video_frames.xml"
  expect_json '"format":"points_csv"' "$mc" convert "$data/mbm" "$tmp/mbm_points.csv"
  expect_json '"images":44,"points":5553' "$mc" annotations "$tmp/mbm_points.csv"
  ls -a "$tmp" | grep -q '\.tmp-' && fail "convert left a temporary file in $tmp" || pass

  # Errors: status 1, one line, naming the file.
  expect_error "datumaro_video.xml" "$mc" annotations "$data/formats/cvat"
  expect_error "x.json" "$mc" convert "$vgg" "$tmp/x.json"
  expect_error "one.csv" "$mc" convert "$vgg" "$tmp/one.csv" --to napari_csv
fi

printf '<annotations><image name="a"><points label="c" points="1,abc"/></image></annotations>' >"$tmp/bad_points.xml"
expect_error "bad_points.xml" "$mc" annotations "$tmp/bad_points.xml"
printf '<annotations>\n<image name="a">\n<points label="c" points="1,2">\n</annotations>\n' >"$tmp/unclosed.xml"
expect_error "unclosed.xml: line " "$mc" annotations "$tmp/unclosed.xml"
printf 'index,axis-0,axis-1\n0,1,2\n1,nan,3\n' >"$tmp/nan.csv"
expect_error "nan.csv: line 3" "$mc" annotations "$tmp/nan.csv"
printf 'a,b,c\n1,2,3\n' >"$tmp/unknown.csv"
expect_error "unknown.csv" "$mc" annotations "$tmp/unknown.csv"
expect_error "missing.xml" "$mc" annotations "$tmp/missing.xml"
expect_error "bad_points.xml" "$mc" convert "$tmp/bad_points.xml" "$tmp/never.csv"
[ ! -e "$tmp/never.csv" ] && pass || fail "convert wrote output for a bad input"
expect_error "--frobnicate" "$mc" annotations "$tmp/nan.csv" --frobnicate
