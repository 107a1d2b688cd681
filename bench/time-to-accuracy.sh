#!/usr/bin/env bash
# Time to accuracy across hosts (issue 15): the methods of tessera on a cluster of 2 hosts x 2
# workers made of network namespaces (scripts/netns-cluster.sh), each host's link shaped by tc tbf
# to a given rate, one table per rate. Every row is one run, all with the same seed and data:
#
#   conventional   one worker, batch 4 x B (the global batch of the 4 data-parallel workers)
#   ddp            --dist ddp, B per worker (the target: this run's final accuracy)
#   ddp-bf16       the same with --comm-precision bf16 (gradients sent as bf16: half the bytes)
#   pipeline       --dist pipeline over the 4 workers, batch 4 x B
#   pnn-parallel   tessera pnn --pnn-schedule parallel (2 partitions, batch 4 x B, + recovery)
#   pnn-sequential tessera pnn --pnn-schedule sequential
#   sdp-forward-iter / -flop    --dist sdp, coverage C, forward masking: E epochs (the same
#                               iterations as DDP), and E / C epochs (the same training FLOPs)
#   sdp-backward-iter / -flop   the same with --sdp-masking backward
# (neuron-level SDP on the MLP and the LLaMA, block level on resnet-20; --sdp-level chooses).
#
# Columns: seconds to 90% and to 98% of DDP's final test accuracy (the first evaluation at or above
# it; `-`: never reached), the run's final accuracy, bytes each worker sent per training step,
# the largest worker's peak tensor memory, and the run's wall time. Seconds are the run's own clock
# (elapsed_seconds: since its process started) minus the time it spent in its earlier evaluations
# (evaluation_seconds), so that runs evaluating at different rates compare fairly; PNN records no
# such split (its joined curve comes from snapshots), so its seconds include its evaluations.
# For the language model (--model llama) quality is validation bits per byte, lower is better:
# the columns become seconds to within 10% and within 3% of DDP's final bits per byte (issue 14's
# bar for SDP is a loss within 3% of DDP's), and the final bits per byte.
# Every rate's rows also go into OUT_DIR/<rate>-report.html (tessera report: quality against
# training FLOPs, wall time and bytes; memory per worker).
#
#   bench/time-to-accuracy.sh [options] OUT_DIR
#
# Options:
#   --rates "R ..."      link rates, one table each, e.g. "1gbit 10gbit 100mbit" (default 1gbit)
#   --model mlp|resnet|llama
#                        mlp: the default 784-1024x5-10 MLP on Fashion-MNIST; resnet: resnet-20
#                        (width 0.5) on CIFAR-10; llama: the default byte-level LLaMA (4 blocks,
#                        width 128, sequence 64) on the fortunes text, its own schedule and
#                        optimizer (tessera's llama defaults) (default mlp)
#   --data D             the data set (default: fashion-mnist for mlp, cifar10 for resnet, text
#                        for llama); e.g. --model resnet --data fashion-mnist where CIFAR-10 is
#                        not installed
#   --sdp-level L        block or neuron (default: neuron for mlp and llama, block for resnet)
#   --epochs E           DDP's and the iteration-matched runs' epochs (default 4)
#   --limit-train N      training samples (default 20000; llama: 0, every window)
#   --limit-test N       test samples (default 2000; llama: 0, every window)
#   --evals-per-epoch K  test evaluations per epoch (default 4)
#   --batch-size B       per data-parallel worker (default 64; llama: 16, so 64 in all as the
#                        default LM's batch)
#   --coverage C         SDP's coverage (default 0.5)
#   --seed S             (default 1)
#   --timeout S          seconds any one run may take (default 900)
#   --only REGEX         run only the rows whose name matches
#   --sdp-flags "F ..."  more flags for every SDP row, e.g. "--sdp-redraw-steps 20" (a new plan
#                        every 20 steps); recorded in environment.txt with the command
#   --smoke              tiny sizes to try the script: synthetic 1x8x8 data, a 32-wide MLP,
#                        2 epochs of 2048 samples, batch 16 per worker (llama: 2 blocks of
#                        width 32, sequence 32, 512 windows)
#   --tessera PATH       the binary (default build/tessera of this checkout)
#
# Writes OUT_DIR/<rate>/<row>/ (run directories and logs), OUT_DIR/<rate>.tsv (the table) and
# OUT_DIR/environment.txt (date, CPU, commit, command). Needs root (network namespaces), jq.
# Slow: minutes per row; not part of the tests. Exit status 0 even if rows fail (the table says
# which and why); 2 for bad arguments, 77 where namespaces cannot be made.
set -euo pipefail

