#!/usr/bin/env bash
# Builds the local cluster's binaries from their Go modules, once per machine.
# Output: $JOBFN_CACHE/bin/<kubernetes>-<etcd>-<kwok>/ ; a second run builds nothing.
# CoreDNS is built into $JOBFN_CACHE/bin/coredns-<version>/ and linked from there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
K8S_VERSION=v1.37.2
ETCD_VERSION=v3.7.3
KWOK_VERSION=v0.8.0
COREDNS_VERSION=v1.15.0  # as required by build/coredns/go.mod
cache=${JOBFN_CACHE:-$HOME/.cache/jobfn}
bin=$cache/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION
mkdir -p "$bin"
export GOFLAGS=-mod=mod CGO_ENABLED=0

build() {  # build <module dir> <output name> <package> [output dir]
  local dir=$1 out=$2 pkg=$3 into=${4:-$bin}
  if [ -x "$into/$out" ]; then return 0; fi
  echo "building $out from $pkg" >&2
  mkdir -p "$into"
  (cd "$here/build/$dir" && go build -trimpath -ldflags='-s -w' -o "$into/$out.tmp" "$pkg")
  mv "$into/$out.tmp" "$into/$out"
}

build etcd etcd go.etcd.io/etcd/server/v3
build kubernetes kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kubernetes kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build kubernetes kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
build kubernetes kubectl k8s.io/kubernetes/cmd/kubectl
build kubernetes kubelet k8s.io/kubernetes/cmd/kubelet
build kubernetes kube-proxy k8s.io/kubernetes/cmd/kube-proxy
build kwok kwok sigs.k8s.io/kwok/cmd/kwok
coredns_dir=$cache/bin/coredns-$COREDNS_VERSION
build coredns coredns github.com/coredns/coredns "$coredns_dir"
ln -sfn "$coredns_dir/coredns" "$bin/coredns"
echo "$bin"
