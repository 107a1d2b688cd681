#!/usr/bin/env bash
# A cluster of H hosts on this machine: each host is a network namespace with one link (eth0,
# 10.231.0.<i+1>/24) into a bridge that lives in a namespace of its own, so the machine's own
# network and firewall are never touched. Each host runs
#   tessera launch -n N --nnodes H --node-rank i --master-addr <host 0> --master-port P -- CMD
# with no GLOO_SOCKET_IFNAME: every worker finds its address on the route to the master itself.
#
#   bash scripts/netns-cluster.sh [options] -- tessera train --dist ddp ... --run-dir {dir}/run
#
# In CMD, {dir} becomes this host's output directory (OUT/h<i>) and {host} its index. What each
# host printed goes to OUT/h<i>/launch.log; OUT/net.tsv holds the bytes each host's eth0 sent and
# received during the run (Ethernet frames: Gloo's traffic, the rendezvous store's, ARP).
#
# Options:
#   --hosts H          hosts (namespaces), default 2
#   -n, --workers N    workers per host, default 1
#   --rate R           shape each host's link with tc tbf at R in both directions (e.g. 100mbit);
#                      default: unshaped
#   --burst B          tbf burst (bucket size), default 64kb
#   --timeout S        seconds each host's launch may run (SIGTERM, then SIGKILL 15 s later);
#                      default 300
#   --out DIR          output directory, default a fresh /tmp/tessera-cluster-<pid>
#   --port P           the master port, default 29500 (namespaces have ports of their own)
#   --master-addr A    give the hosts this master address instead of host 0's (error paths)
#   --down H:S         set host H's link down S seconds after the hosts started (a host that
#                      disappears mid-run); each host's exit is then timed from that moment
#   --down-when TEXT   count --down's S from when TEXT first appears in a host's launch.log
#                      (e.g. 'epoch 1:', once the workers train), not from the start: a slow
#                      start (a sanitizer build, a loaded machine) then cannot turn a lost host
#                      mid-run into one that never joined
#   --tessera PATH     the binary, default build/tessera of this checkout
#
# Needs root (ip netns, veth, bridge, tc). Exit status: the first failing host's, 0 if all
# succeeded, 77 if network namespaces or veth links cannot be made here (the reason is printed).
# Everything it makes is named tsr-<pid>-*, and is removed on exit, on error and on Ctrl-C.
set -euo pipefail

root_dir="$(cd "$(dirname "$0")/.." && pwd)"
hosts=2
workers=1
rate=""
burst=64kb
run_timeout=300
out=""
port=29500
master_override=""
down=""
down_when=""
tessera="$root_dir/build/tessera"

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    --hosts) hosts="$2"; shift 2 ;;
    -n | --workers) workers="$2"; shift 2 ;;
    --rate) rate="$2"; shift 2 ;;
    --burst) burst="$2"; shift 2 ;;
    --timeout) run_timeout="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --master-addr) master_override="$2"; shift 2 ;;
    --down) down="$2"; shift 2 ;;
    --down-when) down_when="$2"; shift 2 ;;
    --tessera) tessera="$2"; shift 2 ;;
    -h | --help) usage ;;
    --) shift; break ;;
    *) echo "netns-cluster: unknown option '$1'" >&2; usage ;;
  esac
