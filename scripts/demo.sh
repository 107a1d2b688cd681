#!/usr/bin/env bash
# The main job: install dependencies, build, and train the default model on the default data set.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
./build/tessera train --schedule cosine --run-dir runs/demo "$@"
