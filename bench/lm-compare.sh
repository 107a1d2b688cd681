#!/usr/bin/env bash
# The language-model comparison of issue #14 on one host: the default LLaMA-style model on the
# fortunes text trained conventionally, with DDP over WORKERS workers, with SDP over the same
# workers at coverage C (block and neuron level, forward and backward masking, iteration-matched =
# DDP's epochs and FLOP-matched = DDP's epochs / C), and with PNN (PARTITIONS partitions,
# sequential and parallel, on the conventional run's epochs plus its recovery epochs). One row
# per run: validation bits per byte and loss, training FLOPs per worker (analytic, attention's
# T^2 term included; rank 0's for DDP and SDP, all partitions' and the recovery's for PNN), the
# largest worker's (or partition's) peak tensor memory, and the largest worker's peak while
# training alone (without the evaluations during training: for DDP and SDP rank 0 evaluates the
# whole model; "-" where the summary does not split it), bytes each worker sent per step (PNN:
# its handover bytes in all), tokens/s (all workers) and wall seconds.
#
#   bench/lm-compare.sh OUT_DIR
#
# Settings come from the environment: WORKERS (4), COVERAGE (0.5), EPOCHS (1), LIMIT_TRAIN
# (windows per epoch, 0: all), SEQ_LEN (128), BATCH (8: windows per step and data-parallel
# worker; conventional training and PNN get WORKERS x BATCH, the same global batch), EVAL_BATCH
# (windows per evaluation batch, BATCH: larger batches make the evaluation, not training, set a
# worker's peak; the losses do not depend on it), PRECISION
# (fp32; bf16 where the CPU has it), SCHEDULE (cosine, for every run alike), PARTITIONS (2),
# RECOVERY_EPOCHS (1), SEED (1), TESSERA (the binary, build/tessera), ONLY (a regex: run only
# the matching rows). Every data-parallel worker runs on 1 thread, each PNN-parallel partition
# on its share of the cores, conventional training and PNN sequential on all of them.
# Writes OUT_DIR/llama.tsv and OUT_DIR/llama-report.html (tessera report on every run: loss
# against training FLOPs).
# Needs jq. Slow: about 30 minutes with the defaults on 2 cores; not part of the tests.
set -euo pipefail
out=${1:?usage: bench/lm-compare.sh OUT_DIR}
workers=${WORKERS:-4}
coverage=${COVERAGE:-0.5}
epochs=${EPOCHS:-1}
seq_len=${SEQ_LEN:-128}
batch=${BATCH:-8}
command -v jq >/dev/null || { echo "lm-compare: needs jq (apt-get install jq)" >&2; exit 2; }
tessera=${TESSERA:-"$(cd "$(dirname "$0")/.." && pwd)/build/tessera"}
[ -x "$tessera" ] || { echo "lm-compare: build first ($tessera missing)" >&2; exit 2; }
common="--model llama --seq-len $seq_len --limit-train ${LIMIT_TRAIN:-0}
  --eval-batch-size ${EVAL_BATCH:-$batch} --precision ${PRECISION:-fp32}
  --schedule ${SCHEDULE:-cosine} --seed ${SEED:-1} --quiet"
mkdir -p "$out"
rows="$out/llama.tsv"
dirs=()  # the run directories, for the report
printf "run\tepochs\tval_bpb\tval_loss\tflops_per_worker\tpeak_MiB_max_worker\ttrain_peak_MiB_max_worker\tbytes_per_step_per_worker\ttokens_per_s\twall_s\n" >"$rows"

wanted() { [ -z "${ONLY:-}" ] || [[ $1 =~ $ONLY ]]; }

# One row from a summary.json: conventional and distributed runs (tessera train) or PNN.
add_row() {  # name epochs summary wall workers
  jq -r --arg name "$1" --arg ep "$2" --arg wall "$4" --arg w "$5" --arg t "$seq_len" '
    def r(n): . * n | round / n;
    [$name, $ep, (.test_bits_per_byte | r(1000)), (.test_loss | r(10000)),
     (.train_flops | tostring),
     ((if .ranks then [.ranks[].peak_tensor_bytes] | max
       else (.max_partition_peak_tensor_bytes // .peak_tensor_bytes) end) / 1048576 | r(10)),
     (if .ranks then ([.ranks[].train_peak_tensor_bytes // empty] | max)
      else .train_peak_tensor_bytes end | if . then . / 1048576 | r(10) else "-" end),
     (if .comm_bytes_per_step then (.comm_bytes_per_step / ($w | tonumber) | round)
      elif .handover_bytes then "\(.handover_bytes) in all" else 0 end),
     (if .total_samples_per_second then (.total_samples_per_second * ($t | tonumber) | round)
      elif .tokens_per_second then (.tokens_per_second | round) else "-" end),
     $wall] | @tsv' "$3" >>"$rows"
  tail -1 "$rows"
}

train() {  # name epochs launch-workers extra-args...
  local name=$1 ep=$2 n=$3
  shift 3
  wanted "$name" || return 0
  local dir="$out/$name" start=$SECONDS
  rm -rf "$dir"
  local cmd=("$tessera" train $common --epochs "$ep" --run-dir "$dir")
  if [ "$n" -gt 1 ]; then
    cmd=("$tessera" launch -n "$n" -- "${cmd[@]}" --threads 1 --batch-size "$batch" "$@")
  else
    cmd+=(--threads "$(nproc)" --batch-size $((workers * batch)) "$@")
  fi
  "${cmd[@]}" >"$dir.log" 2>&1 || { echo "lm-compare: $name failed, see $dir.log" >&2; exit 1; }
  add_row "$name" "$ep" "$dir/summary.json" "$((SECONDS - start))" "$n"
  dirs+=("$dir")
}

train conventional "$epochs" 1
train ddp "$epochs" "$workers" --dist ddp
flop_epochs=$(awk -v e="$epochs" -v c="$coverage" 'BEGIN { printf "%d", e / c + 0.5 }')
for level in block neuron; do
  for masking in forward backward; do
    sdp="--dist sdp --sdp-level $level --coverage $coverage --sdp-masking $masking"
    train "sdp-$level-$masking-c$coverage-iter" "$epochs" "$workers" $sdp
    train "sdp-$level-$masking-c$coverage-flop" "$flop_epochs" "$workers" $sdp
  done
done
if wanted pnn; then
  dir="$out/pnn"
  start=$SECONDS
  rm -rf "$dir"
  # --threads 0: the sequential schedule takes every core, each parallel partition its share.
  "$tessera" pnn $common --threads 0 --batch-size $((workers * batch)) \
    --partitions "${PARTITIONS:-2}" --epochs "$epochs" --recovery-epochs "${RECOVERY_EPOCHS:-1}" \
    --pnn-schedule sequential,parallel --run-dir "$dir" >"$dir.log" 2>&1 ||
    { echo "lm-compare: pnn failed, see $dir.log" >&2; exit 1; }
  # Both schedules ran in one command: the wall time of each is its own summary's.
  for schedule in sequential parallel; do
    add_row "pnn-$schedule" "$epochs+${RECOVERY_EPOCHS:-1}" "$dir/$schedule/summary.json" \
      "$(jq -r '.wall_seconds | round' "$dir/$schedule/summary.json")" 1
    dirs+=("$dir/$schedule")
  done
fi
column -t -s $'\t' "$rows"
if [ ${#dirs[@]} -gt 0 ]; then
  "$tessera" report "${dirs[@]}" --out "$out/llama-report.html"
fi
