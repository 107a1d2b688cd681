#!/usr/bin/env bash
# The main job: install dependencies, build, then train the default MLP on Fashion-MNIST
# conventionally and with PNN (both schedules, 2 partitions) and print the comparison table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
./build/tessera pnn --compare --pnn-schedule sequential,parallel --schedule cosine --epochs 5 \
  --evals-per-epoch 4 --run-dir runs/demo "$@"
