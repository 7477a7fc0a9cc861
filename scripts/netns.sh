#!/usr/bin/env bash
# Test hosts in network namespaces, for the browser benchmarks
# (web-client/bench/video-bench.mjs). Needs root (ip netns, tc).
#
# Host N is the namespace `srbench<N>` (N = 1…250). It is joined to the
# root namespace by a veth pair:
#
#   root namespace  srb<N>h  10.77.<N>.1/24  <-->  srb<N>n  10.77.<N>.2/24  in srbench<N>
#
# The namespace's default route points at 10.77.<N>.1, so every address of
# the root namespace (every host's .1, and so every host candidate the
# server offers on a veth) is reachable from it. Nothing is forwarded or
# NATed: traffic only ever flows between a namespace and the root one.
#
# DELAY_MS is added to *both* directions, so each direction gets DELAY_MS
# one way and the round trip gains 2 × DELAY_MS. A symmetric delay keeps
# NTP-style clock sync unbiased (it can only see the round trip).
#
# Two ways to add it (NETNS_MODE=auto tries the first, then the second):
#   netem  `tc qdisc replace ... root netem delay DELAY_MSms` on the egress
#          of both veth ends; 0 means no qdisc.
#   tun    for kernels without sch_netem (CONFIG_NET_SCH_NETEM unset, as on
#          the benchmark VM): the pair is two TUN devices instead of a veth,
#          srb<N>h in the root namespace and srb<N>n moved into srbench<N>,
#          and a small Python "delay wire" (started here, pid in
#          $RUN_DIR/srbench<N>.pid) copies every packet from one to the other
#          DELAY_MS after it read it. Same addresses and routes. The wire adds
#          its own scheduling delay (well under 1 ms idle, a few ms on a busy
#          machine) on top of DELAY_MS, also at 0.
#
# Usage:
#   scripts/netns.sh up N DELAY_MS        create or update host N (idempotent)
#   scripts/netns.sh down N               remove host N (idempotent)
#   scripts/netns.sh down-all             remove every srbench* host
#   scripts/netns.sh status               list hosts, addresses and qdiscs
#   scripts/netns.sh wrapper N PATH [BIN] write an executable at PATH that
#                                         runs BIN (default /usr/bin/chromium)
#                                         inside host N, for playwright's
#                                         executablePath
#   scripts/netns.sh exec N CMD...        run CMD inside host N
#
# In a script, clean up whatever happens:
#   trap 'scripts/netns.sh down-all' EXIT
#   scripts/netns.sh up 1 50
set -euo pipefail

IP=${IP:-/usr/sbin/ip}
TC=${TC:-/usr/sbin/tc}
PYTHON=${PYTHON:-python3}
NETNS_MODE=${NETNS_MODE:-auto}
RUN_DIR=${RUN_DIR:-/run/syncreel-netns}
PREFIX=srbench

die() { echo "netns.sh: $*" >&2; exit 1; }

check_n() {
  [[ "${1:-}" =~ ^[0-9]+$ ]] && (( $1 >= 1 && $1 <= 250 )) || die "host number must be 1…250, got '${1:-}'"
}

ns_exists() { "$IP" netns list | awk '{print $1}' | grep -qx "$1"; }

# The delay wire: two TUN devices, every packet read from one is written
# to the other DELAY_MS later (a FIFO per direction: the delay is fixed, so
# order is kept). Runs until killed; its fds closing removes the devices.
WIRE_PY='
import fcntl, os, select, struct, sys, time
from collections import deque
TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000
def tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd
a, b, delay = tun(sys.argv[1]), tun(sys.argv[2]), float(sys.argv[3]) / 1000
try:
    os.nice(-10)
except OSError:
    pass
out = {a: b, b: a}
queues = {a: deque(), b: deque()}
print("ready", flush=True)
while True:
    now = time.monotonic()
    due = [q[0][0] for q in queues.values() if q]
    timeout = max(0.0, min(due) - now) if due else 1.0
    ready, _, _ = select.select([a, b], [], [], timeout)
    now = time.monotonic()
    for fd in ready:
        for _ in range(256):
            try:
                pkt = os.read(fd, 65535)
            except BlockingIOError:
                break
            queues[fd].append((now + delay, pkt))
    now = time.monotonic()
    for src, q in queues.items():
        while q and q[0][0] <= now:
            try:
                os.write(out[src], q.popleft()[1])
            except OSError:
                pass
'

netem_works() {
  # Probed on the new veth itself, never on an interface someone else uses.
  "$TC" qdisc replace dev "$1" root netem delay 1ms >/dev/null 2>&1 && "$TC" qdisc del dev "$1" root >/dev/null 2>&1
}

