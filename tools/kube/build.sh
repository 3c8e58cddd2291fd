#!/usr/bin/env bash
# Builds kube-apiserver, kube-scheduler (k8s.io/kubernetes, staging modules
# replaced by their released versions), etcd and kwok from the tool modules
# beside this script into a cache directory keyed by version. A binary
# already there is not rebuilt. Prints the bin directory.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
mkdir -p "$KUBE_BIN"

build() { # module-dir binary-name package [ldflags]
  local dir=$1 name=$2 pkg=$3 ldflags=${4:-}
  if [ -x "$KUBE_BIN/$name" ]; then return 0; fi
  echo "building $name ($pkg)" >&2
  local start=$SECONDS
  (cd "$KUBE_TOOLS_DIR/$dir" && CGO_ENABLED=0 go build -mod=readonly -trimpath \
    -ldflags "-s -w $ldflags" -o "$KUBE_BIN/$name.tmp" "$pkg")
  mv "$KUBE_BIN/$name.tmp" "$KUBE_BIN/$name"
  echo "built $name in $((SECONDS - start))s" >&2
}

minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
kv=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kv+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
  kv+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done

build etcd etcd . 
build k8s kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$kv"
build k8s kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler "$kv"
build kwok kwok sigs.k8s.io/kwok/cmd/kwok \
  "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
echo "$KUBE_BIN"
