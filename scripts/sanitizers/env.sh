# Sourced by scripts/test.sh: the sanitizer run-time options for `asan` (ASan + UBSan) or `tsan`.
# Every suppression file lists only reports from inside libtorch / its OpenMP runtime, each with
# its reason; a report in tessera's own code is never suppressed.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
case "$1" in
  asan)
    export ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=0:check_initialization_order=1"
    export LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$here/ubsan.supp"
    ;;
  tsan)
    export TSAN_OPTIONS="suppressions=$here/tsan.supp:halt_on_error=1:second_deadlock_stack=1"
    ;;
esac
