#!/usr/bin/env bash
# bench/engine.sh: `berth run --rm --rootfs DIR true` vs `podman run --rm --network none --rootfs DIR true`
# (run as root). Both use temp storage roots; podman gets the containers.conf this machine needs
# (cgroupfs, file events, ulimits root can set; see shared/DESIGN.md); Berth's runtime is its own
# out/berth-runc, podman uses runc (crun refuses this hybrid cgroup layout). hyperfine runs the commands in ROUNDS alternating rounds, so a change in the load
# of the machine hits both; the medians of each round and their ratio are printed.
#
#   RUNS=20 ROUNDS=3 bench/engine.sh
#
# Also: peak RSS of one berth monitor (berth-shim) of a `sleep` container, from /proc/PID/status.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20} ROUNDS=${ROUNDS:-3}
BERTH=${BERTH:-$PWD/out/berth}
tmp=$(mktemp -d /tmp/berth-bench-XXXXXX)
cleanup() {
    "$BERTH" --root "$tmp/broot" --runroot "$tmp/brun" rm -f $("$BERTH" --root "$tmp/broot" --runroot "$tmp/brun" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
    podman --root "$tmp/proot" --runroot "$tmp/prun" rm -af >/dev/null 2>&1 || true
    umount -R "$tmp/proot" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# busybox-static rootfs
mkdir -p "$tmp/rootfs/bin" "$tmp/rootfs/etc" "$tmp/rootfs/tmp"
cp /bin/busybox "$tmp/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$tmp/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$tmp/rootfs/etc/passwd"
echo 'root:x:0:' > "$tmp/rootfs/etc/group"

cat > "$tmp/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF="$tmp/containers.conf"

berth=("$BERTH" --root "$tmp/broot" --runroot "$tmp/brun" run --rm --rootfs "$tmp/rootfs" true)
podman=(podman --root "$tmp/proot" --runroot "$tmp/prun" --runtime runc run --rm --network none --rootfs "$tmp/rootfs" true)
"${berth[@]}"; "${podman[@]}"   # both work before anything is timed

echo "machine load: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= ROUNDS; r++)); do
    hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$tmp/r$r.json" \
        -n berth "${berth[*]}" -n podman "${podman[*]}" >/dev/null
    python3 - "$tmp/r$r.json" "$r" <<'PY'
import json, sys
d = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
b, p = d["berth"]["median"] * 1000, d["podman"]["median"] * 1000
print(f"round {sys.argv[2]}: berth median {b:.1f} ms, podman median {p:.1f} ms, berth/podman = {b / p:.2f}")
PY
done

# The monitors' memory: MONITORS detached `sleep` containers; per berth-shim: VmRSS, and PSS /
# anonymous memory from smaps_rollup (the binary's file pages are shared between all monitors).
MONITORS=${MONITORS:-10}
ids=()
for ((i = 0; i < MONITORS; i++)); do ids+=("$("$BERTH" --root "$tmp/broot" --runroot "$tmp/brun" run -d --rootfs "$tmp/rootfs" sleep 100)"); done
sleep 0.5
python3 - "$tmp/broot" "${ids[@]}" <<'PY'
import json, sys
root, ids = sys.argv[1], sys.argv[2:]
rss = pss = anon = 0
for i in ids:
    pid = json.load(open(f"{root}/containers/{i}/container.json"))["Monitor"]["Pid"]
    st = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status"))
    sm = dict(l.split(":", 1) for l in open(f"/proc/{pid}/smaps_rollup").readlines()[1:])
    rss += int(st["VmRSS"].split()[0]); pss += int(sm["Pss"].split()[0]); anon += int(sm["Anonymous"].split()[0])
n = len(ids)
print(f"berth-shim x{n}: per monitor VmRSS {rss / n / 1024:.1f} MiB, PSS {pss / n / 1024:.1f} MiB, anonymous {anon / n / 1024:.1f} MiB")
PY
"$BERTH" --root "$tmp/broot" --runroot "$tmp/brun" rm -f "${ids[@]}" >/dev/null
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
