#!/usr/bin/env bash
# Builds the Knative func CLI (knative.dev/func/cmd/func) from its Go module, once per
# machine. Prints the binary's path. Output: $JOBFN_CACHE/bin/func-<version>/func;
# a second run builds nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
FUNC_VERSION=$(sed -n 's/^require knative.dev\/func \(v[^ ]*\)$/\1/p' "$here/func/go.mod")
cache=${JOBFN_CACHE:-$HOME/.cache/jobfn}
bin=$cache/bin/func-$FUNC_VERSION
mkdir -p "$bin"
exec 9>"$bin.lock"; flock 9  # the suite's workers may ask for it at once
if [ ! -x "$bin/func" ]; then
  echo "building func $FUNC_VERSION from knative.dev/func/cmd/func" >&2
  # -mod=mod lets go record the dependency hashes (go.sum) on the first build.
  (cd "$here/func" && GOFLAGS=-mod=mod CGO_ENABLED=0 \
    go build -trimpath -ldflags="-s -w -X knative.dev/func/pkg/app.vers=$FUNC_VERSION" \
      -o "$bin/func.tmp" knative.dev/func/cmd/func)
  mv "$bin/func.tmp" "$bin/func"
fi
echo "$bin/func"
