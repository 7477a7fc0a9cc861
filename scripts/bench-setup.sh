#!/usr/bin/env bash
# Installs what the benchmarks need beyond scripts/setup.sh: Janus, the SFU
# that benches/rtc_fanout.rs compares SyncReel's WebRTC fan-out against.
# CI does not run that benchmark, so `make test` does not call this script.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[bench-setup]\033[0m %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian's package (1.1.2 in bookworm) ships the gateway, its plugins and
# transports. The benchmark starts Janus itself with a configuration of its
# own, so the packaged service is not needed.
if dpkg-query -W -f='${Status}' janus 2>/dev/null | grep -q "install ok installed"; then
  say "janus present: $(dpkg-query -W -f='${Version}' janus)"
else
  say "installing janus"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends janus
fi
# Stop a packaged instance if an init system started one: it would take
# CPU during the measurement.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet janus 2>/dev/null; then
  say "stopping the packaged janus service"
  as_root systemctl stop janus || true
fi
command -v janus >/dev/null 2>&1 || { say "janus not on PATH after install"; exit 1; }
say "done"
