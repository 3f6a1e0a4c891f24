#!/usr/bin/env bash
# install-kube-apiserver.sh - build a real kube-apiserver (Kubernetes v1.34.3) from the Go
# module proxy, for the tests that need a Kubernetes API server on loopback
# (internal/testserver.KubeAPIServer: the Kubernetes registry, deploy's server-side dry run).
#
# Usage: install-kube-apiserver.sh [INSTALL_DIR]      (default: ./.tools/bin)
#
# Result: INSTALL_DIR/kube-apiserver, "Kubernetes v1.34.3" (Apache-2.0), static (CGO_ENABLED=0).
# Idempotent: if INSTALL_DIR/kube-apiserver already reports v1.34.3 nothing is done.
#
# Why a throw-away module: k8s.io/kubernetes cannot be `go install`ed, its go.mod replaces the
# staging modules (k8s.io/api, k8s.io/apiserver, ...) with local folders. A module that requires
# it and replaces every staging module with its published v0.34.3 release builds the same code.
# The version is stamped with -ldflags, as Kubernetes' own build does, so --version and /version
# say v1.34.3.
#
# Needs: go >= 1.24, access to the Go module proxy + sumdb. Cost: ~1 GB module cache; with cold
# caches about 8 minutes on 2 idle cores, 20-30 minutes measured on 2 busy ones (CI builds it once
# per run); seconds when installed.
set -euo pipefail

K8S_VERSION=1.34.3
STAGING_VERSION=0.34.3
STAGING=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
  cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
  cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms
  kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
  mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller)

# shellcheck source=scripts/install-lib.sh
. "$(dirname "$0")/install-lib.sh"
WHAT="kube-apiserver $K8S_VERSION"

INSTALL_DIR=${1:-./.tools/bin}
mkdir -p "$INSTALL_DIR" || die "cannot create install dir '$INSTALL_DIR'"
INSTALL_DIR=$(cd "$INSTALL_DIR" && pwd -P)
BIN="$INSTALL_DIR/kube-apiserver"
WANT="Kubernetes v${K8S_VERSION}"

if [[ -x "$BIN" ]]; then
  have=$("$BIN" --version 2>/dev/null || true)
  if [[ "$have" == "$WANT" ]]; then
    echo "$prog: $BIN already present ($have); nothing to do"
    exit 0
  fi
  echo "$prog: $BIN reports '${have:-<no version>}', want '$WANT'; rebuilding"
fi

command -v go >/dev/null 2>&1 || die "'go' not found in PATH"

start_build kube-apiserver


export GOWORK=off
export GOFLAGS="-mod=mod"
export CGO_ENABLED=0

cd "$WORK"
{
  printf 'module kube-apiserver-install.local/tools\n\ngo 1.26.8\n\n'
  for m in "${STAGING[@]}"; do
    echo "replace k8s.io/$m => k8s.io/$m v$STAGING_VERSION"
  done
  echo "require k8s.io/kubernetes v$K8S_VERSION"
} >go.mod
printf 'package main\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver/app"\n\nfunc main() {}\n' >main.go
echo "$prog: building kube-apiserver v$K8S_VERSION with $(go env GOVERSION) in $WORK"
step "go mod tidy" go mod tidy
V=k8s.io/component-base/version
K8S_MINOR=${K8S_VERSION#1.}; K8S_MINOR=${K8S_MINOR%%.*}
LDFLAGS="-s -w -X $V.gitVersion=v${K8S_VERSION} -X $V.gitMajor=1 -X $V.gitMinor=${K8S_MINOR}"
LDFLAGS+=" -X k8s.io/client-go/pkg/version.gitVersion=v${K8S_VERSION}"
step "go build k8s.io/kubernetes/cmd/kube-apiserver" \
  go build -ldflags "$LDFLAGS" -o "$WORK/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver

have=$("$WORK/kube-apiserver" --version 2>/dev/null || true)
[[ "$have" == "$WANT" ]] || die "built binary reports '${have:-<nothing>}', expected '$WANT'"

install_bin "$WORK/kube-apiserver" "$BIN" "$have"
