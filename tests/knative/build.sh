#!/usr/bin/env bash
# Builds Knative Serving and Eventing (one release, from the module in build/) and Traefik
# (the ingress, whose Knative provider needs no Envoy) once per machine.
# Output: $JOBFN_CACHE/bin/knative-<version>/{serving,eventing}/<command> and
# $JOBFN_CACHE/bin/traefik-<version>/traefik; a second run builds nothing.
# Prints the two directories. GOCACHE may point elsewhere to time a cold build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
KNATIVE_VERSION=$(sed -n 's/^\tknative.dev\/serving \(v[^ ]*\)$/\1/p' "$here/build/go.mod")
TRAEFIK_VERSION=v3.6.25  # the newest v3.6 the module proxy serves; v3.7 adds a nested module
cache=${JOBFN_CACHE:-$HOME/.cache/jobfn}
knative=$cache/bin/knative-$KNATIVE_VERSION
traefik=$cache/bin/traefik-$TRAEFIK_VERSION
export CGO_ENABLED=0
flags=(-trimpath -ldflags=-s\ -w)

build_all() {  # build_all <output dir> <package>...: one go build, so shared packages compile once
  local into=$1; shift
  local missing=()
  for pkg in "$@"; do [ -x "$into/$(basename "$pkg")" ] || missing+=("$pkg"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  echo "building ${missing[*]}" >&2
  mkdir -p "$into.tmp"
  (cd "$here/build" && GOFLAGS=-mod=mod go build "${flags[@]}" -o "$into.tmp/" "${missing[@]}")
  mkdir -p "$into"
  mv "$into.tmp"/* "$into/" && rmdir "$into.tmp"
}

# Two invocations: serving's and eventing's commands share names (controller, webhook),
# and `go build -o dir/` names each binary after its package's last path element.
build_all "$knative/serving" knative.dev/serving/cmd/{controller,webhook,activator,autoscaler,queue}
build_all "$knative/eventing" knative.dev/eventing/cmd/{controller,webhook,jobsink,mtping,requestreply} \
  knative.dev/eventing/cmd/{apiserver_receive_adapter,auth_proxy,mtchannel_broker} \
  knative.dev/eventing/cmd/broker/{ingress,filter} \
  knative.dev/eventing/cmd/in_memory/{channel_controller,channel_dispatcher}

# Traefik's go.mod has replace directives, which a depending module does not inherit:
# build inside a copy of the downloaded module (the module cache is read-only).
if [ ! -x "$traefik/traefik" ]; then
  echo "building traefik $TRAEFIK_VERSION" >&2
  dir=$(cd "$here/build" && go mod download -json "github.com/traefik/traefik/v3@$TRAEFIK_VERSION" |
    sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/traefik-build.XXXXXX")
  trap 'chmod -R u+w "$scratch"; rm -rf "$scratch"' EXIT
  cp -r "$dir/." "$scratch/" && chmod -R u+w "$scratch"
  mkdir -p "$traefik"
  (cd "$scratch" && GOFLAGS=-mod=readonly go build "${flags[@]}" \
    -ldflags="-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" \
    -o "$traefik/traefik.tmp" ./cmd/traefik)
  mv "$traefik/traefik.tmp" "$traefik/traefik"
fi
echo "$knative"
echo "$traefik"
