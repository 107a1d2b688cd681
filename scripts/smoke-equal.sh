#!/usr/bin/env bash
# Small runs of every method, for checking that a change of structure leaves the numbers alone:
#   scripts/smoke-equal.sh BINARY OUT     writes OUT/<run>/summary.json and OUT/figures.txt
# then `diff A/figures.txt B/figures.txt` between two binaries. figures.txt holds every field of
# each summary.json except times, rates, RSS (which depend on the machine's load) and paths, so
# accuracy, peak tensor bytes and communicated bytes must agree to the last digit. FIGURES_ONLY=1
# only re-reads the summaries already in OUT. About 12 minutes on 2 loaded cores.
set -euo pipefail
binary=$(realpath "$1")
out=$2
mkdir -p "$out"
common="--epochs 1 --limit-train 2000 --limit-test 2000 --threads 1 --seed 1 --quiet"
mlp_sdp="--dist sdp --sdp-level neuron --coverage 0.5 $common --limit-train 4000"
resnet="--model resnet --depth 8 --width 0.25 --limit-train 800 --limit-test 500 --threads 1 --seed 1 --quiet"

run() {  # name, command...
  [ -n "${FIGURES_ONLY:-}" ] && return
  local name=$1
  shift
  rm -rf "${out:?}/$name"
  echo "== $name: $*" >&2
  "$@" > "$out/$name.log" 2>&1 || { cat "$out/$name.log" >&2; exit 1; }
}

run mlp "$binary" train $common --run-dir "$out/mlp"
run pnn "$binary" pnn --compare --pnn-schedule sequential,parallel $common --run-dir "$out/pnn"
run ddp "$binary" launch -n 2 -- "$binary" train --dist ddp $common --run-dir "$out/ddp"
run pipeline "$binary" launch -n 2 -- "$binary" train --dist pipeline $common --run-dir "$out/pipeline"
run sdp-one "$binary" launch -n 4 -- "$binary" train $mlp_sdp --run-dir "$out/sdp-one"
run sdp-steps "$binary" launch -n 4 -- "$binary" train $mlp_sdp --sdp-redraw-steps 5 \
  --run-dir "$out/sdp-steps"
run sdp-epochs "$binary" launch -n 4 -- "$binary" train $mlp_sdp --epochs 2 --sdp-redraw-epochs 1 \
  --run-dir "$out/sdp-epochs"
run sdp-backward "$binary" launch -n 4 -- "$binary" train $mlp_sdp --sdp-masking backward \
  --run-dir "$out/sdp-backward"
run sdp-resnet "$binary" launch -n 4 -- "$binary" train --dist sdp --sdp-level block \
  --coverage 0.5 --epochs 2 --sdp-redraw-epochs 1 --sdp-rescale $resnet --run-dir "$out/sdp-resnet"
run sdp-resnet-backward "$binary" launch -n 4 -- "$binary" train --dist sdp --sdp-level block \
  --coverage 0.5 --epochs 1 --sdp-masking backward $resnet --run-dir "$out/sdp-resnet-backward"

# Every field but the load-dependent ones, one "run path = value" line each.
for dir in "$out"/*/; do
  name=$(basename "$dir")
  jq -r --arg run "$name" '
    paths(scalars) as $p
    | select(($p | map(tostring) | join(".")) | test("second|rss|wall|exposed|\\.checkpoint$") | not)
    | "\($run) \($p | map(tostring) | join(".")) = \(getpath($p))"' "$dir/summary.json"
done > "$out/figures.txt"
# The headline figures, for a report.
for dir in "$out"/*/; do
  name=$(basename "$dir")
  jq -r --arg run "$name" '
    if .ranks then "\($run): test acc \(.test_accuracy)  peak/rank \([.ranks[].peak_tensor_bytes])  comm/rank \([.ranks[].comm_bytes])"
    elif .comparison then "\($run): " + ([.comparison[] | "\(.run) acc \(.test_accuracy) peak \(.peak_tensor_bytes) comm \(.comm_bytes)"] | join("; "))
    else "\($run): test acc \(.test_accuracy)  peak \(.peak_tensor_bytes)  comm \(.comm_bytes)" end' \
    "$dir/summary.json"
done > "$out/headline.txt"
cat "$out/headline.txt"
