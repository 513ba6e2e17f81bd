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

# Kubernetes' binaries report their release as Kubernetes' own build stamps it (hack/lib/version.sh):
# unstamped, the API server's /version says v0.0.0-master+$Format:%H$, which clients that
# check the server's version (Knative's components) refuse to parse.
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
k8s_version_flags=""
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  k8s_version_flags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  k8s_version_flags+=" -X $pkg.gitTreeState=clean"
done

build() {  # build <module dir> <output name> <package> [output dir] [extra ldflags]
  local dir=$1 out=$2 pkg=$3 into=${4:-$bin} extra=${5:-}
  if [ -x "$into/$out" ] && [ "$out" != "${rebuild:-}" ]; then return 0; fi
  echo "building $out from $pkg" >&2
  mkdir -p "$into"
  (cd "$here/build/$dir" && go build -trimpath -ldflags="-s -w$extra" -o "$into/$out.tmp" "$pkg")
  mv "$into/$out.tmp" "$into/$out"
}

# An API server built before the stamp (it matters there alone) is built again, and replaces
# the old one only once built (only its link step runs: the packages are in the Go cache). A
# running cluster keeps running the old one until it is restarted.
if [ -x "$bin/kube-apiserver" ] && ! "$bin/kube-apiserver" --version | grep -qx "Kubernetes $K8S_VERSION"; then
  rebuild=kube-apiserver
fi

build etcd etcd go.etcd.io/etcd/server/v3
build kubernetes kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$bin" "$k8s_version_flags"
build kubernetes kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$bin" "$k8s_version_flags"
build kubernetes kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler "$bin" "$k8s_version_flags"
build kubernetes kubectl k8s.io/kubernetes/cmd/kubectl "$bin" "$k8s_version_flags"
build kubernetes kubelet k8s.io/kubernetes/cmd/kubelet "$bin" "$k8s_version_flags"
build kubernetes kube-proxy k8s.io/kubernetes/cmd/kube-proxy "$bin" "$k8s_version_flags"
build kwok kwok sigs.k8s.io/kwok/cmd/kwok
coredns_dir=$cache/bin/coredns-$COREDNS_VERSION
build coredns coredns github.com/coredns/coredns "$coredns_dir"
ln -sfn "$coredns_dir/coredns" "$bin/coredns"
echo "$bin"
