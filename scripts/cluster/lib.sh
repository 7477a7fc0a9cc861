# shellcheck shell=bash
# Shared by scripts/cluster/*.sh (sourced, not run). Throwaway NATS and
# PostgreSQL instances for the cluster tests and `make cluster-demo`:
# loopback only, a free port, all state in one directory that `stop` removes.
# Messages go to stderr; stdout carries only the URL that `start` prints.

# A directory is ours only if it holds this marker: `start` and `stop`
# remove the whole directory, so they refuse one without it (unless empty).
MARKER=.syncreel-throwaway
# Bounded waits: this many tenths of a second at most.
# shellcheck disable=SC2034 # used by the scripts that source this
READY_TENTHS=${CLUSTER_READY_TENTHS:-200}

say() { printf '[%s] %s\n' "$NAME" "$*" >&2; }
die() { say "error: $*"; exit 1; }

usage() {
  echo "usage: $0 start|stop <dir>" >&2
  exit 2
}

# A port nobody listens on right now (the kernel's pick). Another process
# can take it before we bind it, so callers retry a failed start.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# abs_dir DIR: DIR made absolute (it need not exist yet).
abs_dir() {
  case "$1" in
    /*) printf '%s\n' "${1%/}" ;;
    *) printf '%s/%s\n' "$PWD" "${1%/}" ;;
  esac
}

# check_ours DIR: fail unless DIR is absent, empty, or marked as ours.
check_ours() {
  local d=$1
  if [ -z "$d" ] || [ "$d" = / ]; then die "refusing directory '$d'"; fi
  if [ -e "$d" ] && [ ! -d "$d" ]; then die "$d exists and is not a directory"; fi
  if [ -d "$d" ] && [ ! -f "$d/$MARKER" ] && [ -n "$(ls -A "$d")" ]; then
    die "$d is not empty and was not made by $NAME (no $MARKER): not touching it"
  fi
}

# alive PID NAME [ARG]: PID is a running process whose command name is NAME
# and, with ARG, whose command line contains ARG (our directory), so that a
# stale pid file never makes us signal somebody else's process. A zombie
# (exited, not yet reaped by whoever inherited it) is not alive.
alive() {
  [ -n "$1" ] && [ -r "/proc/$1/comm" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] || return 1
  ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null || return 1
  [ -z "${3:-}" ] || tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$3"
}

# wait_gone PID NAME TENTHS [ARG]: wait at most TENTHS/10 s for PID to exit.
wait_gone() {
  local i
  for ((i = 0; i < $3; i++)); do
    alive "$1" "$2" "${4:-}" || return 0
    sleep 0.1
  done
  ! alive "$1" "$2" "${4:-}"
}

# log_tail FILE: the end of a log, for a failure message.
log_tail() {
  if [ -f "$1" ]; then
    say "last lines of $1:"
    tail -n 20 "$1" | sed 's/^/    /' >&2
  fi
}

# stop: stops the script's server (its own `stop_server`) and removes its
# directory; nothing to stop is no error.
# shellcheck disable=SC2154 # `dir` is set by the script that sources this
stop() {
  if [ ! -e "$dir" ]; then
    say "$dir does not exist: nothing to stop"
    return 0
  fi
  check_ours "$dir"
  stop_server
  rm -rf "$dir"
  say "stopped, $dir removed"
}

# run_command CMD: what every script does with its first argument, given
# its own `start` and `stop_server` and the `dir` it works in.
run_command() {
  case "$1" in
    start) start ;;
    stop) stop ;;
    *) usage ;;
  esac
}
