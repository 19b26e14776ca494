#!/usr/bin/env bash
# Builds a target that must fail to compile and checks the diagnostic: it names the op and the
# backend and stays short (no page of template noise).
set -u
build_dir="$1"; target="$2"; shift 2
out=$(cmake --build "$build_dir" --target "$target" 2>&1); rc=$?
if [ $rc -eq 0 ]; then echo "FAIL: $target compiled, it must not"; exit 1; fi
status=0
for needle in "$@"; do
  if ! grep -qF -- "$needle" <<<"$out"; then echo "FAIL: diagnostic lacks '$needle'"; status=1; fi
done
errors=$(grep -c "error:" <<<"$out")
if [ "$errors" -gt 3 ]; then echo "FAIL: $errors error lines, expected at most 3"; status=1; fi
[ $status -eq 0 ] && echo "compile-fail $target: diagnostic names the op and backend ($errors error lines)"
[ $status -ne 0 ] && echo "$out" | head -40
exit $status
