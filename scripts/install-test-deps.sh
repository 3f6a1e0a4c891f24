#!/usr/bin/env bash
# install-test-deps.sh — installs the real servers and the browser that the
# test suite runs against, when they are missing:
#   - Consul v1.14.5, built from the Go module proxy into .tools/bin/consul
#     (scripts/install-consul.sh; ~4 minutes cold, seconds when cached);
#   - etcd, Debian's etcd-server package (/usr/bin/etcd);
#   - Chromium, Debian's chromium package (/usr/bin/chromium), for the web UI
#     tests.
# Debian packages need root (or sudo). Idempotent: a second run does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if ((${#need_apt[@]})); then
  SUDO=""
  if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-test-deps: need root or sudo to install ${need_apt[*]}" >&2; exit 1; }
    SUDO=sudo
  fi
  echo "install-test-deps: installing ${need_apt[*]} (Debian packages)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # The package starts an etcd service where systemd runs; tests start their own.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
    $SUDO systemctl stop etcd || true
  fi
fi

bash scripts/install-consul.sh .tools/bin