done
[ $# -gt 0 ] || { echo "netns-cluster: no command after --" >&2; usage; }
[[ "$hosts" =~ ^[0-9]+$ ]] && [ "$hosts" -ge 1 ] && [ "$hosts" -le 200 ] ||
  { echo "netns-cluster: --hosts must lie in 1..200" >&2; exit 2; }
[[ "$workers" =~ ^[0-9]+$ ]] && [ "$workers" -ge 1 ] ||
  { echo "netns-cluster: --workers must be a positive integer" >&2; exit 2; }
[[ "$run_timeout" =~ ^[0-9]+$ ]] && [ "$run_timeout" -ge 1 ] ||
  { echo "netns-cluster: --timeout must be a positive number of seconds" >&2; exit 2; }
if [ -n "$down" ]; then
  [[ "$down" =~ ^([0-9]+):([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -lt "$hosts" ] ||
    { echo "netns-cluster: --down must be HOST:SECONDS with HOST in 0..$((hosts - 1))" >&2; exit 2; }
  down_host="${BASH_REMATCH[1]}"
  down_after="${BASH_REMATCH[2]}"
fi
[ -z "$down_when" ] || [ -n "$down" ] || { echo "netns-cluster: --down-when needs --down" >&2; exit 2; }
[ -x "$tessera" ] || { echo "netns-cluster: no tessera binary at $tessera (build first)" >&2; exit 2; }
tessera="$(cd "$(dirname "$tessera")" && pwd)/$(basename "$tessera")"
command=("$@")

unavailable() {
  echo "netns-cluster: network namespaces are not available here: $*" >&2
  exit 77
}
[ "$(id -u)" = 0 ] || unavailable "needs root (ip netns add, veth links, tc)"
command -v ip > /dev/null || unavailable "the ip command (iproute2) is missing"
[ -z "$rate" ] || command -v tc > /dev/null || unavailable "the tc command (iproute2) is missing"

id="tsr-$$"
switch="$id-sw"
host_ns() { echo "$id-h$1"; }
address() { echo "10.231.0.$(($1 + 1))"; }
master="${master_override:-$(address 0)}"
out="${out:-/tmp/tessera-cluster-$$}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

pids=()
made=()  # namespaces made so far, removed in reverse
cleanup() {
  local status=$?
  # Ignored, not reset: `timeout` and a terminal send their signal to the whole process group,
  # often twice (the script, then the group); a second one must not end the cleanup halfway.
  trap - EXIT
  trap '' INT TERM
  set +e
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2> /dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2> /dev/null; done
  for ((k = ${#made[@]} - 1; k >= 0; k--)); do
    # Anything still running inside was started by this script (in a namespace it made).
    for pid in $(ip netns pids "${made[k]}" 2> /dev/null); do kill -KILL "$pid" 2> /dev/null; done
    ip netns del "${made[k]}" 2> /dev/null
  done
  local left
  left="$(ip netns list 2> /dev/null | grep -c "^$id-")"
  if [ "$left" != 0 ]; then
    echo "netns-cluster: could not remove namespaces: $(ip netns list | grep "^$id-" | tr '\n' ' ')" >&2
    status=1
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'echo "netns-cluster: interrupted" >&2; exit 130' INT
trap 'echo "netns-cluster: terminated" >&2; exit 143' TERM

in_ns() { ip netns exec "$@"; }
# IPv6 off, so that router solicitations and multicast reports do not count as the run's traffic.
quiet_ns() {
  in_ns "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
    2> /dev/null || true
  ip -n "$1" link set lo up
}

if ! error="$(ip netns add "$switch" 2>&1)"; then unavailable "ip netns add: $error"; fi
made+=("$switch")
quiet_ns "$switch"
ip -n "$switch" link add br0 type bridge
ip -n "$switch" link set br0 up
shape() {  # namespace device
  [ -n "$rate" ] || return 0
  in_ns "$1" tc qdisc add dev "$2" root tbf rate "$rate" burst "$burst" latency 100ms
}
for ((i = 0; i < hosts; i++)); do
  ns="$(host_ns "$i")"
  ip netns add "$ns"
  made+=("$ns")
  quiet_ns "$ns"
  if ! error="$(ip -n "$switch" link add "h$i" type veth peer name eth0 netns "$ns" 2>&1)"; then
    unavailable "a veth link: $error"
  fi
  ip -n "$switch" link set "h$i" master br0 up
  ip -n "$ns" addr add "$(address "$i")/24" dev eth0
  ip -n "$ns" link set eth0 up
  shape "$ns" eth0      # what the host sends
  shape "$switch" "h$i" # what it receives
done
echo "netns-cluster: $hosts hosts $(address 0)..$(address $((hosts - 1))) (namespaces $id-h*)," \
  "$workers worker(s) each, master $master:$port, output in $out"
if [ -n "$rate" ]; then
  echo "netns-cluster: links shaped by tc tbf to $rate each way (burst $burst)"
fi
echo "netns-cluster: latency and loss are not emulated: this kernel has no netem" \
  "(tbf's 'latency' only bounds its queue)"

counter() { in_ns "$1" cat "/sys/class/net/eth0/statistics/$2"; }
declare -A before
for ((i = 0; i < hosts; i++)); do
  for what in tx_bytes rx_bytes tx_packets; do before[$i.$what]="$(counter "$(host_ns "$i")" $what)"; done
done

for ((i = 0; i < hosts; i++)); do
  dir="$out/h$i"
  mkdir -p "$dir"
  args=()
  for arg in "${command[@]}"; do
    arg="${arg//\{dir\}/$dir}"
    args+=("${arg//\{host\}/$i}")
  done
  in_ns "$(host_ns "$i")" timeout -k 15 "$run_timeout" "$tessera" launch -n "$workers" \
    --nnodes "$hosts" --node-rank "$i" --master-addr "$master" --master-port "$port" \
    -- "${args[@]}" > "$dir/launch.log" 2>&1 &
  pids+=($!)
done

# True once TEXT is in some host's log, or once every host has exited without it (said so).
seen_in_a_log() {
  local i alive=0
  for ((i = 0; i < hosts; i++)); do
    grep -qF -- "$1" "$out/h$i/launch.log" 2>/dev/null && return 0
    kill -0 "${pids[i]}" 2>/dev/null && alive=1
  done
  [ "$alive" = 1 ] && return 1
  echo "netns-cluster: every host exited before '$1' appeared in a log" >&2
  return 0
}

down_at=""
if [ -n "$down" ]; then
  after="after $down_after s"
  if [ -n "$down_when" ]; then
    until seen_in_a_log "$down_when"; do sleep 0.2; done
    after="$down_after s after '$down_when' appeared"
  fi
  sleep "$down_after"
  ip -n "$(host_ns "$down_host")" link set eth0 down
  down_at="$(date +%s.%N)"
  echo "netns-cluster: host $down_host's link set down $after"
fi

status=0
for ((i = 0; i < hosts; i++)); do
  code=0
  wait "${pids[i]}" || code=$?
  [ "$code" = 124 ] && echo "netns-cluster: host $i ran past --timeout $run_timeout s" >&2
  since=""
  if [ -n "$down_at" ]; then
    since=", $(awk -v a="$down_at" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s after the link went down"
  fi
  echo "netns-cluster: host $i exited with $code$since (log: $out/h$i/launch.log)"
  [ "$status" != 0 ] || status=$code
done
pids=()

printf 'host\taddress\ttx_bytes\trx_bytes\ttx_packets\n' > "$out/net.tsv"
for ((i = 0; i < hosts; i++)); do
  ns="$(host_ns "$i")"
  row="$i\t$(address "$i")"
  for what in tx_bytes rx_bytes tx_packets; do
    row="$row\t$(($(counter "$ns" $what) - ${before[$i.$what]}))"
  done
  printf "$row\n" >> "$out/net.tsv"
done
echo "netns-cluster: bytes on each host's link ($out/net.tsv):"
column -t "$out/net.tsv" 2> /dev/null || cat "$out/net.tsv"
exit "$status"
