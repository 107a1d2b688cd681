#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) into ./build-fuzz and runs them.
#   scripts/fuzz.sh TARGET|all SECONDS [libFuzzer flags...]   fuzz each target for SECONDS
#   scripts/fuzz.sh --list                                     the targets
#   scripts/fuzz.sh --seeds                                    rewrite tests/fuzz/corpus/ from the
#                                                              harnesses' seed functions
# With TESSERA_FUZZ_NO_BUILD=1 it runs the targets already built (e.g. while another is building).
# Targets: one per tests/fuzz/<name>_harness.cpp. Each run starts from the committed seeds and
# regression inputs plus what earlier runs found (build-fuzz/corpus/<name>/, kept between runs);
# its log is build-fuzz/logs/<name>.log. A crash, leak, sanitizer report, timeout or out-of-memory
# stops the run, leaves the input as build-fuzz/artifacts/<name>/crash-* (or leak-, timeout-,
# oom-) and makes the script exit non-zero. Per input: at most 64 KiB (-max_len), 512 MiB in one
# allocation (-malloc_limit_mb), 2 GiB resident (-rss_limit_mb), 25 s (-timeout).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

targets() { ls tests/fuzz/*_harness.cpp | sed 's|.*/||; s|_harness.cpp$||'; }

build() {
  cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
    -DTESSERA_FUZZ=ON -DTESSERA_WERROR=ON -DTESSERA_BUILD_TESTS=OFF -DTESSERA_BUILD_BENCH=OFF >/dev/null
  cmake --build build-fuzz --target $(for t in "$@"; do echo "fuzz_$t"; done)
}

# Reports (and suppressions) as in the sanitizer suite; one libtorch thread per process.
source scripts/sanitizers/env.sh asan
export ASAN_OPTIONS="$ASAN_OPTIONS:allocator_may_return_null=0"
export OMP_NUM_THREADS=1

case "${1:-}" in
  --list) targets; exit 0 ;;
  --seeds)
    mapfile -t all < <(targets)
    build "${all[@]}"
    for t in "${all[@]}"; do
      rm -rf "tests/fuzz/corpus/$t"
      TESSERA_FUZZ_WRITE_SEEDS="tests/fuzz/corpus/$t" "build-fuzz/fuzz_$t"
      echo "$t: $(ls "tests/fuzz/corpus/$t" | wc -l) seeds, $(du -sh "tests/fuzz/corpus/$t" | cut -f1)"
    done
    exit 0
    ;;
  ""|-h|--help) sed -n '2,13p' "$0"; exit 2 ;;
esac

which=$1
seconds=${2:?"usage: scripts/fuzz.sh TARGET|all SECONDS"}
shift 2
if [[ $which == all ]]; then mapfile -t run < <(targets); else run=("$which"); fi
for t in "${run[@]}"; do
  [[ -f tests/fuzz/${t}_harness.cpp ]] || { echo "no fuzz target '$t' (have: $(targets | xargs))" >&2; exit 2; }
done
[[ ${TESSERA_FUZZ_NO_BUILD:-0} == 1 ]] || build "${run[@]}"

status=0
for t in "${run[@]}"; do
  mkdir -p "build-fuzz/corpus/$t" "build-fuzz/artifacts/$t" build-fuzz/logs "tests/fuzz/regressions/$t"
  log="build-fuzz/logs/$t.log"
  echo "== fuzz_$t for ${seconds} s (log: $log)"
  set +e
  "build-fuzz/fuzz_$t" -max_total_time="$seconds" -max_len=65536 -malloc_limit_mb=512 \
    -rss_limit_mb=2048 -timeout=25 -print_final_stats=1 \
    -artifact_prefix="$root/build-fuzz/artifacts/$t/" "$@" \
    "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" "tests/fuzz/regressions/$t" >"$log" 2>&1
  rc=$?
  set -e
  # libFuzzer's last status line (runs, coverage: cov = edges, ft = features; exec/s; rss).
  grep -E '^#[0-9]+' "$log" | tail -n 1 || true
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" | xargs || true
  if [[ $rc -eq 0 ]]; then
    echo "fuzz_$t: no crash, leak or sanitizer report in ${seconds} s; corpus $(ls "build-fuzz/corpus/$t" | wc -l) files"
  else
    status=1
    echo "fuzz_$t: FAILED (exit $rc); inputs: $(ls "build-fuzz/artifacts/$t" | xargs)"
    grep -E 'ERROR: |SUMMARY: |runtime error|terminate called|what\(\)' "$log" | head -n 5
  fi
done
exit $status
