#!/usr/bin/env bash
# build-image.sh — builds a container image with buildah, into an OCI archive
# (make image, make image-micro; docs/deploy.md):
#
#   scripts/build-image.sh [configd|micro] [OUT]
#
#   configd (the default): bin/configd-image.oci.tar — configd and configctl;
#     /var/lib/configd, the data dir, a volume owned by the image's user;
#     port 7700; CONFIGD_HTTP_ADDR=0.0.0.0:7700, so authentication is on: give
#     it CONFIGD_BOOTSTRAP_TOKEN (or --bootstrap-token-file) the first time.
#   micro: bin/micro-image.oci.tar — the gateway, micro (micro api on 8080,
#     micro web on 8082; the command is `api` unless you give another).
#
# Both are FROM scratch: static binaries (CGO off; SQLite is modernc.org/sqlite,
# pure Go) in /usr/bin, the system's CA bundle (TLS to etcd, Consul, services),
# a passwd entry for the non-root user 65532 the image runs as, a /tmp. Labels
# and annotations carry the OCI source, version and revision. VERSION
# overrides the version (default: git describe).
#
# Needs buildah (Debian's buildah package) and root, or a user buildah can
# run as; it builds no container, only files, so it runs where containers
# cannot. About 30 s with a warm Go build cache.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=configd
if [[ ${1:-} == configd || ${1:-} == micro ]]; then
  kind=$1
  shift
fi
out=${1:-bin/$kind-image.oci.tar}
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

mkdir -p "$work/root/usr/bin" "$work/root/etc/ssl/certs" "$work/root/tmp"
case $kind in
configd)
  pkgs=(./cmd/configd ./cmd/configctl)
  title="configd"
  description="configd: versioned, audited configuration for Go services"
  ;;
micro)
  pkgs=(./cmd/micro)
  title="micro"
  description="micro: the gateway of configd's RPC core (micro api, micro web)"
  ;;
esac
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/configd/configd/server.version=$version" \
  -o "$work/root/usr/bin/" "${pkgs[@]}"
ca=/etc/ssl/certs/ca-certificates.crt
if [[ -f $ca ]]; then cp "$ca" "$work/root/etc/ssl/certs/"; fi
printf 'root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532:%s:/:/sbin/nologin\n' "$kind" >"$work/root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$work/root/etc/group"
chmod 1777 "$work/root/tmp"

ctr=$(buildah from scratch)
buildah copy --quiet "$ctr" "$work/root/" / >/dev/null
config=(--user 65532:65532)
case $kind in
configd)
  # The data dir itself must belong to the user: copy its parent's contents.
  mkdir -p "$work/varlib/configd"
  buildah copy --quiet --chown 65532:65532 "$ctr" "$work/varlib/" /var/lib/ >/dev/null
  config+=(--workingdir /var/lib/configd --port 7700/tcp --volume /var/lib/configd
    --env CONFIGD_DATA_DIR=/var/lib/configd --env CONFIGD_HTTP_ADDR=0.0.0.0:7700
    --entrypoint '["/usr/bin/configd"]' --cmd '')
  ;;
micro)
  config+=(--workingdir / --port 8080/tcp --port 8082/tcp
    --entrypoint '["/usr/bin/micro"]' --cmd '["api"]')
  ;;
esac
buildah config \
  --label "org.opencontainers.image.title=$title" \
  --label "org.opencontainers.image.description=$description" \
  --label "org.opencontainers.image.source=$source_url" \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.revision=$revision" \
  --label "org.opencontainers.image.created=$created" \
  --annotation "org.opencontainers.image.source=$source_url" \
  --annotation "org.opencontainers.image.version=$version" \
  --annotation "org.opencontainers.image.revision=$revision" \
  "${config[@]}" "$ctr"
mkdir -p "$(dirname "$out")"
rm -f "$out"
buildah commit --quiet --format oci "$ctr" "oci-archive:$out" >/dev/null
echo "build-image: $out ($kind $version, $(du -h "$out" | cut -f1))"
