#!/bin/sh
# `make run`: Berth's main job on embedded defaults. For now that is the OCI runtime: build a
# busybox bundle and run a container in it with berth-runc, showing what the kernel reports inside.
set -e
BIN=${BERTH_RUNC:-/usr/local/bin/berth-runc}
dir=$(mktemp -d /tmp/berth-demo.XXXXXX)
trap 'rm -rf "$dir"' EXIT
echo "== building a busybox bundle in $dir"
"$(dirname "$0")/make-bundle.sh" "$dir" "$BIN"
# Non-interactive: no terminal; a small script instead of sh; 64 MiB memory and 64 pids.
jq '.process.terminal = false
  | .process.args = ["sh", "-c", "echo \"hello from $(hostname)\"; echo \"pid in container: $$\"; id; grep -E \"^(CapEff|NoNewPrivs)\" /proc/self/status; echo \"memory limit: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)\"; echo \"pids limit: $(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)\"; ls /"]
  | .linux.resources.memory = {"limit": 67108864}
  | .linux.resources.pids = {"limit": 64}' "$dir/config.json" > "$dir/config.tmp" && mv "$dir/config.tmp" "$dir/config.json"
id=demo-$$
echo "== berth-runc run --bundle $dir $id"
"$BIN" run --bundle "$dir" "$id"
echo "== exit status $?; berth-runc list after the run:"
"$BIN" list