up() {
  local n=$1 delay=$2
  check_n "$n"
  [[ "$delay" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "delay must be a number of ms, got '$delay'"
  local ns=$PREFIX$n host=srb${n}h peer=srb${n}n mode=$NETNS_MODE
  # Start from nothing: an earlier run may have left a half-made host, or
  # one of the other kind.
  down "$n"
  "$IP" netns add "$ns"
  "$IP" -n "$ns" link set lo up
  if [[ "$mode" != tun ]]; then
    "$IP" link add "$host" type veth peer name "$peer" netns "$ns"
    if ! netem_works "$host"; then
      [[ "$mode" == netem ]] && { down "$n"; die "this kernel has no netem (tc: unknown qdisc); try NETNS_MODE=tun"; }
      "$IP" link del "$host"
      mode=tun
    else
      mode=netem
    fi
  fi
  if [[ "$mode" == tun ]]; then
    mkdir -p "$RUN_DIR"
    local log=$RUN_DIR/$ns.log
    setsid "$PYTHON" -c "$WIRE_PY" "$host" "$peer" "$delay" >"$log" 2>&1 </dev/null &
    echo $! >"$RUN_DIR/$ns.pid"
    local i
    for i in $(seq 1 100); do
      grep -q ready "$log" 2>/dev/null && break
      kill -0 "$(cat "$RUN_DIR/$ns.pid")" 2>/dev/null || { cat "$log" >&2; die "the delay wire for $ns did not start"; }
      sleep 0.05
    done
    grep -q ready "$log" || die "the delay wire for $ns did not start within 5 s"
    "$IP" link set "$peer" netns "$ns"
  fi
  "$IP" addr replace "10.77.$n.1/24" dev "$host"
  "$IP" link set "$host" up
  "$IP" -n "$ns" addr replace "10.77.$n.2/24" dev "$peer"
  "$IP" -n "$ns" link set "$peer" up
  "$IP" -n "$ns" route replace default via "10.77.$n.1" dev "$peer" onlink
  if [[ "$mode" == netem && "$delay" != 0 && "$delay" != 0.0 ]]; then
    # The default netem limit (1000 packets) is ample for a 2.5 Mb/s stream at 150 ms.
    "$TC" qdisc replace dev "$host" root netem delay "${delay}ms"
    "$TC" -n "$ns" qdisc replace dev "$peer" root netem delay "${delay}ms"
  fi
  echo "$ns: 10.77.$n.2 <-> 10.77.$n.1, ${delay} ms each way ($mode)"
}

down() {
  local n=$1
  check_n "$n"
  local pidfile=$RUN_DIR/$PREFIX$n.pid
  if [[ -f "$pidfile" ]]; then
    # Only the wire this script started, by its recorded pid.
    local pid
    pid=$(cat "$pidfile")
    if [[ -n "$pid" ]] && grep -q "WIRE_PY\|TUNSETIFF\|python" "/proc/$pid/cmdline" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.02; done
    fi
    rm -f "$pidfile" "$RUN_DIR/$PREFIX$n.log"
  fi
  "$IP" link del "srb${n}h" >/dev/null 2>&1 || true
  "$IP" netns del "$PREFIX$n" >/dev/null 2>&1 || true
}

down_all() {
  local ns
  for ns in $("$IP" netns list | awk '{print $1}' | grep "^$PREFIX[0-9]\+$" || true); do
    down "${ns#"$PREFIX"}"
  done
}

status() {
  local ns n
  for ns in $("$IP" netns list | awk '{print $1}' | grep "^$PREFIX[0-9]\+$" || true); do
    n=${ns#"$PREFIX"}
    echo "$ns: $("$IP" -n "$ns" -brief addr show "srb${n}n" 2>/dev/null | tr -s ' ')"
    echo "  root side: $("$IP" -brief addr show "srb${n}h" 2>/dev/null | tr -s ' ')"
    echo "  qdisc root side: $("$TC" qdisc show dev "srb${n}h" 2>/dev/null | head -1)"
    echo "  qdisc ns side:   $("$TC" -n "$ns" qdisc show dev "srb${n}n" 2>/dev/null | head -1)"
    [[ -f "$RUN_DIR/$ns.pid" ]] && echo "  delay wire: pid $(cat "$RUN_DIR/$ns.pid")"
  done
}

wrapper() {
  local n=$1 path=$2 bin=${3:-/usr/bin/chromium}
  check_n "$n"
  cat >"$path" <<EOF
#!/bin/sh
exec $IP netns exec $PREFIX$n $bin "\$@"
EOF
  chmod +x "$path"
}

cmd=${1:-}
shift || true
case "$cmd" in
  up) [[ $# -eq 2 ]] || die "usage: up N DELAY_MS"; up "$1" "$2" ;;
  down) [[ $# -eq 1 ]] || die "usage: down N"; down "$1" ;;
  down-all) down_all ;;
  status) status ;;
  wrapper) [[ $# -ge 2 ]] || die "usage: wrapper N PATH [BIN]"; wrapper "$@" ;;
  exec) [[ $# -ge 2 ]] || die "usage: exec N CMD..."; n=$1; shift; check_n "$n"; exec "$IP" netns exec "$PREFIX$n" "$@" ;;
  *) sed -n '2,44p' "$0" >&2; exit 2 ;;
esac
