#!/usr/bin/env bash
# Stops what up.sh started and removes its state.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
[ -f "$KUBE_STATE/pids" ] || { echo "kube-down: nothing running" >&2; exit 0; }
# Reverse order: kwok and the scheduler first, etcd last.
tac "$KUBE_STATE/pids" | while read -r name pid; do
  kill "$pid" 2>/dev/null || continue
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  echo "stopped $name ($pid)" >&2
done
rm -rf "$KUBE_STATE"
