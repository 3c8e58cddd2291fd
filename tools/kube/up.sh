#!/usr/bin/env bash
# Starts a Kubernetes control plane on loopback for Skiff's tests: etcd,
# kube-apiserver, kube-scheduler and kwok (fake nodes: kwok-cpu-0,
# kwok-cpu-1 and kwok-gpu-0 with 4 nvidia.com/gpu). kwok also serves
# container logs as a kubelet would (kubectl logs, pods/log through the API
# server): a test creates a kwok Logs object (kwok.x-k8s.io/v1alpha1,
# namespace and name of the pod) naming a file in the CRI log format, and
# the API server reaches kwok on loopback at the node's kubelet port,
# without verifying kwok's self-signed certificate. Builds the binaries
# first when the cache lacks them (build.sh). Writes a kubeconfig and
# prints its path; down.sh stops everything.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$KUBE_TOOLS_DIR/build.sh" >/dev/null

if [ -f "$KUBE_STATE/pids" ]; then
  echo "kube-up: already running (state in $KUBE_STATE); run kube-down first" >&2
  exit 1
fi
rm -rf "$KUBE_STATE"
mkdir -p "$KUBE_STATE/pki" "$KUBE_STATE/logs"
chmod 700 "$KUBE_STATE"
cd "$KUBE_STATE"

