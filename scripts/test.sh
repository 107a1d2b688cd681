#!/usr/bin/env bash
# Install dependencies (with the headless browser of the report's test), build, and run the whole
# test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --browser
bash scripts/build.sh
cd build && ctest --output-on-failure -j2 --timeout 900
