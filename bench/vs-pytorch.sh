#!/usr/bin/env bash
# Training throughput of tessera against equivalent PyTorch-Python models (bench/zoo_peer.py for
# the MLP, resnet-20 and the ViT, bench/lm_peer.py for the language model; Debian's
# python3-torch, the same libtorch 1.13.1), in fp32 and in bf16 (tessera --precision bf16, the
# peer under torch.autocast("cpu", torch.bfloat16)), under both OpenMP wait policies, alternating
# in one run (issue #16). Round r runs both sides for STEPS training steps on THREADS threads,
# tessera first in odd rounds and the peer first in even ones. Each side counts its training steps
# only (tessera: summary.json samples_per_second / tokens_per_second, the epoch without
# evaluation; the peer: its step loop), both including their first step. The data are random
# samples of the models' input shape (tessera --data synthetic) and, for the language model,
# Debian's fortunes.
#
#   bench/vs-pytorch.sh [OUT_DIR]
#
# Settings from the environment: MODELS ("mlp resnet vit llama"), PRECISIONS ("fp32 bf16"),
# POLICIES ("ACTIVE PASSIVE"), ROUNDS (3), STEPS (200), THREADS (nproc), SEED (1), TESSERA
# (build/tessera), PYTHON (/usr/bin/python3 with torch). bf16 is skipped, with a note, on a CPU
# without avx512_bf16/amx_bf16. OUT_DIR (default: a new temporary directory) keeps the logs.
# Slow (the defaults take about an hour on 2 cores); run it on a quiet machine. Smoke test:
#   STEPS=5 ROUNDS=1 bench/vs-pytorch.sh
set -euo pipefail
models=${MODELS:-"mlp resnet vit llama"}
precisions=${PRECISIONS:-"fp32 bf16"}
policies=${POLICIES:-"ACTIVE PASSIVE"}
rounds=${ROUNDS:-3}
steps=${STEPS:-200}
# The default LM's window and batch, given to both sides so that they stay equal.
lm_seq_len=64
lm_batch=64
threads=${THREADS:-$(nproc)}
seed=${SEED:-1}
root="$(cd "$(dirname "$0")/.." && pwd)"
tessera=${TESSERA:-"$root/build/tessera"}
python=${PYTHON:-/usr/bin/python3}
out=${1:-$(mktemp -d /tmp/vs-pytorch.XXXXXX)}
[ -x "$tessera" ] || { echo "vs-pytorch: build first ($tessera missing)" >&2; exit 2; }
"$python" -c 'import torch' 2>/dev/null ||
  { echo "vs-pytorch: $python cannot import torch (apt-get install python3-torch)" >&2; exit 2; }
mkdir -p "$out"

json_field() {  # file field
  "$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

if grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo; then bf16=yes; else bf16=no; fi
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1) ($(nproc) cores visible); native bf16: $bf16"
echo "tessera: $tessera ($(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "peer: $python, torch $("$python" -c 'import torch; print(torch.__version__)')"
echo "setting: $steps steps, $threads threads, seed $seed, $rounds rounds; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
# Which kernels OpenBLAS picked for this CPU (it prints "Core: ..." when verbose): both sides'
# fp32 BLAS products depend on it, and an unrecognised CPU model falls back to old SSE3 kernels.
echo "OpenBLAS core: $(OPENBLAS_VERBOSE=2 "$python" -c 'import torch' 2>&1 | sed -n 's/^Core: //p' | head -1)"
echo "tessera's product kernels: $("$tessera" info | sed -n 's/^matmul *//p')"
echo "logs: $out"

# The model's flags for each side: tessera's, the peer's, the batch size.
tessera_model() {
  case $1 in
    mlp) echo "--model mlp --synthetic-shape 1,28,28" ;;
    resnet) echo "--model resnet --depth 20 --width 0.5 --synthetic-shape 3,32,32" ;;
    vit) echo "--model vit --synthetic-shape 1,28,28" ;;
  esac
}
peer_model() {
  case $1 in
    mlp) echo "--model mlp --shape 1,28,28" ;;
    resnet) echo "--model resnet --depth 20 --width 0.5 --shape 3,32,32" ;;
    vit) echo "--model vit --shape 1,28,28" ;;
  esac
}

