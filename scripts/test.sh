#!/usr/bin/env bash
# The test command: sets up (packages + build) and runs the whole test suite with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
(cd build && ctest --output-on-failure -j "$(nproc 2>/dev/null || echo 2)" "$@")
# Reliability steps (docs/reliability.md), off unless asked for; CI (.ci/run) turns both on:
#   MICROCOUNT_SANITIZE_TESTS=1   also build and run the test executables under ASan + UBSan (scripts/sanitize.sh)
#   MICROCOUNT_FUZZ_SECONDS=N     also run every fuzz harness N seconds and replay its regressions (scripts/fuzz.sh)
if [ "${MICROCOUNT_SANITIZE_TESTS:-0}" = 1 ]; then bash scripts/sanitize.sh; fi
if [ -n "${MICROCOUNT_FUZZ_SECONDS:-}" ]; then bash scripts/fuzz.sh "$MICROCOUNT_FUZZ_SECONDS"; fi
