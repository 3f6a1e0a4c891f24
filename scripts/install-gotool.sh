#!/usr/bin/env bash
# install-gotool.sh - build a client tool the tests run (etcdctl 3.7.3, consul-template, confd)
# from the Go module proxy, pinned by a module of its own under scripts/tools/.
#
# Usage: install-gotool.sh TOOL_DIR BIN VERSION_ARG WANT [INSTALL_DIR]   (default: ./.tools/bin)
#   TOOL_DIR  a module whose go.mod names the tool (`tool <package>`) and whose go.sum pins
#             every dependency, e.g. scripts/tools/etcdctl
#   BIN       the binary's name in INSTALL_DIR, e.g. etcdctl-3.7.3 (a name that does not shadow
#             Debian's /usr/bin/etcdctl 3.4)
#   VERSION_ARG  the argument that makes the binary print its version and exit, e.g. version,
#             -version (confd takes any other as a run against etcd)
#   WANT      the first line of the binary's VERSION_ARG output, or its start up to a space,
#             e.g. "etcdctl version: 3.7.3", "consul-template v0.41.1"
#
# Idempotent: if INSTALL_DIR/BIN already reports WANT nothing is done.
#
# Why a module per tool: `go install pkg@version` refuses a module whose go.mod has replace
# directives (etcdctl's has), and a committed go.mod + go.sum pins the build exactly; the build
# runs with -mod=readonly, so it uses those pins or fails.
#
# Needs: go >= 1.24 (the tool directive), access to the Go module proxy + sumdb.
set -euo pipefail

# shellcheck source=scripts/install-lib.sh
. "$(dirname "$0")/install-lib.sh"

[[ $# -ge 4 ]] || die "usage: $prog TOOL_DIR BIN VERSION_ARG WANT [INSTALL_DIR]"
TOOL_DIR=$1 NAME=$2 VERSION_ARG=$3 WANT=$4
WHAT="$NAME ($WANT)"
[[ -f "$TOOL_DIR/go.mod" && -f "$TOOL_DIR/go.sum" ]] || die "$TOOL_DIR holds no go.mod and go.sum"
TOOL_DIR=$(cd "$TOOL_DIR" && pwd -P)

INSTALL_DIR=${5:-./.tools/bin}
mkdir -p "$INSTALL_DIR" || die "cannot create install dir '$INSTALL_DIR'"
INSTALL_DIR=$(cd "$INSTALL_DIR" && pwd -P)
BIN="$INSTALL_DIR/$NAME"

reports() { [[ "$1" == "$WANT" || "$1" == "$WANT "* ]]; } # reports VERSION_LINE: is it WANT?

installed_version() { # first line of `BIN VERSION_ARG`, or empty
  local out
  out=$(timeout 10 "$1" "$VERSION_ARG" 2>&1) || return 0
  printf '%s\n' "${out%%$'\n'*}"
}

if [[ -x "$BIN" ]]; then
  have=$(installed_version "$BIN")
  if reports "$have"; then
    echo "$prog: $BIN already present ($have); nothing to do"
    exit 0
  fi
  echo "$prog: $BIN reports '${have:-<no version>}', want '$WANT'; rebuilding"
fi

command -v go >/dev/null 2>&1 || die "'go' not found in PATH"
gover=$(go env GOVERSION 2>/dev/null) || die "'go env GOVERSION' failed"

start_build "$NAME"

# The tool's module alone, as committed: no workspace, no go.mod or go.sum edits.
export GOWORK=off
export GOFLAGS="-mod=readonly -buildvcs=false"
export CGO_ENABLED=0

cd "$TOOL_DIR"
pkg=$(go list tool 2>>"$LOG") || die "go list tool in $TOOL_DIR failed: $(tail -n 5 "$LOG")"
[[ -n "$pkg" && "$pkg" != *$'\n'* ]] || die "$TOOL_DIR/go.mod must name exactly one tool (has: ${pkg:-none})"
echo "$prog: building $pkg ($WHAT) with $gover"
step "go build $pkg" go build -trimpath -ldflags "-s -w" -o "$WORK/$NAME" "$pkg"

have=$(installed_version "$WORK/$NAME")
reports "$have" || die "built binary reports '${have:-<nothing>}', expected '$WANT'"

install_bin "$WORK/$NAME" "$BIN" "$have"
