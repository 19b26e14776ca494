#!/usr/bin/env bash
# The test command: sets up (packages + build) and runs the whole test suite with ctest.
# Reliability switches (docs/reliability.md), off unless asked for; CI (.ci/run) turns both on:
#   MICROCOUNT_SANITIZE_TESTS=1   the foundation tests, the network core's tests and the fuzz replay are built with
#                                 AddressSanitizer + UBSan inside ./build, so they run under them; the pipeline and
#                                 emulated-cuda tests (hours of instrumented training) stay optimised here and run
#                                 sanitized by hand with scripts/sanitize.sh
#   MICROCOUNT_FUZZ_SECONDS=N     also run every fuzz harness N seconds and replay its regressions (scripts/fuzz.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
sanitized="microcount_tests@O0;microcount_nn_tests;fuzz_replay@O0"  # @O0: little arithmetic, half the compile time
if [ "${MICROCOUNT_SANITIZE_TESTS:-0}" = 1 ]; then
  export MICROCOUNT_CMAKE_ARGS="${MICROCOUNT_CMAKE_ARGS:-} -DMICROCOUNT_SANITIZE_TARGETS=$sanitized"
  export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
else
  # A build folder that was sanitized before goes back to the optimised executables.
  export MICROCOUNT_CMAKE_ARGS="${MICROCOUNT_CMAKE_ARGS:-} -DMICROCOUNT_SANITIZE_TARGETS="
fi
bash scripts/setup.sh
(cd build && ctest --output-on-failure -j "$(nproc 2>/dev/null || echo 2)" "$@")
if [ -n "${MICROCOUNT_FUZZ_SECONDS:-}" ]; then bash scripts/fuzz.sh "$MICROCOUNT_FUZZ_SECONDS"; fi
