#!/usr/bin/env bash
# build-image.sh — builds configd's container image with buildah, into an OCI
# archive (make image; docs/deploy.md):
#
#   scripts/build-image.sh [OUT]      # default OUT: bin/configd-image.oci.tar
#
# The image is FROM scratch: static configd and configctl (CGO off; SQLite is
# modernc.org/sqlite, pure Go) in /usr/bin, the system's CA bundle (TLS to
# etcd, Consul), a passwd entry for the non-root user configd (65532), and
# /var/lib/configd, the data dir, a volume owned by that user. configd listens
# on 0.0.0.0:7700, so authentication is on: give it CONFIGD_BOOTSTRAP_TOKEN
# (or --bootstrap-token-file) the first time. Labels and annotations carry the
# OCI source, version and revision. VERSION overrides the version (default:
# git describe).
#
# Needs buildah (Debian's buildah package) and root, or a user buildah can
# run as; it builds no container, only files, so it runs where containers
# cannot. It takes about 30 s (most of it the Go build).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bin/configd-image.oci.tar}
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
source_url=https://github.com/configd/configd

work=$(mktemp -d)
ctr=""
cleanup() {
  [[ -n $ctr ]] && buildah rm "$ctr" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}

mkdir -p "$work/root/usr/bin" "$work/root/etc/ssl/certs" "$work/root/tmp" "$work/varlib/configd"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/configd/configd/server.version=$version" \
  -o "$work/root/usr/bin/" ./cmd/configd ./cmd/configctl
ca=/etc/ssl/certs/ca-certificates.crt
if [[ -f $ca ]]; then cp "$ca" "$work/root/etc/ssl/certs/"; fi
printf 'root:x:0:0:root:/:/sbin/nologin\nconfigd:x:65532:65532:configd:/var/lib/configd:/sbin/nologin\n' >"$work/root/etc/passwd"
printf 'root:x:0:\nconfigd:x:65532:\n' >"$work/root/etc/group"
chmod 1777 "$work/root/tmp"

ctr=$(buildah from scratch)
buildah copy --quiet "$ctr" "$work/root/" / >/dev/null
# The data dir itself must belong to the user: copy its parent's contents.
buildah copy --quiet --chown 65532:65532 "$ctr" "$work/varlib/" /var/lib/ >/dev/null
labels=(
  --label "org.opencontainers.image.title=configd"
  --label "org.opencontainers.image.description=configd: versioned, audited configuration for Go services"
  --label "org.opencontainers.image.source=$source_url"
  --label "org.opencontainers.image.version=$version"
  --label "org.opencontainers.image.revision=$revision"
  --label "org.opencontainers.image.created=$created"
)
buildah config "${labels[@]}" \
  --annotation "org.opencontainers.image.source=$source_url" \
  --annotation "org.opencontainers.image.version=$version" \
  --annotation "org.opencontainers.image.revision=$revision" \
  --user 65532:65532 --workingdir /var/lib/configd \
  --port 7700/tcp --volume /var/lib/configd \
  --env CONFIGD_DATA_DIR=/var/lib/configd --env CONFIGD_HTTP_ADDR=0.0.0.0:7700 \
  --entrypoint '["/usr/bin/configd"]' --cmd '' "$ctr"
mkdir -p "$(dirname "$out")"
rm -f "$out"
buildah commit --quiet --format oci "$ctr" "oci-archive:$out" >/dev/null
echo "build-image: $out (configd $version, $(du -h "$out" | cut -f1))"
