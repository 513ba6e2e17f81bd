#!/usr/bin/env bash
# Builds Kueue (the release build/go.mod requires) once per machine, as tests/cluster/build.sh
# builds the cluster's binaries: into $JOBFN_CACHE/bin/kueue-<version>/kueue; a second run
# builds nothing. Prints that directory. Only the Kueue tests install it (tests/kueue/install.py).
# GOCACHE may point elsewhere to time a cold build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
KUEUE_VERSION=$(sed -n 's/^require sigs.k8s.io\/kueue \(v[^ ]*\)$/\1/p' "$here/build/go.mod")
into=${JOBFN_CACHE:-$HOME/.cache/jobfn}/bin/kueue-$KUEUE_VERSION
if [ ! -x "$into/kueue" ]; then
  echo "building kueue $KUEUE_VERSION" >&2
  mkdir -p "$into"
  (cd "$here/build" && GOFLAGS=-mod=mod CGO_ENABLED=0 \
    go build -trimpath -ldflags='-s -w' -o "$into/kueue.tmp" sigs.k8s.io/kueue/cmd/kueue)
  mv "$into/kueue.tmp" "$into/kueue"
fi
echo "$into"
