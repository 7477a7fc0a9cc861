#!/usr/bin/env bash
# A throwaway NATS server with JetStream, for the cluster tests and
# `make cluster-demo`.
#
#   scripts/cluster/nats.sh start <dir>   prints nats://127.0.0.1:PORT
#   scripts/cluster/nats.sh stop <dir>    stops it and removes <dir>
#
# Loopback only. The client and monitoring ports are the kernel's pick
# (-p -1 -m -1) and read back from the ports file nats-server writes, so no
# port can be taken between choosing and binding it. In <dir>: js/ (the
# JetStream store), nats.log (and nats.out: what it printed before
# logging to nats.log), nats.pid, url (the client URL) and
# monitor_url (http://127.0.0.1:PORT: /healthz, /varz, /jsz).
# A <dir> left by a crashed run is cleaned up (its server stopped) first.
set -euo pipefail
NAME=nats
# shellcheck source=scripts/cluster/lib.sh
. "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || usage
cmd=$1
dir=$(abs_dir "$2")

stop_server() {
  local pid
  pid=$(cat "$dir/nats.pid" 2>/dev/null || true)
  if alive "$pid" nats-server "$dir/js"; then
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" nats-server 100 "$dir/js"; then
      say "nats-server $pid did not stop in 10 s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" nats-server 50 "$dir/js" || die "nats-server $pid will not die"
    fi
  fi
}

start() {
  command -v nats-server >/dev/null 2>&1 || die "nats-server not found: run scripts/setup.sh"
  command -v curl >/dev/null 2>&1 || die "curl not found: run scripts/setup.sh"
  check_ours "$dir"
  if [ -f "$dir/$MARKER" ]; then
    say "$dir is left from an earlier run: stopping and clearing it"
    stop_server
    rm -rf "$dir"
  fi
  mkdir -p "$dir/js"
  touch "$dir/$MARKER"

  # Detached from this shell (setsid), so it outlives the script.
  setsid nats-server -js -sd "$dir/js" -a 127.0.0.1 -p -1 -m -1 \
    --ports_file_dir "$dir" -P "$dir/nats.pid" -l "$dir/nats.log" \
    </dev/null >>"$dir/nats.out" 2>&1 &
  local pid=$! i ports="" url="" mon=""
  for ((i = 0; i < READY_TENTHS; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log_tail "$dir/nats.out"
      log_tail "$dir/nats.log"
      die "nats-server exited during start"
    fi
    ports=$(cat "$dir"/nats-server_"$pid".ports 2>/dev/null || true)
    if [ -n "$ports" ]; then
      url=$(grep -o 'nats://127\.0\.0\.1:[0-9]*' <<<"$ports" | head -n 1 || true)
      mon=$(grep -o 'http://127\.0\.0\.1:[0-9]*' <<<"$ports" | head -n 1 || true)
      if [ -n "$url" ] && [ -n "$mon" ] &&
        curl -fsS --max-time 1 "$mon/healthz?js-enabled-only=true" >/dev/null 2>&1; then
        break
      fi
    fi
    sleep 0.1
  done
  if [ "$i" -ge "$READY_TENTHS" ]; then
    log_tail "$dir/nats.out"
    log_tail "$dir/nats.log"
    kill -TERM "$pid" 2>/dev/null || true
    die "nats-server not ready within $((READY_TENTHS / 10)) s (ports file: ${ports:-none})"
  fi
  printf '%s\n' "$url" >"$dir/url"
  printf '%s\n' "$mon" >"$dir/monitor_url"
  say "ready: $url (pid $pid, monitoring $mon, store $dir/js)"
  printf '%s\n' "$url"
}

run_command "$cmd"