root_dir="$(cd "$(dirname "$0")/.." && pwd)"
rates="1gbit"
model=mlp
data=""
level=""
epochs=4
limit_train=""
limit_test=""
evals=4
batch=""
coverage=0.5
seed=1
run_timeout=900
only=""
smoke=0
sdp_flags=()
tessera="$root_dir/build/tessera"

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit 2
}
fail() {
  echo "time-to-accuracy: $*" >&2
  exit 2
}
positive() { [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge 1 ] || fail "$1 must be a positive integer, got '$2'"; }

out=""
invocation="$0 $*"
while [ $# -gt 0 ]; do
  case "$1" in
    --rates) rates="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --sdp-level) level="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --limit-train) limit_train="$2"; shift 2 ;;
    --limit-test) limit_test="$2"; shift 2 ;;
    --evals-per-epoch) evals="$2"; shift 2 ;;
    --batch-size) batch="$2"; shift 2 ;;
    --coverage) coverage="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --timeout) run_timeout="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --sdp-flags) read -r -a sdp_flags <<< "$2"; shift 2 ;;
    --smoke) smoke=1; shift ;;
    --tessera) tessera="$2"; shift 2 ;;
    -h | --help) usage ;;
    -*) fail "unknown option '$1' (see --help)" ;;
    *) [ -z "$out" ] || fail "one OUT_DIR only (got '$out' and '$1')"; out="$1"; shift ;;
  esac
done
[ -n "$out" ] || { echo "time-to-accuracy: no OUT_DIR" >&2; usage; }
# The language model's defaults differ: every window, and the default LM's batch of 64 in all.
if [ "$model" = llama ]; then default_limit=0 default_test=0 default_batch=16
else default_limit=20000 default_test=2000 default_batch=64; fi
limit_train=${limit_train:-$default_limit}
limit_test=${limit_test:-$default_test}
batch=${batch:-$default_batch}
for name in epochs evals batch run_timeout; do positive "--${name//_/-}" "${!name}"; done
for name in seed limit_train limit_test; do
  [[ "${!name}" =~ ^[0-9]+$ ]] || fail "--${name//_/-} must be a non-negative integer, got '${!name}'"
done
awk -v c="$coverage" 'BEGIN { exit !(c + 0 > 0 && c + 0 <= 1) }' ||
  fail "--coverage must lie in (0, 1], got '$coverage'"
for rate in $rates; do
  [[ "$rate" =~ ^[0-9]+(bit|kbit|mbit|gbit)$ ]] || fail "--rates: '$rate' is not a tc rate such as 1gbit or 100mbit"
done
command -v jq > /dev/null || fail "needs jq (apt-get install jq)"
[ -x "$tessera" ] || fail "no tessera binary at $tessera (build first)"

case $model in
  mlp) model_flags=(--model mlp); default_level=neuron; data_flags=(--data fashion-mnist) ;;
  resnet) model_flags=(--model resnet --depth 20 --width 0.5); default_level=block
    data_flags=(--data cifar10) ;;
  llama) model_flags=(--model llama); default_level=neuron; data_flags=(--data text) ;;
  *) fail "--model must be mlp, resnet or llama, got '$model'" ;;
esac
level=${level:-$default_level}
if [ -n "$data" ]; then
  [ "$model" != llama ] || [ "$data" = text ] || fail "--model llama trains on --data text, got '$data'"
  data_flags=(--data "$data")
