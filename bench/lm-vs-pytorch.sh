#!/usr/bin/env bash
# Tokens/s of tessera's default language model (`tessera train --model llama`) against the same
# model, optimizer, schedule and data pipeline in PyTorch-Python (bench/lm_peer.py on Debian's
# python3-torch, the same libtorch 1.13.1), alternating, in one run (issue #14: tessera at least
# as fast). Round r runs both for STEPS training steps on THREADS threads, tessera first in odd
# rounds and the peer first in even ones; each side's tokens/s counts its training steps only
# (tessera: summary.json tokens_per_second, the epoch's training time without evaluation; the
# peer: its step loop), both including their first step.
#
#   bench/lm-vs-pytorch.sh [OUT_DIR]
#
# Settings come from the environment: ROUNDS (3), STEPS (200; tessera gets --limit-train
# STEPS x BATCH windows, one epoch), SEQ_LEN (64) and BATCH (64) (tessera's defaults; both
# sides get them), THREADS (nproc), SEED (1), TESSERA (the binary, build/tessera), PYTHON
# (/usr/bin/python3, which must import torch: apt-get install python3-torch). OUT_DIR (default:
# a new temporary directory) keeps the logs and run directories.
# Writes OUT_DIR/report.html (tessera report on tessera's runs) and prints its path.
# Slow: about a minute per side and round for 200 steps on 2 cores; run it on a quiet machine.
set -euo pipefail
rounds=${ROUNDS:-3}
steps=${STEPS:-200}
threads=${THREADS:-$(nproc)}
seed=${SEED:-1}
seq_len=${SEQ_LEN:-64}
batch=${BATCH:-64}
root="$(cd "$(dirname "$0")/.." && pwd)"
tessera=${TESSERA:-"$root/build/tessera"}
python=${PYTHON:-/usr/bin/python3}
out=${1:-$(mktemp -d /tmp/lm-vs-pytorch.XXXXXX)}
[ -x "$tessera" ] || { echo "lm-vs-pytorch: build first ($tessera missing)" >&2; exit 2; }
"$python" -c 'import torch' 2>/dev/null ||
  { echo "lm-vs-pytorch: $python cannot import torch (apt-get install python3-torch)" >&2; exit 2; }
mkdir -p "$out"

json_field() {  # file field
  if command -v jq >/dev/null; then
    jq -r ".$2" "$1"
  else
    "$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
  fi
}

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
if grep -qw avx512_bf16 /proc/cpuinfo; then bf16=yes; else bf16=no; fi
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "cpu: $cpu ($(nproc) cores visible); avx512_bf16: $bf16"
echo "flags: $(lscpu | sed -n 's/^Flags: *//p')"
echo "tessera: $tessera ($(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "peer: $python, torch $("$python" -c 'import torch; print(torch.__version__)')"
echo "setting: $steps steps of $batch x $seq_len tokens, $threads threads, seed $seed, $rounds rounds"
echo "logs: $out"

run_tessera() {  # round -> tokens/s
  local dir="$out/tessera-$1"
  rm -rf "$dir"
  "$tessera" train --model llama --epochs 1 --limit-train $((steps * batch)) --limit-test 64 \
    --seq-len "$seq_len" --batch-size "$batch" --threads "$threads" --seed "$seed" --quiet \
    --run-dir "$dir" >"$dir.log" 2>&1 ||
    { echo "lm-vs-pytorch: tessera failed, see $dir.log" >&2; exit 1; }
  [ "$(json_field "$dir/summary.json" steps)" = "$steps" ] ||
    { echo "lm-vs-pytorch: tessera did not take $steps steps, see $dir" >&2; exit 1; }
  json_field "$dir/summary.json" tokens_per_second
}

run_peer() {  # round -> tokens/s
  local log="$out/peer-$1.log"
  "$python" "$root/bench/lm_peer.py" --steps "$steps" --threads "$threads" --seed "$seed" \
    --seq-len "$seq_len" --batch-size "$batch" \
    >"$log" 2>&1 || { echo "lm-vs-pytorch: the peer failed, see $log" >&2; exit 1; }
  sed -n 's/^tokens_per_second //p' "$log"
}

printf "round\ttessera_tok_s\tpytorch_tok_s\ttessera/pytorch\n" | tee "$out/rounds.tsv"
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) = 1 ]; then
    t=$(run_tessera "$round"); p=$(run_peer "$round")
  else
    p=$(run_peer "$round"); t=$(run_tessera "$round")
  fi
  awk -v r="$round" -v t="$t" -v p="$p" 'BEGIN { printf "%d\t%.0f\t%.0f\t%.3f\n", r, t, p, t / p }' |
    tee -a "$out/rounds.tsv"
done
# The median round's ratio (rounds sorted by ratio).
tail -n +2 "$out/rounds.tsv" | sort -t$'\t' -k4,4g |
  awk -F'\t' '{ r[NR] = $4 } END { printf "median ratio tessera/pytorch: %s\n", r[int((NR + 1) / 2)] }'
# tessera's runs side by side (bits per byte against samples, time, ...).
tessera_dirs=()
for round in $(seq 1 "$rounds"); do tessera_dirs+=("$out/tessera-$round"); done
"$tessera" report "${tessera_dirs[@]}" --out "$out/report.html"