run_tessera() {  # model precision policy round -> samples/s (tokens/s for llama)
  local dir="$out/tessera-$1-$2-$3-$4" field=samples_per_second
  rm -rf "$dir"
  if [ "$1" = llama ]; then
    field=tokens_per_second
    set -- "$@" --model llama --epochs 1 --limit-train $((steps * lm_batch)) --limit-test 64 \
      --seq-len "$lm_seq_len" --batch-size "$lm_batch"
  else
    # shellcheck disable=SC2046
    set -- "$@" $(tessera_model "$1") --data synthetic --synthetic-train $((steps * 128)) \
      --synthetic-test 128 --synthetic-classes 10 --batch-size 128 --optimizer adam --lr 1e-3 \
      --epochs 1
  fi
  OMP_WAIT_POLICY=$3 "$tessera" train "${@:5}" --precision "$2" --threads "$threads" \
    --seed "$seed" --quiet --run-dir "$dir" >"$dir.log" 2>&1 ||
    { echo "vs-pytorch: tessera failed, see $dir.log" >&2; exit 1; }
  [ "$(json_field "$dir/summary.json" steps)" = "$steps" ] ||
    { echo "vs-pytorch: tessera did not take $steps steps, see $dir" >&2; exit 1; }
  json_field "$dir/summary.json" "$field"
}

run_peer() {  # model precision policy round -> samples/s (tokens/s for llama)
  local log="$out/peer-$1-$2-$3-$4.log"
  if [ "$1" = llama ]; then
    OMP_WAIT_POLICY=$3 "$python" "$root/bench/lm_peer.py" --steps "$steps" --threads "$threads" \
      --seed "$seed" --precision "$2" --seq-len "$lm_seq_len" \
      --batch-size "$lm_batch" >"$log" 2>&1 ||
      { echo "vs-pytorch: the peer failed, see $log" >&2; exit 1; }
    sed -n 's/^tokens_per_second //p' "$log"
  else
    # shellcheck disable=SC2046
    OMP_WAIT_POLICY=$3 "$python" "$root/bench/zoo_peer.py" $(peer_model "$1") --steps "$steps" \
      --threads "$threads" --seed "$seed" --precision "$2" >"$log" 2>&1 ||
      { echo "vs-pytorch: the peer failed, see $log" >&2; exit 1; }
    sed -n 's/^samples_per_second //p' "$log"
  fi
}

printf "model\tprecision\tpolicy\tround\ttessera\tpytorch\ttessera/pytorch\n" | tee "$out/rounds.tsv"
for model in $models; do
  for precision in $precisions; do
    if [ "$precision" = bf16 ] && [ "$bf16" = no ]; then
      echo "vs-pytorch: skipping bf16: this CPU has no native bf16" >&2
      continue
    fi
    for policy in $policies; do
      for round in $(seq 1 "$rounds"); do
        if [ $((round % 2)) = 1 ]; then
          t=$(run_tessera "$model" "$precision" "$policy" "$round")
          p=$(run_peer "$model" "$precision" "$policy" "$round")
        else
          p=$(run_peer "$model" "$precision" "$policy" "$round")
          t=$(run_tessera "$model" "$precision" "$policy" "$round")
        fi
        awk -v m="$model" -v pr="$precision" -v po="$policy" -v r="$round" -v t="$t" -v p="$p" \
          'BEGIN { printf "%s\t%s\t%s\t%d\t%.0f\t%.0f\t%.3f\n", m, pr, po, r, t, p, t / p }' |
          tee -a "$out/rounds.tsv"
      done
    done
  done
done
# The median round's ratio of every setting (its rounds sorted by ratio).
echo
echo "median ratio tessera/pytorch (samples/s; tokens/s for llama):"
tail -n +2 "$out/rounds.tsv" | sort -t$'\t' -k1,3 -k7,7g |
  awk -F'\t' '{ key = $1 " " $2 " " $3; n[key]++; r[key, n[key]] = $7; order[key] = ++seen }
    END { for (k in n) printf "%s\t%s\n", k, r[k, int((n[k] + 1) / 2)] }' | sort