fi
[[ "$level" =~ ^(block|neuron)$ ]] || fail "--sdp-level must be block or neuron, got '$level'"
if [ "$smoke" = 1 ]; then
  data_flags=(--data synthetic --synthetic-train 2048 --synthetic-test 256 --synthetic-shape 1,8,8)
  [ "$model" = mlp ] && model_flags=(--model mlp --hidden 32,32,32,32,32)
  [ "$model" = resnet ] && model_flags=(--model resnet --depth 8 --width 0.25)
  epochs=2
  limit_train=0
  limit_test=256
  evals=2
  batch=16
  if [ "$model" = llama ]; then
    model_flags=(--model llama --depth 2 --width 32 --heads 2 --mlp-dim 64 --seq-len 32)
    data_flags=(--data text)
    limit_train=512
    limit_test=64
  fi
fi
data_flags+=(--limit-train "$limit_train" --limit-test "$limit_test")
workers_per_host=2
hosts=2
world=$((workers_per_host * hosts))
global_batch=$((batch * world))
flop_epochs=$(awk -v e="$epochs" -v c="$coverage" 'BEGIN { printf "%d", e / c + 0.5 }')
common=("${model_flags[@]}" "${data_flags[@]}" --seed "$seed" --evals-per-epoch "$evals"
  --eval-batch-size 500 --quiet)
# OpenMP threads that spin while waiting take the cores of the other workers of this machine.
export OMP_WAIT_POLICY=PASSIVE

mkdir -p "$out"
out="$(cd "$out" && pwd)"
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
  echo "commit: $(git -C "$root_dir" rev-parse --short HEAD 2> /dev/null || echo unknown)$(
    git -C "$root_dir" diff --quiet HEAD 2> /dev/null || echo ' (with uncommitted changes)')"
  echo "command: $invocation"
  echo "settings: model $model (SDP level $level) on ${data_flags[1]}, $epochs epochs (FLOP-matched SDP: $flop_epochs), batch $batch per" \
    "data-parallel worker ($global_batch global), limit-train $limit_train, limit-test" \
    "$limit_test, $evals evaluations per epoch, coverage $coverage, seed $seed, timeout $run_timeout s"
} > "$out/environment.txt"
cat "$out/environment.txt"

# One row's run. Sets row_status ("ok", "failed (exit N, see LOG)", "timed out after S s") and
# row_summary (the summary.json the row is read from).
cluster_run() {  # dir rate tessera-train-args...
  local dir=$1 rate=$2
  shift 2
  rm -rf "$dir"
  mkdir -p "$dir"
  local code=0
  bash "$root_dir/scripts/netns-cluster.sh" --hosts "$hosts" -n "$workers_per_host" --rate "$rate" \
    --timeout "$run_timeout" --out "$dir" --tessera "$tessera" -- \
    tessera train "${common[@]}" --threads 1 --run-dir '{dir}/run' "$@" > "$dir/cluster.log" 2>&1 ||
    code=$?
  [ "$code" = 77 ] && { cat "$dir/cluster.log" >&2; exit 77; }
  row_summary="$dir/h0/run/summary.json"
  status_of "$code" "$dir/cluster.log"
}
local_run() {  # dir summary-in-run-dir command-args... (one host: no traffic between hosts)
  local dir=$1 summary=$2
  shift 2
  rm -rf "$dir"
  mkdir -p "$dir"
  local code=0
  timeout -k 15 "$run_timeout" "$tessera" "$@" "${common[@]}" --run-dir "$dir/run" \
    > "$dir/run.log" 2>&1 || code=$?
  row_summary="$dir/run/$summary"
  status_of "$code" "$dir/run.log"
}
status_of() {  # exit-code log
  case $1 in
    0) row_status=ok ;;
    124 | 137) row_status="timed out after $run_timeout s" ;;
    *) row_status="failed (exit $1, see $2)" ;;
  esac
}

