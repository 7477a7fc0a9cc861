#!/bin/bash
# What N media sessions that nobody watches cost the server process: RSS
# and threads from /proc before and after (docs/benchmarks.md, "Idle
# session cost"). Usage: scripts/idle-cost.sh BIN CLIP.mov [N]
# BIN is a built `syncreel`; CLIP any reviewable file (`syncreel demo`
# writes one to <data_dir>/media/demo.mov).
set -euo pipefail
BIN=$1; CLIP=$2; N=${3:-40}
D=$(mktemp -d); mkdir -p "$D/media"; cp "$CLIP" "$D/media/clip.mov"
SYNCREEL_SERVER__ADMIN_TOKEN=tok RUST_LOG=syncreel=warn \
  "$BIN" serve --bind 127.0.0.1:0 --data-dir "$D" > "$D/log" 2>&1 &
PID=$!
trap 'kill $PID; wait $PID 2>/dev/null || true; rm -rf "$D"' EXIT
for _ in $(seq 1 100); do grep -q listening "$D/log" && break; sleep 0.1; done
ADDR=$(grep -o 'http://[0-9.:]*' "$D/log" | head -1)
usage() { echo "$1: rss $(awk '/VmRSS/{print $2}' /proc/$PID/status) KiB, threads $(ls /proc/$PID/task | wc -l)"; }
create() {
  curl -sf -o /dev/null -H 'authorization: Bearer tok' -H 'content-type: application/json' \
    -d "{\"title\":\"idle $1\",\"media\":\"clip.mov\"}" "$ADDR/api/sessions"
}
# The first media session loads GStreamer's plugins: once per process.
create 0
sleep 12  # Tokio's idle blocking threads (the probe's) go after 10 s.
usage "baseline, one media session"
for i in $(seq 1 "$N"); do create "$i"; done
sleep 12
usage "after $N more"
echo "load $(cat /proc/loadavg)"
