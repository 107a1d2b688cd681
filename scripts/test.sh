#!/usr/bin/env bash
# Install dependencies, build, and run the whole test suite.
#   scripts/test.sh                 Release build in ./build, then ctest
#   scripts/test.sh --sanitize      AddressSanitizer + UndefinedBehaviorSanitizer build in
#                                   ./build-asan, then ctest there (slower: ~2-3x)
#   scripts/test.sh --tsan [REGEX]  ThreadSanitizer build in ./build-tsan (test_dist, test_sdp),
#                                   then the threaded tests (ctest -R REGEX; default: the suites
#                                   that use tests/dist/rank_threads.h, and SdpRun)
# Extra arguments after the mode go to ctest. Sanitizer runs skip install-deps (run it once first).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
case "$mode" in
  --sanitize)
    shift
    source scripts/sanitizers/env.sh asan
    cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Release -DTESSERA_WERROR=ON \
      -DTESSERA_BUILD_BENCH=OFF -DTESSERA_SANITIZE=address,undefined >/dev/null
    cmake --build build-asan
    cd build-asan && ctest --output-on-failure -j2 --timeout 1800 "$@"
    ;;
  --tsan)
    shift
    # The suites that run ranks as threads of one process (tests/dist/rank_threads.h), and SdpRun.
    regex=${1:-'^(DataParallel|DdpEquivalence|LlamaDataParallel|SplitStages|PipelineEquivalence|ProcessGroup|BackwardMasking|BackwardMaskingAgreement|PlanChange|SdpRun|SubnetSync|HolderAgreement)\.'}
    [[ $# -gt 0 ]] && shift
    source scripts/sanitizers/env.sh tsan
    cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Release -DTESSERA_WERROR=ON \
      -DTESSERA_BUILD_BENCH=OFF -DTESSERA_SANITIZE=thread >/dev/null
    cmake --build build-tsan --target tessera test_dist test_sdp
    cd build-tsan && ctest --output-on-failure -j1 --timeout 1800 -R "$regex" "$@"
    ;;
  *)
    bash scripts/install-deps.sh
    bash scripts/build.sh
    cd build && ctest --output-on-failure -j2 --timeout 900
    ;;
esac
