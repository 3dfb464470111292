#!/bin/bash
# Pull + unpack of a ~200 MB Debian rootfs image (4 layers, ~95 MB gzip) from a local registry, side
# by side in one run: berth pull, podman pull, skopeo copy + umoci unpack (and docker pull when a
# dockerd is running). Every run starts from empty storage. Prints medians and berth's ratio.
#   bench/images.sh            (N=5 runs each; BERTH=path/to/berth)
#   BERTH_BASE=path/to/older/berth adds it as "berth-base" (an A/B of two builds in one run);
#   NO_PEERS=1 leaves podman, skopeo+umoci and docker out.
# Each run gets a fresh directory (run i of a tool writes to DIR-i) and nothing is deleted until the
# end: on an ext4 without a journal (this VM's root) the kernel skips inodes freed in the last 60 s
# (6 min while their inode table block is dirty) and re-scans them for EVERY new inode, so deleting
# the previous run's 17k files just before a run turns file creation into seconds of system time
# (perf: ~75% of berth's CPU in ext4 recently_deleted/find_inode_bit), for every tool alike.
# REUSE_ROOT=1 restores the old way (delete the previous run's storage in --prepare) to compare.
# (Berth's snapshotter marks its tmp/ with chattr +T, so its layer trees start in other flex groups
# than the deleted ones and mostly escape the scan; the peers' layer directories stay in their
# parent's flex group. See docs/benchmarks.md, "inode placement".)
# For the same reason a run waits until 6 min have passed since the previous run's clean-up
# (SETTLE=0 skips the wait).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5}
BERTH=${BERTH:-$PWD/out/berth}
image=$(bench/debian-image.sh)

cleaned=/var/tmp/berth-bench-images.cleaned
if [ "${SETTLE:-360}" -gt 0 ] && [ -f "$cleaned" ]; then
    wait_s=$(( $(cat "$cleaned") + ${SETTLE:-360} - $(date +%s) ))
    if [ "$wait_s" -gt 0 ]; then echo "waiting ${wait_s}s for the last run's deleted inodes to age (SETTLE=0 skips)" >&2; sleep "$wait_s"; fi
fi
work=$(mktemp -d /var/tmp/berth-bench-images.XXXXXX)
. bench/registry-lib.sh
reg=""; ref=""
cleanup() {
    [ -n "$reg" ] && { kill "$reg" 2>/dev/null || true; wait "$reg" 2>/dev/null || true; }
    for d in "$work"/podman*; do [ -d "$d" ] && podman --root "$d/storage" --runroot "$d/run" system reset -f >/dev/null 2>&1 || true; done
    umount -R "$work"/* 2>/dev/null || true
    rm -rf "$work"
    date +%s > "$cleaned"
}
trap cleanup EXIT
start_registry "$work" "$image"

# $r is this run's directory suffix: --prepare bumps the counter, the command reads it.
if [ -n "${REUSE_ROOT:-}" ]; then
    bump=":"; r=""
else
    echo 0 > "$work/run"; bump="echo \$(( \$(cat $work/run) + 1 )) > $work/run"; r="-\$(cat $work/run)"
fi
cmds=()
[ -z "${NO_BERTH:-}" ] && cmds+=("berth|$bump; rm -rf $work/berth$r|$BERTH --root $work/berth$r pull --tls-verify=false $ref")
[ -n "${BERTH_BASE:-}" ] && cmds+=("berth-base|$bump; rm -rf $work/berth-base$r|$BERTH_BASE --root $work/berth-base$r pull --tls-verify=false $ref")
[ -z "${NO_PEERS:-}" ] && cmds+=(
  "podman|$bump; podman --root $work/podman$r/storage --runroot $work/podman$r/run system reset -f >/dev/null 2>&1; rm -rf $work/podman$r|podman --root $work/podman$r/storage --runroot $work/podman$r/run --storage-driver overlay pull -q --tls-verify=false $ref"
  "skopeo+umoci|$bump; rm -rf $work/oci$r $work/bundle$r|skopeo copy -q --src-tls-verify=false docker://$ref oci:$work/oci$r:bench && umoci unpack --image $work/oci$r:bench $work/bundle$r >/dev/null"
)
if [ -z "${NO_PEERS:-}" ] && docker info >/dev/null 2>&1; then
  cmds+=("docker|docker rmi -f $ref >/dev/null 2>&1 || true|docker pull -q $ref >/dev/null")
fi

args=(--runs "$N" --export-json "$work/result.json" --style basic)
for c in "${cmds[@]}"; do
    IFS='|' read -r name prep cmd <<<"$c"
    args+=(--command-name "$name" --prepare "$prep; sync" "$cmd")
done
echo "load average before: $(cut -d" " -f1-3 /proc/loadavg)"
hyperfine "${args[@]}"
echo "load average after: $(cut -d" " -f1-3 /proc/loadavg)"
python3 - "$work/result.json" <<'PY'
import json, statistics, sys
res = json.load(open(sys.argv[1]))["results"]
r = {x["command"]: statistics.median(x["times"]) for x in res}
print("\nCPU time per run (mean): " + ", ".join(f'{x["command"]} user {x["user"]:.2f} s sys {x["system"]:.2f} s' for x in res))
b = r.pop("berth", None)
if b is None: sys.exit(0)
print(f"\nmedian pull+unpack: berth {b*1000:.0f} ms")
for k, v in r.items(): print(f"  {k:14s} {v*1000:7.0f} ms   berth/peer = {b/v:.2f}x")
peers = {k: v for k, v in r.items() if k != "berth-base"}
if peers: print(f"  fastest peer: {min(peers, key=peers.get)}; goal: berth <= 0.4x of it")
PY
