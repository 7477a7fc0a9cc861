#!/usr/bin/env bash
# A throwaway PostgreSQL cluster, for the cluster tests and
# `make cluster-demo`.
#
#   scripts/cluster/postgres.sh start <dir>   prints postgres://syncreel@127.0.0.1:PORT/syncreel
#   scripts/cluster/postgres.sh stop <dir>    stops it and removes <dir>
#
# initdb in <dir>/pg (as the `postgres` user when we are root: initdb and
# pg_ctl refuse root), trust authentication for loopback TCP and the unix
# socket (which lives in <dir>) and nothing else, listening on 127.0.0.1
# only, on a free port. A `syncreel` role owns a `syncreel` database. In
# <dir>: pg/ (the data), postgres.log, url. fsync is off: the data is
# thrown away, and a test kills nodes, not the machine.
# A <dir> left by a crashed run is cleaned up (its server stopped) first.
# <dir> and its parents must be reachable by the postgres user (o+x).
set -euo pipefail
NAME=postgres
# shellcheck source=scripts/cluster/lib.sh
. "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || usage
cmd=$1
dir=$(abs_dir "$2")
data=$dir/pg
log=$dir/postgres.log

# The server's binaries: Debian keeps them out of PATH, in
# /usr/lib/postgresql/<version>/bin. pg_config says which; else the newest.
find_bindir() {
  local b
  b=$(pg_config --bindir 2>/dev/null || true)
  if [ -n "$b" ] && [ -x "$b/initdb" ] && [ -x "$b/pg_ctl" ]; then
    printf '%s\n' "$b"
    return
  fi
  b=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$b" ] && [ -x "$b/initdb" ]; then
    printf '%s\n' "$b"
    return
  fi
  die "PostgreSQL server binaries (initdb, pg_ctl) not found: run scripts/setup.sh"
}
bin=$(find_bindir)

# as_pg CMD...: run as the postgres user when we are root, from / (the
# postgres user may not be able to enter the current directory).
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

postmaster_pid() {
  head -n 1 "$data/postmaster.pid" 2>/dev/null || true
}

stop_server() {
  local pid
  pid=$(postmaster_pid)
  alive "$pid" postgres "$data" || return 0
  as_pg "$bin/pg_ctl" stop -D "$data" -m fast -w -t 10 >/dev/null 2>&1 ||
    as_pg "$bin/pg_ctl" stop -D "$data" -m immediate -w -t 5 >/dev/null 2>&1 || true
  if ! wait_gone "$pid" postgres 20 "$data"; then
    say "postgres $pid did not stop: killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" postgres 50 "$data" || die "postgres $pid will not die"
  fi
}

start() {
  [ "$(id -u)" -ne 0 ] || getent passwd postgres >/dev/null ||
    die "no postgres user (it comes with Debian's postgresql): run scripts/setup.sh"
  check_ours "$dir"
  # The socket is <dir>/.s.PGSQL.<port>; unix socket paths stop at 107 bytes.
  [ "${#dir}" -le 90 ] || die "$dir is too long for PostgreSQL's socket (at most 90 characters)"
  if [ -f "$dir/$MARKER" ]; then
    say "$dir is left from an earlier run: stopping and clearing it"
    stop_server
    rm -rf "$dir"
  fi
  mkdir -p "$dir"
  touch "$dir/$MARKER"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$dir"
    runuser -u postgres -- test -w "$dir" ||
      die "the postgres user cannot write $dir: make its parents reachable (chmod o+x)"
  fi

  as_pg "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
    >"$dir/initdb.log" 2>&1 || {
    log_tail "$dir/initdb.log"
    die "initdb failed"
  }
  # Only loopback and the socket, trusted; no other host may connect.
  cat >"$data/pg_hba.conf" <<'HBA'
# Throwaway test cluster (scripts/cluster/postgres.sh): loopback only.
local all all              trust
host  all all 127.0.0.1/32 trust
HBA
  cat >>"$data/postgresql.conf" <<'CONF'
# scripts/cluster/postgres.sh: throwaway data.
fsync = off
full_page_writes = off
CONF

  # A free port; if someone takes it before the server binds it, try
  # another (at most 3 times).
  local port="" i ready="" exited=""
  for _ in 1 2 3; do
    port=$(free_port)
    as_pg "$bin/pg_ctl" start -D "$data" -l "$log" -W \
      -o "-k $dir -h 127.0.0.1 -p $port" >/dev/null 2>&1 || {
      log_tail "$log"
      die "pg_ctl start failed"
    }
    ready="" exited=""
    for ((i = 0; i < READY_TENTHS; i++)); do
      if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 1 >/dev/null 2>&1; then
        ready=1
        break
      fi
      # pg_ctl -W returns at once; the postmaster writes its pid file soon
      # after. Gone after a second means it exited.
      if [ "$i" -ge 10 ] && ! alive "$(postmaster_pid)" postgres "$data"; then
        exited=1
        break
      fi
      sleep 0.1
    done
    [ -z "$ready" ] || break
    if grep -qi 'could not bind\|address already in use' "$log" 2>/dev/null; then
      say "port $port was taken: trying another"
      continue
    fi
    break
  done
  if [ -z "$ready" ]; then
    log_tail "$log"
    stop_server
    [ -z "$exited" ] || die "PostgreSQL exited during start (port $port)"
    die "PostgreSQL not ready within $((READY_TENTHS / 10)) s on 127.0.0.1:$port"
  fi

  "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres \
    -c 'CREATE ROLE syncreel LOGIN' -c 'CREATE DATABASE syncreel OWNER syncreel' >&2 || {
    log_tail "$log"
    stop_server
    die "could not create the syncreel role and database"
  }
  local url="postgres://syncreel@127.0.0.1:$port/syncreel"
  printf '%s\n' "$url" >"$dir/url"
  say "ready: $url (pid $(postmaster_pid), data $data, log $log)"
  printf '%s\n' "$url"
}

run_command "$cmd"
