#!/usr/bin/env bash
# Command-line contract checks for the `microcount` program ($MICROCOUNT): exit codes and one-line errors.
# Every check that fails prints what it expected; the script exits non-zero if any failed.
set -u
mc="${MICROCOUNT:?set MICROCOUNT to the program}"
data="${MICROCOUNT_DATA_DIR:-}"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
failed=0; passed=0
pass() { passed=$((passed+1)); }
fail() { echo "FAIL: $*"; failed=$((failed+1)); }

# expect_error NAME_IN_MESSAGE CMD…: status 1, exactly one line on stderr, naming the subject.
expect_error() {
  local needle="$1"; shift
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ $rc -ne 1 ]; then fail "$* exited $rc, expected 1"; return; fi
  if [ "$(wc -l <"$tmp/err")" -ne 1 ]; then fail "$*: expected one line on stderr, got:"; cat "$tmp/err"; return; fi
  if ! grep -q -- "$needle" "$tmp/err"; then fail "$*: stderr does not name '$needle':"; cat "$tmp/err"; return; fi
  pass
}

expect_error "nosuchcommand" "$mc" nosuchcommand
for f in "$(dirname "$0")"/checks.sh.d/*.sh; do [ -f "$f" ] && . "$f"; done

echo "cli: $passed passed, $failed failed"
[ $failed -eq 0 ]