# The row's figures from its summary.json as TSV: final quality, history of (training seconds,
# quality) as "s:q,s:q,..." ("none": no evaluation), bytes per worker per step, largest worker's
# peak tensor bytes, training seconds at the last evaluation, wall seconds at the last evaluation
# (evaluations included). Quality: test accuracy, or the language model's bits per byte.
figures() {  # kind summary.json
  local lm=false
  [ "$model" = llama ] && lm=true
  case $1 in
    train) jq -r --argjson lm "$lm" '
        def quality: if $lm then .test_loss / 0.6931471805599453 else .test_accuracy end;
        (.history | last) as $last | [quality,
        ([.history[] | "\(.elapsed_seconds - (.evaluation_seconds // 0)):\(quality)"]
          | join(",") | if . == "" then "none" else . end),
        (.comm_bytes_per_step // 0) / ([.ranks[]?] | length | if . == 0 then 1 else . end),
        ([.ranks[]?.peak_tensor_bytes] + [.peak_tensor_bytes // 0] | max),
        (if $last then $last.elapsed_seconds - ($last.evaluation_seconds // 0) else "-" end),
        (if $last then $last.elapsed_seconds else "-" end)] | @tsv' "$2" ;;
    # PNN sends nothing per step; the sequential schedule hands the partition outputs over once.
    pnn) jq -r --argjson lm "$lm" '
        def quality: if $lm then .loss / 0.6931471805599453 else .accuracy end;
        (.curve | last) as $last | [(if $lm then .test_loss / 0.6931471805599453 else .test_accuracy end),
        ([.curve[] | "\(.elapsed_seconds):\(quality)"] | join(",")
          | if . == "" then "none" else . end),
        (if .handover_bytes > 0 then "0 (hand-over \(.handover_bytes) B once)" else 0 end),
        ([.max_partition_peak_tensor_bytes, (.recovery.peak_tensor_bytes // 0)] | max),
        (if $last then $last.elapsed_seconds else "-" end),
        (if $last then $last.elapsed_seconds else "-" end)] | @tsv' "$2" ;;
  esac
}

# Seconds of the first history point at or above `target` (at or below it for the language
# model's bits per byte; "-" if none).
seconds_to() {  # history target
  tr ',' '\n' <<< "$1" | awk -F: -v t="$2" -v lower="$([ "$model" = llama ] && echo 1 || echo 0)" '
    (lower && $2 + 0 <= t) || (!lower && $2 + 0 >= t) { printf "%.1f", $1; found = 1; exit }
    END { if (!found) printf "-" }'
}
# The two thresholds on DDP's final quality: 90% and 98% of its accuracy, or 110% and 103% of the
# language model's bits per byte.
if [ "$model" = llama ]; then
  loose=1.10 tight=1.03
  table_header=$'row\tepochs\tsec_to_110pct_bpb\tsec_to_103pct_bpb\tsec_to_final\tfinal_bpb\tbytes_per_step_per_worker\tpeak_MiB_max_worker\twall_s\tstatus'
else
  loose=0.90 tight=0.98
  table_header=$'row\tepochs\tsec_to_90pct\tsec_to_98pct\tsec_to_final\tfinal_acc\tbytes_per_step_per_worker\tpeak_MiB_max_worker\twall_s\tstatus'
fi

run_rate() {  # rate
  local rate=$1
  local dir="$out/$rate"
  mkdir -p "$dir"
  local rows="$out/$rate.tsv"
  local raw="$dir/raw.tsv"
  : > "$raw"
  local sdp=(--dist sdp --sdp-level "$level" --coverage "$coverage" --batch-size "$batch"
    "${sdp_flags[@]}")
  local pnn=(pnn --partitions 2 --batch-size "$global_batch" --epochs "$epochs")
  # DDP first: its final accuracy is every row's target. Then SDP and the other methods
  # alternately, so that a drift of the machine during the table does not favour one side.
  local order=(ddp sdp-forward-flop conventional sdp-forward-iter pipeline sdp-backward-iter
    pnn-parallel sdp-backward-flop pnn-sequential ddp-bf16)
  for name in "${order[@]}"; do
    if [ -n "$only" ] && ! [[ $name =~ $only ]] && [ "$name" != ddp ]; then continue; fi
    local kind=train ep=$epochs
    local start=$SECONDS
    echo "time-to-accuracy: $rate: $name ($(date -u +%H:%M:%S))" >&2
    case $name in
      ddp) cluster_run "$dir/$name" "$rate" --dist ddp --batch-size "$batch" --epochs "$ep" ;;
      ddp-bf16)
        cluster_run "$dir/$name" "$rate" --dist ddp --comm-precision bf16 --batch-size "$batch" \
          --epochs "$ep" ;;
      conventional)
        local_run "$dir/$name" summary.json train --batch-size "$global_batch" --epochs "$ep" \
          --threads 0 ;;
      pipeline)
        cluster_run "$dir/$name" "$rate" --dist pipeline --batch-size "$global_batch" --epochs "$ep" ;;
      pnn-parallel)
        kind=pnn
        local_run "$dir/$name" parallel/summary.json "${pnn[@]}" --pnn-schedule parallel \
          --threads 1 ;;
      pnn-sequential)
        kind=pnn
        local_run "$dir/$name" sequential/summary.json "${pnn[@]}" --pnn-schedule sequential \
          --threads 0 ;;
      sdp-forward-iter) cluster_run "$dir/$name" "$rate" "${sdp[@]}" --epochs "$ep" ;;
      sdp-forward-flop)
        ep=$flop_epochs
        cluster_run "$dir/$name" "$rate" "${sdp[@]}" --epochs "$ep" ;;
      sdp-backward-iter)
        cluster_run "$dir/$name" "$rate" "${sdp[@]}" --sdp-masking backward --epochs "$ep" ;;
      sdp-backward-flop)
        ep=$flop_epochs
        cluster_run "$dir/$name" "$rate" "${sdp[@]}" --sdp-masking backward --epochs "$ep" ;;
    esac
    if [ "$row_status" = ok ] && [ -f "$row_summary" ]; then
      printf '%s\t%s\t%s\t%s\n' "$name" "$ep" "$row_status" "$(figures "$kind" "$row_summary")" >> "$raw"
    else
      [ "$row_status" = ok ] && row_status="no summary.json at $row_summary"
      printf '%s\t%s\t%s\t-\tnone\t-\t-\t-\t%s\n' "$name" "$ep" "$row_status" "$((SECONDS - start))" >> "$raw"
    fi
    tail -1 "$raw" | cut -f1-4 >&2
  done

  # The target: DDP's final accuracy.
  local target
  target=$(awk -F'\t' '$1 == "ddp" && $3 == "ok" { print $4 }' "$raw")
  printf '%s\n' "$table_header" > "$rows"
  while IFS=$'\t' read -r name ep status final history bytes peak to_final wall; do
    local t90=- t98=-
    if [ -n "$target" ] && [ "$status" = ok ]; then
      t90=$(seconds_to "$history" "$(awk -v t="$target" -v f="$loose" 'BEGIN { print f * t }')")
      t98=$(seconds_to "$history" "$(awk -v t="$target" -v f="$tight" 'BEGIN { print f * t }')")
    fi
    awk -F'\t' -v OFS='\t' -v n="$name" -v e="$ep" -v a="$t90" -v b="$t98" -v f="$final" \
      -v by="$bytes" -v p="$peak" -v tf="$to_final" -v w="$wall" -v s="$status" \
      -v lm="$([ "$model" = llama ] && echo 1 || echo 0)" 'BEGIN {
        acc = f == "-" ? "-" : lm ? sprintf("%.3f", f) : sprintf("%.2f%%", 100 * f)
        bytes = by ~ /^[0-9.e+]+$/ ? sprintf("%d", by + 0.5) : by
        mib = p == "-" || p == "" ? "-" : sprintf("%.1f", p / 1048576)
        final_s = tf == "-" || tf == "" ? "-" : sprintf("%.1f", tf)
        wall = w == "-" || w == "" ? "-" : sprintf("%.1f", w)
        print n, e, a, b, final_s, acc, bytes, mib, wall, s }' >> "$rows"
  done < "$raw"
  echo
  if [ "$model" = llama ]; then
    echo "time to quality at $rate per host link (target: DDP's final bits per byte $(
      [ -n "$target" ] && awk -v t="$target" 'BEGIN { printf "%.3f", t }' || echo unknown)):"
  else
    echo "time to accuracy at $rate per host link (target: DDP's final accuracy $(
      [ -n "$target" ] && awk -v t="$target" 'BEGIN { printf "%.2f%%", 100 * t }' || echo unknown)):"
  fi
  column -t -s $'\t' "$rows"
  the_bar "$rows" "$raw"
  report "$rate"
}

