#!/usr/bin/env bash
# Upload throughput on loopback against `cp` of the same file on the same
# disk, and the server's CPU per GB (docs/benchmarks.md, "Uploads").
#
#   scripts/bench-upload.sh [SIZE_MIB] [CHUNK_MIB]
#
# SYNCREEL_BIN picks the binary (default target/release/syncreel). The
# file is a short GStreamer clip padded with random bytes in a `free` atom,
# so the server's probe passes; it, the staging area and the media root
# all live in one temporary directory on the same disk.
set -euo pipefail

size_mib=${1:-1024}
chunk_mib=${2:-64}
bin=${SYNCREEL_BIN:-target/release/syncreel}
work=$(mktemp -d "${TMPDIR:-/tmp}/syncreel-bench-upload.XXXXXX")
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

gst-launch-1.0 -q videotestsrc num-buffers=24 ! video/x-raw,width=160,height=90,framerate=24/1 \
  ! x264enc ! qtmux ! filesink location="$work/base.mov"
base=$(stat -c %s "$work/base.mov")
pad=$((size_mib * 1048576 - base))
{
  cat "$work/base.mov"
  printf '%b' "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((pad >> 24 & 255)) $((pad >> 16 & 255)) $((pad >> 8 & 255)) $((pad & 255)))"
  printf free
  head -c $((pad - 8)) /dev/urandom
} >"$work/file.mov"
bytes=$(stat -c %s "$work/file.mov")
sync

now() { date +%s.%N; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

start=$(now)
cp "$work/file.mov" "$work/copy.mov"
sync
cp_secs=$(echo "$(now) - $start" | bc -l)
rm "$work/copy.mov"
sync

SYNCREEL_SERVER__ADMIN_TOKEN=bench SYNCREEL_UPLOADS__RESERVE_FREE_BYTES=0 RUST_LOG=syncreel=warn \
  "$bin" serve --bind 127.0.0.1:0 --data-dir "$work/data" >"$work/log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do grep -q listening "$work/log" && break; sleep 0.1; done
url=$(grep -o 'http://[0-9.:]*' "$work/log" | head -1)
cpu_before=$(ticks "$server_pid")
start=$(now)
"$bin" upload "$work/file.mov" --server "$url" --item Bench --token bench \
  --state-dir "$work/state" --chunk-mib "$chunk_mib" >"$work/version" 2>/dev/null
up_secs=$(echo "$(now) - $start" | bc -l)
cpu_secs=$(echo "($(ticks "$server_pid") - $cpu_before) / $hz" | bc -l)
gb=$(echo "$bytes / 1000000000" | bc -l)

printf 'file           %d MiB, chunks of %d MiB (%s)\n' "$size_mib" "$chunk_mib" "$bin"
printf 'cp + sync      %6.2f s  %7.1f MB/s\n' "$cp_secs" "$(echo "$bytes / $cp_secs / 1000000" | bc -l)"
printf 'upload         %6.2f s  %7.1f MB/s  (client hash, send, server hash + probe + rename)\n' \
  "$up_secs" "$(echo "$bytes / $up_secs / 1000000" | bc -l)"
printf 'upload / cp    %6.2f x the time\n' "$(echo "$up_secs / $cp_secs" | bc -l)"
printf 'server CPU     %6.2f s per GB\n' "$(echo "$cpu_secs / $gb" | bc -l)"
printf 'version        %s\n' "$(cut -d' ' -f1-3 "$work/version")"
