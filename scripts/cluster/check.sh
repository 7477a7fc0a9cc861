#!/usr/bin/env bash
# `make cluster-check` (part of `make test`): the throwaway NATS and
# PostgreSQL of scripts/cluster/ start, answer, stop and leave nothing
# behind. Fails if either does not come up. Takes a few seconds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
NAME=cluster-check
# shellcheck source=scripts/cluster/lib.sh
. "$here/lib.sh"

t0=$(date +%s.%N)
top=$(mktemp -d "${TMPDIR:-/tmp}/syncreel-cluster-check.XXXXXX")
# The postgres user must reach <dir> (we run as root, it does not).
chmod 755 "$top"
nats_dir=$top/nats
pg_dir=$top/pg

cleanup() {
  bash "$here/nats.sh" stop "$nats_dir" 2>/dev/null || true
  bash "$here/postgres.sh" stop "$pg_dir" 2>/dev/null || true
  rm -rf "$top"
}
trap cleanup EXIT

# NATS: up, JetStream on with its store in our directory (/varz), and a
# real round trip over the client port in the NATS text protocol: a
# publish reaches a subscription, and the JetStream API answers a request.
nats_url=$(bash "$here/nats.sh" start "$nats_dir") || die "NATS did not start"
[[ $nats_url =~ ^nats://127\.0\.0\.1:[0-9]+$ ]] || die "unexpected NATS URL '$nats_url'"
mon=$(cat "$nats_dir/monitor_url")
curl -fsS --max-time 5 "$mon/varz" | python3 -c '
import json, sys
v = json.load(sys.stdin)
sd = v.get("jetstream", {}).get("config", {}).get("store_dir", "")
assert sd.startswith(sys.argv[1]), "JetStream not enabled in our store: %r" % sd
assert v.get("host") == "127.0.0.1", "listening on %r, not loopback" % v.get("host")
' "$nats_dir/js" || die "NATS /varz check failed"
python3 - "${nats_url#nats://}" <<'PY' || die "NATS publish/subscribe or JetStream request failed"
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=5)
f = s.makefile("rb")
assert f.readline().startswith(b"INFO "), "no INFO from server"
s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\n'
          b"SUB check.ping 1\r\nSUB _INBOX.check 2\r\n"
          b"PUB check.ping 5\r\nhello\r\n"
          b"PUB $JS.API.INFO _INBOX.check 0\r\n\r\nPING\r\n")
got_msg = got_js = False
deadline = time.time() + 5
while not (got_msg and got_js) and time.time() < deadline:
    line = f.readline()
    if not line:
        break
    if line.startswith(b"MSG "):
        parts = line.split()
        payload = f.read(int(parts[-1]) + 2)
        if parts[1] == b"check.ping":
            got_msg = payload.startswith(b"hello")
        elif parts[1] == b"_INBOX.check":
            got_js = b"account_info_response" in payload and b'"error"' not in payload
    elif line.startswith(b"-ERR"):
        sys.exit("server error: %r" % line)
assert got_msg, "published message not received"
assert got_js, "no JetStream account info reply"
PY
say "NATS answers: pub/sub round trip and JetStream API at $nats_url"

# PostgreSQL: up, and the printed URL logs in as syncreel to its database,
# listening on loopback only.
pg_url=$(bash "$here/postgres.sh" start "$pg_dir") || die "PostgreSQL did not start"
[[ $pg_url =~ ^postgres://syncreel@127\.0\.0\.1:[0-9]+/syncreel$ ]] || die "unexpected PostgreSQL URL '$pg_url'"
got=$(psql -X -tA -v ON_ERROR_STOP=1 "$pg_url" \
  -c "SELECT 1, current_user, current_database(), current_setting('listen_addresses')" 2>&1) ||
  die "psql against $pg_url failed: $got"
[ "$got" = "1|syncreel|syncreel|127.0.0.1" ] || die "unexpected answer from PostgreSQL: '$got'"
say "PostgreSQL answers: SELECT 1 as syncreel at $pg_url"

# Stop both; their directories and processes must be gone.
nats_pid=$(cat "$nats_dir/nats.pid")
pg_pid=$(head -n 1 "$pg_dir/pg/postmaster.pid")
bash "$here/nats.sh" stop "$nats_dir"
bash "$here/postgres.sh" stop "$pg_dir"
[ ! -e "$nats_dir" ] || die "$nats_dir still there after stop"
[ ! -e "$pg_dir" ] || die "$pg_dir still there after stop"
! alive "$nats_pid" nats-server || die "nats-server $nats_pid still running after stop"
! alive "$pg_pid" postgres || die "postgres $pg_pid still running after stop"

say "ok in $(python3 -c "import sys; print('%.1f' % ($(date +%s.%N) - $t0))") s"
