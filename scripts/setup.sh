#!/usr/bin/env bash
# Installs what microcount needs (Debian packages, idempotent) and builds it into ./build.
#   scripts/setup.sh            install missing packages, configure, build
#   scripts/setup.sh --deps     only install missing packages
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake ninja-build pkg-config
          libtiff-dev libpng-dev libpugixml-dev xtensor-dev libxsimd-dev libeigen3-dev
          nlohmann-json3-dev doctest-dev libbenchmark-dev libomp-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=(); [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ "${1:-}" = "--deps" ] && exit 0

jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release ${MICROCOUNT_CMAKE_ARGS:-}
cmake --build build -j "$jobs"
echo "setup: built; the program is build/bin/microcount"
