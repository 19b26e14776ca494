#!/usr/bin/env bash
# Builds tests/consumer against microcount both ways an application embeds it.
set -euo pipefail
src="$1"; work="$2"
rm -rf "$work"; mkdir -p "$work"
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
# 1. install microcount (header-only: configure + install, nothing to compile), then find_package.
cmake -S "$src" -B "$work/mc-build" "${gen[@]}" -DMICROCOUNT_BUILD_TESTS=OFF -DMICROCOUNT_BUILD_EXAMPLES=OFF \
      -DCMAKE_INSTALL_PREFIX="$work/prefix" > "$work/log.txt"
cmake --install "$work/mc-build" >> "$work/log.txt"
cmake -S "$src/tests/consumer" -B "$work/find" "${gen[@]}" -DCMAKE_PREFIX_PATH="$work/prefix" >> "$work/log.txt"
cmake --build "$work/find" >> "$work/log.txt"
"$work/find/consumer"
# 2. add_subdirectory from the source tree.
cmake -S "$src/tests/consumer" -B "$work/subdir" "${gen[@]}" -DMICROCOUNT_SOURCE_DIR="$src" >> "$work/log.txt"
cmake --build "$work/subdir" >> "$work/log.txt"
"$work/subdir/consumer"
echo "consumer: find_package and add_subdirectory both build and run"
