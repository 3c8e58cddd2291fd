# Sourced by the tools/kube scripts: versions and where things live.
# The binaries are cached outside the repository, keyed by version.
KUBE_VERSION=v1.37.2
ETCD_VERSION=v3.7.3
KWOK_VERSION=v0.8.0
KUBE_TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KUBE_CACHE=${SKIFF_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/skiff-kube}
KUBE_BIN=$KUBE_CACHE/k8s-$KUBE_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION/bin
# Runtime state of the control plane (pids, certificates, logs, kubeconfig).
KUBE_STATE=${SKIFF_KUBE_STATE:-${XDG_RUNTIME_DIR:-/tmp}/skiff-kube-$(id -u)}
# Loopback ports of the control plane (override when they are taken).
KUBE_ETCD_PORT=${SKIFF_KUBE_ETCD_PORT:-23790}
KUBE_API_PORT=${SKIFF_KUBE_API_PORT:-26443}
KUBE_KWOK_PORT=${SKIFF_KUBE_KWOK_PORT:-26080}
