#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/, clang) into build-fuzz/ and runs each for a fixed time.
#   scripts/fuzz.sh [seconds per reader, default 15] [reader ...]     (readers: tiff cvat napari objlist
#                                                                      points_csv dot_image checkpoint hyperparameters)
# Seeds: small files made by fuzz_make_seeds plus links to ../shared/data/formats (read in place).
# The saved inputs of fuzz/regressions/<reader>/ are replayed first. The growing corpus stays in
# build-fuzz/corpus/<reader>/. Every crash, leak, timeout or out-of-memory input is kept under
# fuzz/regressions/<reader>/ (commit it with the fix: the test suite replays it, see fuzz/CMakeLists.txt).
# Exits non-zero when any reader produced a finding.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-15}"; shift || true
readers=("$@")
[ ${#readers[@]} -eq 0 ] && readers=(tiff cvat napari objlist points_csv dot_image checkpoint hyperparameters)

# clang + libFuzzer runtime (Debian: clang, libclang-rt-<version>-dev); the rest comes from setup.sh.
need=()
command -v clang++ >/dev/null || need+=(clang)
if command -v clang++ >/dev/null; then
  clang_major=$(clang++ -dumpversion | cut -d. -f1)
  ls /usr/lib/llvm-"$clang_major"/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
    need+=("libclang-rt-$clang_major-dev")
fi
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=(); [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
  if ! command -v clang++ >/dev/null; then echo "fuzz: clang++ is missing"; exit 1; fi
  clang_major=$(clang++ -dumpversion | cut -d. -f1)
  ls /usr/lib/llvm-"$clang_major"/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "libclang-rt-$clang_major-dev" >/dev/null
fi
bash scripts/setup.sh --deps

jobs=$(nproc 2>/dev/null || echo 2); [ "$jobs" -gt 2 ] || jobs=2
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
      -DMICROCOUNT_BUILD_FUZZERS=ON -DMICROCOUNT_BUILD_TESTS=OFF -DMICROCOUNT_BUILD_EXAMPLES=OFF >/dev/null || exit 1
targets=(fuzz_make_seeds); for r in "${readers[@]}"; do targets+=("fuzz_$r"); done
cmake --build build-fuzz -j "$jobs" --target "${targets[@]}" || exit 1

data="${MICROCOUNT_DATA_DIR:-../shared/data}"
build-fuzz/fuzz/fuzz_make_seeds build-fuzz/seeds "$data" >/dev/null || { echo "fuzz: seed generation failed"; exit 1; }

findings=0
for r in "${readers[@]}"; do
  mkdir -p "build-fuzz/corpus/$r" "fuzz/regressions/$r"
  # First the kept findings: each must now pass (the fix is in).
  if ! bash fuzz/replay.sh "build-fuzz/fuzz/fuzz_$r" "fuzz/regressions/$r" >"build-fuzz/$r.replay.log" 2>&1; then
    findings=$((findings+1))
    echo "fuzz: $r: a saved regression input fails again; log build-fuzz/$r.replay.log"
    continue
  fi
  before=$(ls "fuzz/regressions/$r" | wc -l)
  # -rss_limit_mb: the limits in fuzz_support.hpp keep honest inputs far below it; -timeout: a hang is a finding.
  build-fuzz/fuzz/fuzz_"$r" "build-fuzz/corpus/$r" "build-fuzz/seeds/$r" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="fuzz/regressions/$r/" >"build-fuzz/$r.log" 2>&1
  rc=$?
  after=$(ls "fuzz/regressions/$r" | wc -l)
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "build-fuzz/$r.log" | grep -o '[0-9]*$' | tail -1)
  if [ $rc -ne 0 ] || [ "$after" -gt "$before" ]; then
    findings=$((findings+1))
    echo "fuzz: $r: FINDING (exit $rc), input kept in fuzz/regressions/$r/; log build-fuzz/$r.log:"
    grep -E 'ERROR|SUMMARY|terminate|what\(\)|runtime error' "build-fuzz/$r.log" | head -5
  else
    echo "fuzz: $r: ${execs:-?} inputs in ${seconds} s, no finding"
  fi
done
[ $findings -eq 0 ]
