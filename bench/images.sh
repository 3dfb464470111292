#!/bin/bash
# Pull + unpack of a ~200 MB Debian rootfs image (4 layers, ~95 MB gzip) from a local registry, side
# by side in one run: berth pull, podman pull, skopeo copy + umoci unpack (and docker pull when a
# dockerd is running). Every run starts from empty storage. Prints medians and berth's ratio.
#   bench/images.sh            (N=5 runs each; BERTH=path/to/berth)
#   BERTH_BASE=path/to/older/berth adds it as "berth-base" (an A/B of two builds in one run);
#   NO_PEERS=1 leaves podman, skopeo+umoci and docker out.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5}
BERTH=${BERTH:-$PWD/out/berth}
image=$(bench/debian-image.sh)

work=$(mktemp -d /var/tmp/berth-bench-images.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
log:
  level: error
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg=$!
cleanup() {
    kill "$reg" 2>/dev/null || true; wait "$reg" 2>/dev/null || true
    for d in "$work"/podman; do [ -d "$d" ] && podman --root "$d/storage" --runroot "$d/run" system reset -f >/dev/null 2>&1 || true; done
    umount -R "$work"/* 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
ref=127.0.0.1:$port/bench/debian:bench
skopeo copy -q --dest-tls-verify=false "oci:$image" "docker://$ref"

cmds=()
[ -z "${NO_BERTH:-}" ] && cmds+=("berth|rm -rf $work/berth|$BERTH --root $work/berth pull --tls-verify=false $ref")
[ -n "${BERTH_BASE:-}" ] && cmds+=("berth-base|rm -rf $work/berth-base|$BERTH_BASE --root $work/berth-base pull --tls-verify=false $ref")
[ -z "${NO_PEERS:-}" ] && cmds+=(
  "podman|podman --root $work/podman/storage --runroot $work/podman/run system reset -f >/dev/null 2>&1; rm -rf $work/podman|podman --root $work/podman/storage --runroot $work/podman/run --storage-driver overlay pull -q --tls-verify=false $ref"
  "skopeo+umoci|rm -rf $work/oci $work/bundle|skopeo copy -q --src-tls-verify=false docker://$ref oci:$work/oci:bench && umoci unpack --image $work/oci:bench $work/bundle >/dev/null"
)
if [ -z "${NO_PEERS:-}" ] && docker info >/dev/null 2>&1; then
  cmds+=("docker|docker rmi -f $ref >/dev/null 2>&1 || true|docker pull -q $ref >/dev/null")
fi

args=(--runs "$N" --export-json "$work/result.json" --style basic)
for c in "${cmds[@]}"; do
    IFS='|' read -r name prep cmd <<<"$c"
    args+=(--command-name "$name" --prepare "$prep; sync" "$cmd")
done
hyperfine "${args[@]}"
python3 - "$work/result.json" <<'PY'
import json, statistics, sys
r = {x["command"]: statistics.median(x["times"]) for x in json.load(open(sys.argv[1]))["results"]}
b = r.pop("berth", None)
if b is None: sys.exit(0)
print(f"\nmedian pull+unpack: berth {b*1000:.0f} ms")
for k, v in r.items(): print(f"  {k:14s} {v*1000:7.0f} ms   berth/peer = {b/v:.2f}x")
peers = {k: v for k, v in r.items() if k != "berth-base"}
if peers: print(f"  fastest peer: {min(peers, key=peers.get)}; goal: berth <= 0.4x of it")
PY
