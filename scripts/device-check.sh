#!/usr/bin/env bash
# The CUDA check, run on a machine with a GPU and a CUDA build of PyTorch (see docs/results.md):
# builds tessera against the libtorch inside that PyTorch, then trains, evaluates and runs PNN on
# the GPU. Header-only dependencies and the data set travel in DEPS (see the README's GPU note).
# Usage: bash scripts/device-check.sh OUT_DIR [DEPS]; CHECKS=dist runs only the distributed ones,
# CHECKS=precision only the mixed-precision ones (fp32 / bf16 / fp16 on every family, the language
# model against its PyTorch peer; scripts/device-deps.sh makes DEPS).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: device-check.sh OUT_DIR [DEPS]}
deps=$(realpath "${2:-.devdeps}")
mkdir -p "$out"
log="$out/log.txt"
say() { echo "== $*" | tee -a "$log"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$log"
torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' | tee -a "$log"
zlib=$(ls /usr/lib/x86_64-linux-gnu/libz.so* /lib/x86_64-linux-gnu/libz.so* 2>/dev/null | head -1)

build() {  # $1: the C++ standard
  rm -f build-cuda/CMakeCache.txt
  cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_STANDARD="$1" \
    -DTESSERA_BUILD_TESTS=OFF -DTESSERA_BUILD_BENCH=OFF -DTESSERA_WERROR=ON \
    -DCMAKE_CXX_FLAGS="-Wno-array-bounds -Wno-stringop-overflow" \
    "-DCMAKE_PREFIX_PATH=$torch_prefix;$deps/usr" -DZLIB_INCLUDE_DIR="$deps/usr/include" \
    -DZLIB_LIBRARY="$zlib" >"$out/cmake.log" 2>&1 || { tail -30 "$out/cmake.log"; return 1; }
  ninja -C build-cuda -k 0 tessera >"$out/build.log" 2>&1
}
# C++20, with two warnings off: the machine's GCC 13 gives false array-bounds and stringop-overflow
# warnings inside libtorch 2.11's own headers (std::vector<bool> in torch::autograd::Function);
# with those off the build had no warning at all (2026-12-04).
say "build (C++20)"
SECONDS=0
build 20 || { grep -E 'error' -A4 "$out/build.log" | head -120 | tee -a "$log"; exit 1; }
say "built in $SECONDS s"

tessera=./build-cuda/tessera
data=(--data fashion-mnist --data-dir "$deps/data/fashion-mnist")
run() { say "$*"; SECONDS=0; "$@" 2>&1 | grep -v '^\[partition' | tail -15 | tee -a "$log"; say "rc ${PIPESTATUS[0]} in $SECONDS s"; }
run $tessera info
# summary.json's figures of a run directory, one line.
figures() {
  python3 - "$1" <<'PY' | tee -a "$log"
import json, sys
d = json.load(open(sys.argv[1] + "/summary.json"))
keys = ("precision", "test_accuracy", "test_bits_per_byte", "samples_per_second",
        "tokens_per_second", "train_seconds", "loss_scale", "peak_tensor_bytes")
print(sys.argv[1], {k: d[k] for k in keys if k in d})
PY
}
if [ "${CHECKS:-all}" = precision ]; then
  text=(--model llama --data text --data-path "$deps/data/fortunes")
  # The default MLP for 10 epochs (issue 16: bf16 within 0.3 points of fp32), then the language
  # model's default run, then tessera and its PyTorch peer alternated (500 steps of batch 64).
  for p in fp32 bf16 fp16; do
    run $tessera train "${data[@]}" --device cuda --precision $p --epochs 10 --quiet \
      --run-dir /tmp/mlp10-$p
    figures /tmp/mlp10-$p
  done
  for p in fp32 bf16 fp16; do
    run $tessera train "${text[@]}" --device cuda --precision $p --quiet --run-dir /tmp/lm-$p
    figures /tmp/lm-$p
  done
  for p in fp32 bf16 fp16; do
    run $tessera train "${text[@]}" --device cuda --precision $p --epochs 1 --limit-train 32000 \
      --quiet --run-dir /tmp/lm-steps-$p
    figures /tmp/lm-steps-$p
    run python3 bench/lm_peer.py --device cuda --precision $p --steps 500 \
      --corpus "$deps/data/fortunes"
  done
  run $tessera train "${data[@]}" --device cuda --model resnet --depth 20 --width 0.5 \
    --precision fp16 --epochs 1 --quiet --run-dir /tmp/resnet-fp16
  figures /tmp/resnet-fp16
  run $tessera train "${data[@]}" --device cuda --model vit --depth 4 --precision fp16 \
    --epochs 1 --quiet --run-dir /tmp/vit-fp16
  figures /tmp/vit-fp16
  run $tessera pnn "${data[@]}" --device cuda --precision fp16 --epochs 2 --quiet \
    --run-dir /tmp/pnn-fp16
  run $tessera launch -n 1 -- $tessera train "${data[@]}" --device cuda --dist ddp \
    --precision fp16 --epochs 1 --quiet --run-dir /tmp/ddp-fp16
  figures /tmp/ddp-fp16
  run $tessera launch -n 1 -- $tessera train "${data[@]}" --device cuda --dist sdp --coverage 1 \
    --model resnet --depth 20 --width 0.5 --precision fp16 --epochs 1 --quiet \
    --run-dir /tmp/sdp-fp16
  figures /tmp/sdp-fp16
  exit 0
fi
if [ "${CHECKS:-all}" = all ]; then
  run $tessera train "${data[@]}" --device cuda --epochs 2 --schedule cosine --quiet --run-dir /tmp/mlp
  run $tessera eval "${data[@]}" --device cuda --checkpoint /tmp/mlp/checkpoint.pt
  run $tessera train "${data[@]}" --device cpu --threads 16 --epochs 1 --quiet --run-dir /tmp/mlp-cpu
  run $tessera pnn "${data[@]}" --device cuda --compare --pnn-schedule sequential,parallel \
    --schedule cosine --epochs 2 --evals-per-epoch 2 --quiet --run-dir /tmp/pnn
  run $tessera train "${data[@]}" --device cuda --model resnet --depth 20 --width 0.5 --optimizer sgd \
    --lr 0.1 --epochs 1 --quiet --run-dir /tmp/resnet
  run $tessera pnn "${data[@]}" --device cuda --model vit --depth 4 --partitions 2 --epochs 1 \
    --quiet --run-dir /tmp/vit
fi
# NCCL: one worker per GPU, so one worker here; the bookkeeping collectives use CPU tensors.
run $tessera train "${data[@]}" --device cuda --epochs 1 --quiet --run-dir /tmp/single
run $tessera launch -n 1 -- $tessera train "${data[@]}" --device cuda --dist ddp --epochs 1 \
  --quiet --run-dir /tmp/ddp
run $tessera launch -n 1 -- $tessera train "${data[@]}" --device cuda --dist sdp --coverage 1 \
  --model resnet --depth 20 --width 0.5 --epochs 1 --quiet --run-dir /tmp/sdp
# Backward masking and the regularisers on the device (one NCCL worker holds everything at C = 1).
run $tessera launch -n 1 -- $tessera train "${data[@]}" --device cuda --dist sdp --coverage 1 \
  --sdp-masking backward --model resnet --depth 20 --width 0.5 --epochs 1 --quiet --run-dir /tmp/sdp-bwd
run $tessera launch -n 1 -- $tessera train "${data[@]}" --device cuda --dist sdp --coverage 1 \
  --sdp-level neuron --epochs 1 --quiet --run-dir /tmp/sdp-neuron
# A plan change on the device (at C = 1 every unit stays where it is: local copies only).
run $tessera launch -n 1 -- $tessera train "${data[@]}" --device cuda --dist sdp --coverage 1 \
  --sdp-redraw-epochs 1 --model resnet --depth 20 --width 0.5 --epochs 2 --quiet --run-dir /tmp/sdp-redraw
run $tessera train "${data[@]}" --device cuda --model resnet --depth 20 --width 0.5 --drop-path 0.25 \
  --epochs 1 --quiet --run-dir /tmp/drop-path
run $tessera train "${data[@]}" --device cuda --dropout 0.25 --epochs 1 --quiet --run-dir /tmp/dropout
# torchrun itself (the pip torch has it; the CPU machines have no torchrun): its environment and
# agent store, two Gloo workers on the CPU and one NCCL worker.
run python3 -m torch.distributed.run --nproc-per-node 2 --no-python $tessera train "${data[@]}" \
  --dist ddp --device cpu --threads 4 --limit-train 10000 --epochs 1 --quiet --run-dir /tmp/torchrun-cpu
run python3 -m torch.distributed.run --nproc-per-node 1 --no-python $tessera train "${data[@]}" \
  --dist ddp --device cuda --epochs 1 --quiet --run-dir /tmp/torchrun-cuda
run python3 -m torch.distributed.run --nproc-per-node 4 --no-python $tessera train "${data[@]}" \
  --dist sdp --coverage 0.5 --model resnet --depth 20 --width 0.5 --device cpu --threads 4 \
  --limit-train 8000 --epochs 1 --quiet --run-dir /tmp/torchrun-sdp
for r in single ddp sdp sdp-bwd sdp-neuron sdp-redraw drop-path dropout; do
  python3 -c "import json,sys; d=json.load(open('/tmp/$r/summary.json')); print('$r', 'acc', d['test_accuracy'], 'samples/s', d.get('total_samples_per_second', d.get('samples_per_second')), 'peak', d['peak_tensor_bytes'])" | tee -a "$log"
done
python3 -c "import json; d=json.load(open('/tmp/pnn/summary.json')); print('mlp cuts', d['pnn']['sequential']['cuts'])" | tee -a "$log"
cp /tmp/mlp/summary.json "$out/mlp-summary.json" 2>/dev/null
cp /tmp/pnn/summary.json "$out/pnn-summary.json" 2>/dev/null
cp /tmp/resnet/summary.json "$out/resnet-summary.json" 2>/dev/null
