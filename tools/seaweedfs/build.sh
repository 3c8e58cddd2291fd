#!/usr/bin/env bash
# Builds SeaweedFS's weed binary, at the version tools/seaweedfs/go.mod pins,
# from the Go module proxy into a cache directory keyed by that version
# (outside the repository), unless it is already there; prints its path.
# This separate module keeps SeaweedFS's dependencies out of skiff's go.mod.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ver=$(awk '$1 == "github.com/seaweedfs/seaweedfs" { print $2 }' "$here/go.mod")
[ -n "$ver" ] || { echo "build.sh: no github.com/seaweedfs/seaweedfs version in $here/go.mod" >&2; exit 1; }
dir=${SKIFF_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/skiff-tools}/seaweedfs-$ver
if [ ! -x "$dir/weed" ]; then
  mkdir -p "$dir"
  echo "building SeaweedFS $ver into $dir (minutes)" >&2
  (cd "$here" && nice -n 10 go build -trimpath -o "$dir/weed.tmp" github.com/seaweedfs/seaweedfs/weed)
  mv "$dir/weed.tmp" "$dir/weed"
fi
echo "$dir/weed"
