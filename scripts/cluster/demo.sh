#!/usr/bin/env bash
# `make cluster-demo`: a SyncReel cluster on this machine. A throwaway
# JetStream nats-server and PostgreSQL (scripts/cluster/{nats,postgres}.sh),
# then three nodes on loopback sharing them and one media root: node A
# runs `syncreel demo` (it makes the demo sessions and owns them), B and C
# plain `serve`. The links printed land on different nodes: the host's on
# A, the reviewer's on B, the viewer's on C, so two of the three are
# relayed to A (docs/cluster.md, "Gateways"). Kill A (its pid is printed)
# to watch the others take the review over. Ctrl-C stops everything and
# removes the temporary directory.
#
# Environment: SYNCREEL_BIN (default target/release/syncreel),
# CLUSTER_DEMO_PORTS (default "8081 8082 8083"), CLUSTER_DEMO_HOST
# (default 127.0.0.1).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${SYNCREEL_BIN:-$root/target/release/syncreel}
read -r -a ports <<<"${CLUSTER_DEMO_PORTS:-8081 8082 8083}"
host=${CLUSTER_DEMO_HOST:-127.0.0.1}
[[ -x $bin ]] || { echo "cluster-demo: no $bin; run make release first" >&2; exit 1; }
[[ ${#ports[@]} -eq 3 ]] || { echo "cluster-demo: CLUSTER_DEMO_PORTS needs three ports" >&2; exit 2; }

dir=$(mktemp -d /tmp/syncreel-cluster-demo.XXXXXX)
# PostgreSQL runs as the postgres user when we are root: it must reach dir.
chmod 755 "$dir"
pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  bash "$here/nats.sh" stop "$dir/nats" || true
  bash "$here/postgres.sh" stop "$dir/pg" || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

nats=$(bash "$here/nats.sh" start "$dir/nats")
pg=$(bash "$here/postgres.sh" start "$dir/pg")
echo "NATS       $nats"
echo "PostgreSQL $pg"
mkdir -p "$dir/media"

# node NAME PORT COMMAND: starts a node in the background, its output in
# $dir/NAME.log.
node() {
  local name=$1 port=$2 command=$3
  SYNCREEL_CLUSTER__NODE_ID=$name SYNCREEL_MEDIA__ROOT=$dir/media \
    "$bin" "$command" --bind "$host:$port" --data-dir "$dir/$name" \
    --cluster "$nats" --store "$pg" >"$dir/$name.log" 2>&1 &
  pids+=($!)
  echo "node $name  http://$host:$port  pid $!  log $dir/$name.log"
}

# until_logged NAME PATTERN TENTHS [COUNT]: waits (bounded) for COUNT
# (default 1) lines matching PATTERN in the node's log.
until_logged() {
  local i
  for ((i = 0; i < $3; i++)); do
    (($(grep -c "$2" "$dir/$1.log" 2>/dev/null || true) >= ${4:-1})) && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$dir/$1.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "cluster-demo: node $1 did not say \"$2\"; its log:" >&2
  cat "$dir/$1.log" >&2
  exit 1
}

# A first: it makes the demo clips (a minute or two) and both sessions.
node node-a "${ports[0]}" demo
until_logged node-a '^viewer ' 3000 2
node node-b "${ports[1]}" serve
until_logged node-b '^listening on' 300
node node-c "${ports[2]}" serve
until_logged node-c '^listening on' 300

# Each session's links, moved to the node they should land on.
echo
awk -v a="${ports[0]}" -v b="${ports[1]}" -v c="${ports[2]}" '
  /^session / { print; next }
  /^host / { print "host on A      " $2; next }
  /^reviewer / { sub(":" a "/", ":" b "/", $2); print "reviewer on B  " $2; next }
  /^viewer / { sub(":" a "/", ":" c "/", $2); print "viewer on C    " $2; next }
' "$dir/node-a.log"
echo
echo "Node A owns the sessions; B and C relay their participants to it."
echo "Try: kill -9 ${pids[0]} (node A): the pages on B and C reconnect and"
echo "one of those nodes takes the review over within a few seconds."
echo "Ctrl-C stops the cluster."
wait "${pids[@]}"
