#!/usr/bin/env bash
# SDP against DDP on the same data, seed and workers: one table row per run with the assembled
# model's test accuracy, worker 0's subnetwork alone (forward masking) or rank 0's model before
# its batch-norm statistics are re-estimated (backward), the ensemble of the workers' subnetworks
# (forward masking: mean of their predicted distributions, "-" otherwise), the largest per-worker
# peak tensor memory, bytes each worker sent per step, samples/s (all workers) and wall time.
#
#   bench/sdp-compare.sh OUT_DIR [resnet|mlp|vit]
#
# Settings come from the environment: WORKERS (4), EPOCHS (3, DDP's and the iteration-matched
# runs'; FLOP-matched SDP runs get EPOCHS / C), LIMIT_TRAIN (20000 samples, 0: all), COVERAGES
# ("0.75 0.5"), MASKINGS ("forward backward"), SYNC (grads), DEPTH (resnet 20, vit 4), SEED (1),
# SCHEDULE (the learning-rate schedule of every run: constant, or cosine over each run's epochs),
# LR (every run's peak learning rate, default tessera's 1e-3), SDP_LR (the SDP rows' only),
# TESSERA (the binary, build/tessera), ONLY (a regex: run only the matching runs), REDRAWS
# ("0"; e.g. "0 1 s20": forward-masked runs also with --sdp-redraw-epochs 1 and with
# --sdp-redraw-steps 20, rows named -redraw1 and -redraws20).
# Writes OUT_DIR/<family>-report.html (tessera report on every run) and prints its path.
# Needs jq.
# Slow: minutes per run on 2 cores; not part of the tests.
set -euo pipefail
out=${1:?usage: bench/sdp-compare.sh OUT_DIR [resnet|mlp|vit]}
family=${2:-resnet}
workers=${WORKERS:-4}
epochs=${EPOCHS:-3}
limit=${LIMIT_TRAIN:-20000}
coverages=${COVERAGES:-0.75 0.5}
sync=${SYNC:-grads}
maskings=${MASKINGS:-forward backward}
redraws=${REDRAWS:-0}
command -v jq >/dev/null || { echo "sdp-compare: needs jq (apt-get install jq)" >&2; exit 2; }
tessera=${TESSERA:-"$(cd "$(dirname "$0")/.." && pwd)/build/tessera"}
[ -x "$tessera" ] || { echo "sdp-compare: build first ($tessera missing)" >&2; exit 2; }

case $family in
  resnet) model="--model resnet --depth ${DEPTH:-20} --width 0.5"; level=block ;;
  mlp) model="--model mlp"; level=neuron ;;
  vit) model="--model vit --depth ${DEPTH:-4} --embed-dim 64 --heads 4 --mlp-dim 128 --patch-size 7"
    level=block ;;
  *) echo "sdp-compare: unknown family '$family' (resnet, mlp, vit)" >&2; exit 2 ;;
esac
lr=${LR:-0.001}
sdp_lr=${SDP_LR:-$lr}
common="$model --limit-train $limit --batch-size 64 --eval-batch-size 64 --threads 1 --seed ${SEED:-1} --schedule ${SCHEDULE:-constant} --quiet"
mkdir -p "$out"
rows="$out/$family.tsv"
dirs=()  # the run directories, for the report
printf "run\tepochs\ttest_acc\tsubnet_acc\tensemble_acc\tpeak_MiB_max_worker\tbytes_per_step_per_worker\tsamples_per_s\twall_s\n" >"$rows"

run() {  # name epochs extra-args...
  local name=$1 ep=$2
  shift 2
  if [ -n "${ONLY:-}" ] && ! [[ $name =~ $ONLY ]]; then return 0; fi
  local dir="$out/$family-$name"
  rm -rf "$dir"
  local start=$SECONDS
  "$tessera" launch -n "$workers" -- "$tessera" train $common --epochs "$ep" --run-dir "$dir" "$@" \
    >"$dir.log" 2>&1 || { echo "sdp-compare: $name failed, see $dir.log" >&2; exit 1; }
  jq -r --arg name "$name" --arg ep "$ep" --arg wall "$((SECONDS - start))" --arg w "$workers" '
    [$name, $ep, (.test_accuracy * 100 | . * 100 | round / 100),
     ((.sdp.worker0_subnet_test_accuracy // .sdp.worker0_own_bn_test_accuracy // null)
      | if . == null then "-" else (. * 10000 | round / 100) end),
     ((.sdp.subnet_ensemble_test_accuracy // null)
      | if . == null then "-" else (. * 10000 | round / 100) end),
     ([.ranks[].peak_tensor_bytes] | max / 1048576 | . * 10 | round / 10),
     (.comm_bytes_per_step / ($w | tonumber) | round),
     (.total_samples_per_second | round), $wall] | @tsv' "$dir/summary.json" >>"$rows"
  dirs+=("$dir")
  tail -1 "$rows"
}

run ddp "$epochs" --dist ddp --lr "$lr"
# Baselines at SDP's keep rate C: every worker holds the whole model but drops a fraction 1 - C
# of the same units at random in every step (stochastic depth on branches, dropout on neurons).
for c in $coverages; do
  drop=$(awk -v c="$c" 'BEGIN { printf "%g", 1 - c }')
  if [ "$level" = block ]; then
    run "ddp-drop-path-$drop" "$epochs" --dist ddp --drop-path "$drop" --lr "$lr"
  else
    run "ddp-dropout-$drop" "$epochs" --dist ddp --dropout "$drop" --lr "$lr"
  fi
done
for c in $coverages; do
  flop_epochs=$(awk -v e="$epochs" -v c="$c" 'BEGIN { printf "%d", e / c + 0.5 }')
  for masking in $maskings; do
    sdp="--dist sdp --sdp-level $level --coverage $c --sdp-masking $masking --sdp-sync $sync --lr $sdp_lr"
    for redraw in $redraws; do
      # A backward-masked worker has every unit already: nothing to redraw.
      if [ "$redraw" != 0 ] && [ "$masking" = backward ]; then continue; fi
      local_sdp="$sdp"
      suffix=""
      case $redraw in
        0) ;;
        s*) local_sdp="$sdp --sdp-redraw-steps ${redraw#s}"; suffix="-redraw$redraw" ;;
        *) local_sdp="$sdp --sdp-redraw-epochs $redraw"; suffix="-redraw$redraw" ;;
      esac
      run "sdp-$level-$masking-c$c-iter$suffix" "$epochs" $local_sdp
      run "sdp-$level-$masking-c$c-flop$suffix" "$flop_epochs" $local_sdp
      # Rescaling corrects the assembled model for branches trained apart; a backward-masked
      # worker trains with every branch in its forward, so there is nothing to correct.
      if [ "$masking" = forward ]; then
        run "sdp-$level-$masking-c$c-flop-rescale$suffix" "$flop_epochs" $local_sdp --sdp-rescale
      fi
    done
  done
done
column -t -s $'\t' "$rows"
if [ ${#dirs[@]} -gt 0 ]; then
  "$tessera" report "${dirs[@]}" --out "$out/$family-report.html"
fi