fail() {
  echo "kube-up: $*" >&2
  for f in logs/*.log; do echo "--- $f" >&2; tail -20 "$f" >&2; done
  "$KUBE_TOOLS_DIR/down.sh" >/dev/null 2>&1 || true
  exit 1
}
wait_until() { # what timeout-seconds command...
  local what=$1 limit=$2; shift 2
  local end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || fail "$what did not come up within ${limit}s"
    sleep 0.5
  done
}
start() { # name command...
  local name=$1; shift
  nohup "$@" >"logs/$name.log" 2>&1 &
  echo "$name $!" >>pids
}

# Service account signing key; a client CA and an admin client
# certificate (group system:masters) for the kubeconfig.
openssl genrsa -out pki/sa.key 2048 2>/dev/null
openssl rsa -in pki/sa.key -pubout -out pki/sa.pub 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout pki/ca.key -out pki/ca.crt -days 30 \
  -subj "/CN=skiff-test-ca" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout pki/admin.key -out pki/admin.csr \
  -subj "/O=system:masters/CN=skiff-admin" 2>/dev/null
openssl x509 -req -in pki/admin.csr -CA pki/ca.crt -CAkey pki/ca.key -CAcreateserial \
  -out pki/admin.crt -days 30 2>/dev/null

start etcd "$KUBE_BIN/etcd" --data-dir "$KUBE_STATE/etcd" --name skiff-test \
  --listen-client-urls "http://127.0.0.1:$KUBE_ETCD_PORT" \
  --advertise-client-urls "http://127.0.0.1:$KUBE_ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$((KUBE_ETCD_PORT + 10))" \
  --initial-advertise-peer-urls "http://127.0.0.1:$((KUBE_ETCD_PORT + 10))" \
  --initial-cluster "skiff-test=http://127.0.0.1:$((KUBE_ETCD_PORT + 10))" \
  --listen-metrics-urls "" --log-level warn --quota-backend-bytes 1073741824
wait_until etcd 60 curl -sf "http://127.0.0.1:$KUBE_ETCD_PORT/health"

start kube-apiserver "$KUBE_BIN/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$KUBE_ETCD_PORT" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$KUBE_API_PORT" \
  --endpoint-reconciler-type none \
  --cert-dir "$KUBE_STATE/pki" --client-ca-file "$KUBE_STATE/pki/ca.crt" \
  --authorization-mode RBAC \
  --service-account-issuer https://kubernetes.default.svc \
  --service-account-key-file "$KUBE_STATE/pki/sa.pub" \
  --service-account-signing-key-file "$KUBE_STATE/pki/sa.key" \
  --service-cluster-ip-range 10.96.0.0/16 \
  --disable-admission-plugins ServiceAccount,TaintNodesByCondition \
  --allow-privileged=true --enable-priority-and-fairness=false \
  --kubelet-preferred-address-types InternalIP
api="https://127.0.0.1:$KUBE_API_PORT"
kc() { curl -sfk --cert "$KUBE_STATE/pki/admin.crt" --key "$KUBE_STATE/pki/admin.key" "$@"; }
wait_until kube-apiserver 180 kc "$api/readyz"

cat >kubeconfig <<KC
apiVersion: v1
kind: Config
clusters:
- name: skiff-test
  cluster:
    server: $api
    insecure-skip-tls-verify: true
users:
- name: skiff-admin
  user:
    client-certificate-data: $(base64 -w0 pki/admin.crt)
    client-key-data: $(base64 -w0 pki/admin.key)
contexts:
- name: skiff-test
  context: {cluster: skiff-test, user: skiff-admin, namespace: default}
current-context: skiff-test
KC
chmod 600 kubeconfig

start kube-scheduler "$KUBE_BIN/kube-scheduler" --kubeconfig "$KUBE_STATE/kubeconfig" \
  --leader-elect=false --bind-address 127.0.0.1 --secure-port 0
# kwok's Logs resource: its CRD, as the kwok module kwok was built from
# ships it (kustomize/crd/bases), established before kwok starts watching it.
kwok_dir=$(cd "$KUBE_TOOLS_DIR/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok) || fail "find the sigs.k8s.io/kwok module"
kc -X POST -H 'Content-Type: application/yaml' --data-binary @"$kwok_dir/kustomize/crd/bases/kwok.x-k8s.io_logs.yaml" \
  "$api/apis/apiextensions.k8s.io/v1/customresourcedefinitions" >/dev/null || fail "create the kwok Logs CRD"
wait_until "kwok Logs CRD" 60 kc "$api/apis/kwok.x-k8s.io/v1alpha1/logs"
start kwok "$KUBE_BIN/kwok" --kubeconfig "$KUBE_STATE/kubeconfig" \
  --config "$KUBE_TOOLS_DIR/stages.yaml" --enable-crds Logs --node-port "$KUBE_KWOK_PORT" \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
  --node-ip 127.0.0.1 --cidr 10.244.0.0/16 --server-address "127.0.0.1:$KUBE_KWOK_PORT"

node() { # name gpus
  local gpu=""
  [ "$2" -gt 0 ] && gpu=",\"nvidia.com/gpu\":\"$2\""
  local res="{\"cpu\":\"32\",\"memory\":\"256Gi\",\"pods\":\"110\"$gpu}"
  kc -X POST -H 'Content-Type: application/json' "$api/api/v1/nodes" -d "{
    \"apiVersion\":\"v1\",\"kind\":\"Node\",
    \"metadata\":{\"name\":\"$1\",\"annotations\":{\"kwok.x-k8s.io/node\":\"fake\"},
      \"labels\":{\"kubernetes.io/hostname\":\"$1\",\"type\":\"kwok\"}},
    \"status\":{\"capacity\":$res,\"allocatable\":$res}}" >/dev/null || fail "create node $1"
}
node kwok-cpu-0 0
node kwok-cpu-1 0
node kwok-gpu-0 4
ready() { kc "$api/api/v1/nodes" | jq -e '[.items[] | select(.status.conditions[]? | .type == "Ready" and .status == "True")] | length == 3'; }
wait_until "kwok nodes" 120 ready
kc "$api/api/v1/nodes/kwok-gpu-0" | jq -e '.status.allocatable["nvidia.com/gpu"] == "4"' >/dev/null ||
  fail "kwok-gpu-0 lacks its 4 nvidia.com/gpu"
kc "$api/api/v1/nodes/kwok-cpu-0" | jq -e ".status.daemonEndpoints.kubeletEndpoint.Port == $KUBE_KWOK_PORT" >/dev/null ||
  fail "kwok-cpu-0 lacks its kubelet port $KUBE_KWOK_PORT (pod logs)"
# The default namespace's default service account: no controller manager
# makes it here.
kc -X POST -H 'Content-Type: application/json' "$api/api/v1/namespaces/default/serviceaccounts" \
  -d '{"metadata":{"name":"default"}}' >/dev/null || true
echo "$KUBE_STATE/kubeconfig"
