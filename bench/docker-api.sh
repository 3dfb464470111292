#!/usr/bin/env bash
# bench/docker-api.sh: `docker run --rm IMAGE true` through Berth's Docker API vs through a real dockerd.
#
#   N=20 bench/docker-api.sh
#
# One run, interleaved (Berth, dockerd, Berth, dockerd, ...), the same docker CLI and the same image:
#   - dockerd (Debian's docker.io) started by this script on a private socket with its own
#     --data-root/--exec-root/--pidfile and --bridge none --iptables=false --ip-masq=false
#     --ip-forward=false --userland-proxy=false: it never touches the host's networking. It is
#     stopped by its PID (SIGTERM, it stops its own containerd) and its dirs removed at the end.
#   - `berth system service` on its own socket with a temp --root/--runroot, stopped by its PID.
#   - the image: a busybox-static rootfs imported into that dockerd (`docker import`), saved with
#     `docker save` and loaded into Berth's store with `berth load` (so a dockerd-saved image loading
#     and running on Berth is checked on every run).
#   - both run with `--network none` (no bridge on either side: dockerd has none here).
# Prints the medians (ms), the ratio Berth/dockerd and the load average.
#   BERTH=PATH   default: out/berth of this checkout;  DOCKER=PATH default: docker on PATH
set -euo pipefail
cd "$(dirname "$0")/.."
BERTH=${BERTH:-$PWD/out/berth}
DOCKER=${DOCKER:-$(command -v docker)}
N=${N:-20}
command -v dockerd >/dev/null || { echo "dockerd not found (apt-get install docker.io)" >&2; exit 1; }
dir=$(mktemp -d /tmp/berth-bench-dapi.XXXXXX)
dpid=""; bpid=""
cleanup() {
    set +e
    if [ -n "$bpid" ]; then
        DOCKER_HOST=unix://$dir/berth.sock "$DOCKER" ps -aq 2>/dev/null | xargs -r env DOCKER_HOST=unix://$dir/berth.sock "$DOCKER" rm -f >/dev/null 2>&1
        kill "$bpid" 2>/dev/null; wait "$bpid" 2>/dev/null
    fi
    if [ -n "$dpid" ]; then kill "$dpid" 2>/dev/null; for _ in $(seq 100); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done; fi
    "$BERTH" --root "$dir/berth-root" --runroot "$dir/berth-run" network rm bridge >/dev/null 2>&1
    grep -F " $dir/" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

# dockerd, private everything
mkdir -p "$dir/d-data" "$dir/d-exec"
dockerd -H "unix://$dir/dockerd.sock" --data-root "$dir/d-data" --exec-root "$dir/d-exec" --pidfile "$dir/dockerd.pid" \
    --bridge none --iptables=false --ip-masq=false --ip-forward=false --userland-proxy=false >"$dir/dockerd.log" 2>&1 &
dpid=$!
# berth, own root and its own default bridge name (containers here use --network none anyway)
mkdir -p "$dir/berth-root"
sfx=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '{"defaultBridge": "bb%s", "defaultSubnet": "10.216.%d.0/24", "chainPrefix": "BB%s"}\n' "$sfx" $((RANDOM % 250)) "${sfx^^}" >"$dir/berth-root/network-options.json"
"$BERTH" --root "$dir/berth-root" --runroot "$dir/berth-run" system service --host "unix://$dir/berth.sock" >"$dir/berth.log" 2>&1 &
bpid=$!
for _ in $(seq 600); do [ -S "$dir/dockerd.sock" ] && [ -S "$dir/berth.sock" ] && break; sleep 0.1; done
D() { DOCKER_HOST=unix://$dir/dockerd.sock "$DOCKER" "$@"; }
B() { DOCKER_HOST=unix://$dir/berth.sock "$DOCKER" "$@"; }
for _ in $(seq 300); do D version >/dev/null 2>&1 && B version >/dev/null 2>&1 && break; sleep 0.1; done
echo "dockerd $(D version --format '{{.Server.Version}} (API {{.Server.APIVersion}})'); berth API $(B version --format '{{.Server.APIVersion}}'); client $("$DOCKER" --version)"

# the image: busybox-static imported into dockerd, saved, loaded into Berth
mkdir -p "$dir/rootfs/bin"
cp /bin/busybox "$dir/rootfs/bin/"
for a in sh true; do ln -s busybox "$dir/rootfs/bin/$a"; done
tar -C "$dir/rootfs" -c . | D import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin' - bench/busybox:1 >/dev/null
D save bench/busybox:1 -o "$dir/busybox.tar"
"$BERTH" --root "$dir/berth-root" --runroot "$dir/berth-run" load -i "$dir/busybox.tar" >/dev/null
[ "$(B run --rm --network none bench/busybox:1 sh -c 'echo ok')" = ok ] || { echo "the dockerd-saved image does not run on Berth" >&2; exit 1; }
D run --rm --network none bench/busybox:1 true
B run --rm --network none bench/busybox:1 true

echo "docker run --rm --network none bench/busybox:1 true, N=$N each, interleaved; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
: >"$dir/b.txt"; : >"$dir/d.txt"
for _ in $(seq "$N"); do
    ms B run --rm --network none bench/busybox:1 true >>"$dir/b.txt"
    ms D run --rm --network none bench/busybox:1 true >>"$dir/d.txt"
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
bm=$(median "$dir/b.txt"); dm=$(median "$dir/d.txt")
echo "berth   (Docker API): median ${bm} ms  (min $(sort -n "$dir/b.txt" | head -1), max $(sort -n "$dir/b.txt" | tail -1))"
echo "dockerd             : median ${dm} ms  (min $(sort -n "$dir/d.txt" | head -1), max $(sort -n "$dir/d.txt" | tail -1))"
awk -v b="$bm" -v d="$dm" 'BEGIN {printf "ratio berth/dockerd: %.2f (goal <= 0.33)\n", b / d}'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
