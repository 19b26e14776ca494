#!/usr/bin/env bash
# Builds test executables and the fuzz regression replay with AddressSanitizer + UndefinedBehaviorSanitizer
# (-DMICROCOUNT_SANITIZE=ON, -O1 -g1) into build-sanitize/ and runs them. Any sanitizer report fails (UBSan does
# not recover). CI does not use this script: it sanitizes the foundation, network-core and fuzz-replay tests
# inside its one build (scripts/test.sh, MICROCOUNT_SANITIZE_TESTS=1). This script is for the rest, by hand:
#   MICROCOUNT_SANITIZE_SUITES="foundation"                 (default) the foundation tests
#   MICROCOUNT_SANITIZE_SUITES="foundation network cuda pipeline"   everything: hours of instrumented training
#                                                  (the emulated-cuda pipeline case alone runs over 6 min: fiber switches)
#   scripts/sanitize.sh [doctest options…]      e.g. scripts/sanitize.sh -tc="tiff*"
# fuzz_replay (every saved fuzz input) is always built and run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --deps
jobs=$(nproc 2>/dev/null || echo 2)
start=$(date +%s)
cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=Release -DMICROCOUNT_SANITIZE=ON \
      -DMICROCOUNT_BUILD_EXAMPLES=OFF -DMICROCOUNT_BUILD_FUZZ_REPLAY=ON ${MICROCOUNT_CMAKE_ARGS:-} >/dev/null
suites="${MICROCOUNT_SANITIZE_SUITES:-foundation}"
targets=(fuzz_replay)
case " $suites " in *" foundation "*) targets+=(microcount_tests) ;; esac
case " $suites " in *" network "*) targets+=(microcount_nn_tests) ;; esac
case " $suites " in *" cuda "*) ls tests/cuda/*.cpp >/dev/null 2>&1 && targets+=(microcount_cuda_tests) ;; esac
case " $suites " in *" pipeline "*) targets+=(microcount_pipeline_tests) ;; esac
cmake --build build-sanitize -j "$jobs" --target "${targets[@]}"
built=$(date +%s)
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
for t in "${targets[@]}"; do
  [ "$t" = fuzz_replay ] && continue
  echo "sanitize: $t"
  "build-sanitize/tests/$t" --minimal "$@"
done
echo "sanitize: fuzz regressions"
build-sanitize/fuzz/fuzz_replay fuzz/regressions | tail -n 1
echo "sanitize: built in $((built - start)) s, ran in $(($(date +%s) - built)) s"
