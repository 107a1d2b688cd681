#!/usr/bin/env bash
# Builds examples/ against an installed tessera as a user would, and runs it on tiny data: installs
# BUILD_DIR into a fresh prefix under BUILD_DIR/example-test, configures and builds the example
# with find_package(tessera) there (one translation unit, no precompiled header), runs its three
# trainings (conventional, PNN, SDP), checks that each wrote its summary and checkpoint, and that a
# second run prints the same accuracies. Prints how long each step took. Run by ctest as
# ExampleProject.
# usage: scripts/test-example.sh BUILD_DIR [TRAIN_SAMPLES]
set -euo pipefail
build=$(cd "${1:?usage: test-example.sh BUILD_DIR [TRAIN_SAMPLES]}" && pwd)
samples=${2:-512}
source_dir=$(cd "$(dirname "$0")/.." && pwd)
work="$build/example-test"
rm -rf "$work"
mkdir -p "$work"

start=$SECONDS
cmake --install "$build" --prefix "$work/prefix" >"$work/install.log"
echo "example-test: installed into $work/prefix in $((SECONDS - start)) s"

start=$SECONDS
cmake -S "$source_dir/examples" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/configure.log"
cmake --build "$work/build"
echo "example-test: configured and built the example in $((SECONDS - start)) s"

start=$SECONDS
"$work/build/own_network" "$samples" "$work/runs" | tee "$work/run.log"
echo "example-test: ran its three trainings in $((SECONDS - start)) s"
for method in conventional pnn sdp; do
  for file in summary.json checkpoint.pt; do
    [ -s "$work/runs/$method/$file" ] || { echo "example-test: no $method/$file" >&2; exit 1; }
  done
done
grep -q "^conventional: test accuracy" "$work/run.log"
grep -q "^pnn: joined" "$work/run.log"
grep -q "^sdp on 2 workers: test accuracy" "$work/run.log"
# Deterministic by seed: a second run prints the same accuracies.
"$work/build/own_network" "$samples" "$work/runs-again" >"$work/run-again.log" 2>/dev/null
diff <(grep -E "^(conventional|pnn|sdp on)" "$work/run.log") \
  <(grep -E "^(conventional|pnn|sdp on)" "$work/run-again.log")
echo "example-test: OK"