# tessera report over the rate's finished rows (cluster rows: host 0's run directory).
report() {  # rate
  local dirs=() row
  for row in "$out/$1"/*/; do
    if [ -f "$row/h0/run/summary.json" ]; then dirs+=("$row/h0/run")
    elif [ -f "$row/run/summary.json" ]; then dirs+=("$row/run"); fi
  done
  [ ${#dirs[@]} -gt 0 ] || return 0
  "$tessera" report "${dirs[@]}" --out "$out/$1-report.html" > /dev/null 2>&1 &&
    echo "report: $out/$1-report.html" ||
    echo "report: tessera report failed on ${dirs[*]}" >&2
}

# The issues' bars. Issue 15: SDP forward at coverage C reaches 98% of DDP's final accuracy in at
# most half DDP's wall time (FLOP-matched epochs included). Issue 14 (the language model): each
# FLOP-matched SDP row ends within 3% of DDP's validation loss with at least 35% less peak tensor
# memory on the largest worker and fewer bytes per step.
the_bar() {  # table raw
  if [ "$model" = llama ]; then the_lm_bar "$1"; return; fi
  awk -F'\t' '
    $1 == "ddp" { ddp_wall = $5; ddp_t98 = $4 }
    $1 == "sdp-forward-flop" { sdp = $4 }
    END {
      if (ddp_wall == "" || ddp_wall == "-" || sdp == "") { print "the bar: not measured (DDP or SDP forward FLOP-matched missing)"; exit }
      if (sdp == "-") { printf "the bar: missed: SDP forward (FLOP-matched) never reached 98%% of DDP'"'"'s final accuracy (DDP: %s s)\n", ddp_wall; exit }
      printf "the bar: SDP forward (FLOP-matched) reached 98%% of DDP'"'"'s final accuracy after %.1f s = %.2f x DDP'"'"'s time to its final accuracy (%.1f s), %s x DDP'"'"'s time to the same 98%% (%s s): %s\n",
        sdp, sdp / ddp_wall, ddp_wall, ddp_t98 == "-" ? "-" : sprintf("%.2f", sdp / ddp_t98), ddp_t98,
        sdp <= 0.5 * ddp_wall ? "met (at most 0.5)" : "missed (above 0.5)"
    }' "$1"
}

the_lm_bar() {  # table
  awk -F'\t' '
    $1 == "ddp" { ddp_bpb = $6; ddp_bytes = $7; ddp_peak = $8 }
    $1 ~ /^sdp-.*-flop$/ { rows[++n] = $0 }
    END {
      if (ddp_bpb == "" || ddp_bpb == "-") { print "the bar: not measured (DDP missing)"; exit }
      if (n == 0) { print "the bar: not measured (no FLOP-matched SDP row)"; exit }
      for (i = 1; i <= n; i++) {
        split(rows[i], f, "\t")
        if (f[6] == "-") { printf "the bar: %s: no result (%s)\n", f[1], f[10]; continue }
        loss = f[6] / ddp_bpb - 1; peak = 1 - f[8] / ddp_peak; fewer = (f[7] + 0 < ddp_bytes + 0)
        verdict = (loss <= 0.03 && peak >= 0.35 && fewer) ? "met" : "missed"
        printf "the bar: %s: loss %+.1f%% against DDP (at most +3%%), peak memory %.0f%% less (at least 35%%), bytes per step %s than DDP (%s against %s): %s\n",
          f[1], 100 * loss, 100 * peak, fewer ? "fewer" : "not fewer", f[7], ddp_bytes,
          verdict
      }
    }' "$1"
}

for rate in $rates; do run_rate "$rate"; done
