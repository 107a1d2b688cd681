#!/usr/bin/env python3
"""The three GEMMs of one training step of a 1024x1024 linear layer on a batch of 128 (forward,
input gradient, weight gradient), as libtorch's BLAS path computes them (F.linear / mm) and as a
oneDNN fp32 path would (at::mkldnn_linear and its backward ops, with the conversions to and from
oneDNN's layout that a dense model would pay on every call), alternated in one process.

The measurement a oneDNN fp32 linear path in tessera needs first (issue #16, "fastest GEMM").

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 bench/linear_kernels.py [THREADS] [ROUNDS]
"""
import sys
import time

import torch


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x, w, g = torch.randn(128, 1024), torch.randn(1024, 1024), torch.randn(128, 1024)

    def blas():
        torch.nn.functional.linear(x, w)
        g.mm(w)
        g.t().mm(x)

    def onednn():
        xm, gm = x.to_mkldnn(), g.to_mkldnn()
        torch.ops.aten.mkldnn_linear(xm, w, None).to_dense()
        torch.ops.aten.mkldnn_linear_backward_input(x.shape, gm, w).to_dense()
        torch.ops.aten.mkldnn_linear_backward_weights(gm, xm, w, False)

    flops = 3 * 2 * 128 * 1024 * 1024
    rates = {"BLAS (F.linear, mm)": [], "oneDNN (mkldnn_linear + conversions)": []}
    for f in (blas, onednn):
        f()  # warm-up: oneDNN's JIT, BLAS buffers
    for _ in range(rounds):
        for name, f in zip(rates, (blas, onednn)):
            start = time.perf_counter()
            for _ in range(20):
                f()
            rates[name].append(flops * 20 / (time.perf_counter() - start) / 1e9)
    print(f"torch {torch.__version__}, {threads} threads, {rounds} alternated rounds of 20 steps")
    for name, values in rates.items():
        values.sort()
        print(f"{name}: median {values[len(values) // 2]:.1f} GFLOP/s "
              f"(min {values[0]:.1f}, max {values[-1]:.1f})")


if __name__ == "__main__":
    main()
