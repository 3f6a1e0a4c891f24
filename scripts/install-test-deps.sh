#!/usr/bin/env bash
# install-test-deps.sh — installs the real servers and the browser that the
# test suite runs against, when they are missing:
#   - Consul v1.14.5, built from the Go module proxy into .tools/bin/consul
#     (scripts/install-consul.sh; ~4 minutes cold, seconds when cached);
#   - etcd, Debian's etcd-server package (/usr/bin/etcd);
#   - etcdctl, Debian's etcd-client package (/usr/bin/etcdctl, 3.4), and etcdctl
#     3.7.3, built from the Go module proxy into .tools/bin/etcdctl-3.7.3
#     (scripts/install-gotool.sh, pinned by scripts/tools/etcdctl; 1.5 minutes
#     cold on 2 idle cores, 4 on busy ones), which the tests of configd's etcd
#     v3 API (server/etcdapi) run against it;
#   - consul-template v0.41.1, built from the Go module proxy into
#     .tools/bin/consul-template (scripts/install-gotool.sh, pinned by
#     scripts/tools/consul-template; 1.5-2 minutes cold), which the tests of
#     configd's Consul API (server/consulapi) run against it;
#   - confd v0.16.0, built from the Go module proxy into .tools/bin/confd
#     (scripts/install-gotool.sh, pinned by scripts/tools/confd: confd has no
#     go.mod, so that module pins its 2018 dependencies; 1-2 minutes cold), run
#     against configd's Consul and etcd APIs;
#   - kube-apiserver (Kubernetes v1.34.3), built from the Go module proxy into
#     .tools/bin/kube-apiserver (scripts/install-kube-apiserver.sh; ~8 minutes
#     cold on 2 idle cores, seconds when cached), on that etcd, for the Kubernetes
#     registry and deploy's server-side dry run;
#   - Chromium, Debian's chromium package (/usr/bin/chromium), for the web UI
#     tests;
#   - promtool and prometheus, from Debian's prometheus package, for the
#     alerting rules (deploy/prometheus) and the rollouts' Prometheus alarm
#     (server/alarm's tests start a real Prometheus);
#   - hey, Debian's hey package, the load generator of the gateway benchmark;
#   - buildah, Debian's buildah package, which builds the container image
#     (make image) that deploy's test unpacks and runs.
# Debian packages need root (or sudo). Idempotent: a second run does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need_apt+=(etcd-client)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || need_apt+=(prometheus)
command -v hey >/dev/null 2>&1 || need_apt+=(hey)
command -v buildah >/dev/null 2>&1 || need_apt+=(buildah)
if ((${#need_apt[@]})); then
  SUDO=""
  if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-test-deps: need root or sudo to install ${need_apt[*]}" >&2; exit 1; }
    SUDO=sudo
  fi
  echo "install-test-deps: installing ${need_apt[*]} (Debian packages)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # The packages start etcd and Prometheus services where systemd runs; tests
  # start their own etcd and Prometheus.
  for svc in etcd prometheus; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
      $SUDO systemctl stop "$svc" || true
    fi
  done
fi

bash scripts/install-consul.sh .tools/bin
bash scripts/install-gotool.sh scripts/tools/etcdctl etcdctl-3.7.3 version "etcdctl version: 3.7.3" .tools/bin
bash scripts/install-gotool.sh scripts/tools/consul-template consul-template -version "consul-template v0.41.1" .tools/bin
bash scripts/install-gotool.sh scripts/tools/confd confd -version "confd 0.16.0" .tools/bin
bash scripts/install-kube-apiserver.sh .tools/bin
