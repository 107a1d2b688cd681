#!/usr/bin/env bash
# Configures and builds tessera (Release, Ninja) into ./build. Extra arguments go to CMake.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTESSERA_WERROR=ON "$@" >/dev/null
cmake --build build
