#!/usr/bin/env bash
# Installs what SyncReel needs to build, run and test, and nothing twice.
# Safe to run again: each step checks before it acts. Runs as root without a
# TTY (CI), or through sudo when not root.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# System packages: GStreamer 1.22 (headers to build against, plugins to
# decode, encode, overlay and mux), Chromium for the browser tests, Node.js
# for Playwright, pkg-config and a C toolchain for -sys crates. NATS
# (JetStream) and PostgreSQL (15 on Debian 12) for the cluster tests
# (issue 14, docs/cluster.md): scripts/cluster/ runs throwaway instances of
# both, and checks them with curl. Debian's postgresql package also creates
# and starts its own `main` cluster on port 5432; our scripts do not use it.
packages=(
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools gstreamer1.0-x
  fonts-dejavu-core
  chromium pkg-config build-essential ca-certificates
  python3 python3-venv
  nats-server postgresql curl
)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  say "system packages present"
fi

# Rust: the machine's toolchain, with the components the checks use.
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    say "cargo not found: install Rust (https://rustup.rs) and run again"; exit 1
  fi
fi
if command -v rustup >/dev/null 2>&1; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c" || true
  done
fi

# Crates: fetch once, so that later builds work from the lock file.
cargo fetch --locked >/dev/null 2>&1 || cargo fetch --locked

# npm packages for the browser tests (playwright-core drives Debian's
# Chromium; no browser download).
if [ -f web-client/package-lock.json ]; then
  stamp=web-client/node_modules/.lock-stamp
  if [ ! -f "$stamp" ] || ! cmp -s web-client/package-lock.json "$stamp"; then
    say "installing npm packages"
    (cd web-client && npm ci --no-audit --no-fund --loglevel=error)
    cp web-client/package-lock.json "$stamp"
  else
    say "npm packages present"
  fi
fi

# OpenTimelineIO and its CMX3600 adapter, from PyPI, in a venv of our own
# (Debian's Python is externally managed): the export tests read our EDL
# and OTIO files back with it.
otio_venv=.venv-otio
if [ -x "$otio_venv/bin/python" ] && "$otio_venv/bin/python" -c 'import opentimelineio, otio_cmx3600_adapter' 2>/dev/null; then
  say "OpenTimelineIO present"
else
  say "installing OpenTimelineIO into $otio_venv"
  python3 -m venv "$otio_venv"
  "$otio_venv/bin/pip" install -q --disable-pip-version-check opentimelineio otio-cmx3600-adapter
fi

say "done"
