#!/bin/sh
# Compiles tessera::dist's c10d file against the device machine's pip torch (2.x, CUDA) and runs
# scripts/device/dist_check.cpp: Gloo on two rank threads, NCCL and the gradient reducer on one GPU.
# Run from the repository root: sh scripts/device/dist-check.sh
set -x
nvidia-smi -L
python3 -c "import torch; print(torch.__version__, torch.cuda.is_available(), torch.compiled_with_cxx11_abi())" || exit 1
TORCH=$(python3 -c "import torch, os; print(os.path.dirname(torch.__file__))")
ABI=$(python3 -c "import torch; print(int(torch.compiled_with_cxx11_abi()))")
ls $TORCH/include | head -30
ls $TORCH/include/torch/csrc/distributed/c10d | head -50
g++ --version | head -1
g++ -std=c++17 -O1 -w -D_GLIBCXX_USE_CXX11_ABI=$ABI -DUSE_C10D_GLOO -DUSE_C10D_NCCL -DUSE_DISTRIBUTED \
  -DTESSERA_WITH_CUDA -Isrc -I$TORCH/include -I$TORCH/include/torch/csrc/api/include \
  scripts/device/dist_check.cpp src/tessera/dist/process_group.cpp src/tessera/dist/peers.cpp \
  src/tessera/dist/gradient_reducer.cpp src/tessera/metrics/comm_counter.cpp \
  -L$TORCH/lib -Wl,--no-as-needed -ltorch -ltorch_cpu -ltorch_cuda -lc10 -lc10_cuda -Wl,-rpath,$TORCH/lib \
  -lpthread -o /tmp/probe 2>&1 | grep -E "error|Error" | head -30
ls -la /tmp/probe && timeout 120 /tmp/probe
