#!/usr/bin/env bash
# Usage: s3-test.sh COMMAND [ARGS...]
# Starts a SeaweedFS S3 server (weed server -s3, built by build.sh) on
# loopback with a throwaway data dir and one access key, runs COMMAND with
# SKIFF_S3_TEST=1, SKIFF_S3_ENDPOINT and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
# set, then stops the server; exits with COMMAND's status.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
weed=$("$here/build.sh")
data=$(mktemp -d "${TMPDIR:-/tmp}/skiff-seaweedfs.XXXXXX")
base=${SKIFF_S3_PORT_BASE:-$((20000 + RANDOM % 20000))}
master=$base volume=$((base + 1)) filer=$((base + 2)) s3=$((base + 3))
export AWS_ACCESS_KEY_ID=skiff-test AWS_SECRET_ACCESS_KEY=skiff-test-secret-key
cat >"$data/s3.json" <<JSON
{"identities": [{"name": "skiff", "credentials": [{"accessKey": "$AWS_ACCESS_KEY_ID", "secretKey": "$AWS_SECRET_ACCESS_KEY"}],
  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
JSON
mkdir -p "$data/weed"
"$weed" server -dir="$data/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -master.port=$master -master.port.grpc=$((master + 10000)) -master.telemetry=false \
  -master.volumeSizeLimitMB=64 -volume.max=0 \
  -volume.port=$volume -volume.port.grpc=$((volume + 10000)) \
  -filer -filer.port=$filer -filer.port.grpc=$((filer + 10000)) \
  -s3 -s3.port=$s3 -s3.port.grpc=$((s3 + 10000)) -s3.port.iceberg=0 -s3.port.lance=0 \
  -s3.config="$data/s3.json" -webdav=false >"$data/weed.log" 2>&1 &
pid=$!
stop() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$data"
}
trap stop EXIT
export SKIFF_S3_TEST=1 SKIFF_S3_ENDPOINT=http://127.0.0.1:$s3
# Ready once the master can place data on the volume server (it has
# registered) and the gateway answers S3 (403/404 without a signature is
# fine). Each bucket is a collection with volumes of its own (64 MiB each,
# as many as the disk holds).
ready=
for i in $(seq 1 240); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "s3-test.sh: weed exited; its log:" >&2; tail -50 "$data/weed.log" >&2; exit 1
  fi
  if curl -sf "http://127.0.0.1:$master/dir/assign" | grep -q '"fid"'; then
    code=$(curl -s -o /dev/null -w '%{http_code}' "$SKIFF_S3_ENDPOINT/" || true)
    case $code in 2??|3??|4??) ready=1; break ;; esac
  fi
  sleep 0.5
done
[ -n "$ready" ] || { echo "s3-test.sh: SeaweedFS not ready at $SKIFF_S3_ENDPOINT after 120s" >&2; tail -50 "$data/weed.log" >&2; exit 1; }
echo "s3-test.sh: SeaweedFS S3 at $SKIFF_S3_ENDPOINT" >&2
set +e
"$@"
rc=$?
set -e
if [ $rc -ne 0 ]; then echo "s3-test.sh: the server's log tail:" >&2; tail -20 "$data/weed.log" >&2; fi
exit $rc
