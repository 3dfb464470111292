#!/usr/bin/env bash
# bench/docker-api-list.sh: latency of the Docker API's `GET /containers/json?all=1` with N (500)
# created containers, next to `berth ps -a` on the same store (run as root).
#
#   N=500 RUNS=30 bench/docker-api-list.sh
#
# A `berth system service` on a temp socket with temp --root/--runroot; an image imported from a
# busybox-static rootfs; N containers created through the API (curl --unix-socket, network none,
# not started). hyperfine times both commands (medians printed); the service's own CPU time per
# request (utime+stime from /proc/PID/stat over RUNS requests) is printed too: that figure barely
# moves with the machine's load.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-500} RUNS=${RUNS:-30}
BERTH=${BERTH:-$PWD/out/berth}
tmp=$(mktemp -d /tmp/berth-dapi-bench-XXXXXX)
sock="$tmp/docker.sock"
b=("$BERTH" --root "$tmp/root" --runroot "$tmp/run")
svc=
cleanup() {
    [ -n "$svc" ] && kill "$svc" 2>/dev/null && wait "$svc" 2>/dev/null || true
    "${b[@]}" rm -f $("${b[@]}" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
    grep " $tmp" /proc/self/mountinfo | cut -d' ' -f5 | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# busybox-static rootfs → an image
mkdir -p "$tmp/rootfs/bin" "$tmp/rootfs/etc"
cp /bin/busybox "$tmp/rootfs/bin/busybox"
ln -s busybox "$tmp/rootfs/bin/sh"; ln -s busybox "$tmp/rootfs/bin/true"
echo 'root:x:0:0:root:/root:/bin/sh' > "$tmp/rootfs/etc/passwd"
tar -C "$tmp/rootfs" -cf "$tmp/rootfs.tar" .
"${b[@]}" import "$tmp/rootfs.tar" bench/busybox:1 >/dev/null

"${b[@]}" system service --host "unix://$sock" >"$tmp/service.log" 2>&1 &
svc=$!
for _ in $(seq 1 300); do [ -S "$sock" ] && curl -sf --unix-socket "$sock" http://d/_ping >/dev/null && break; sleep 0.1; done
api() { curl -sf --unix-socket "$sock" "$@"; }

body='{"Image":"bench/busybox:1","Cmd":["true"],"HostConfig":{"NetworkMode":"none"}}'
start=$(date +%s.%N)
for ((i = 0; i < N; i++)); do
    api -X POST -H 'Content-Type: application/json' -d "$body" "http://d/v1.47/containers/create?name=c$i" >/dev/null
done
echo "created $N containers through the API in $(echo "$(date +%s.%N) - $start" | bc) s"
count=$(api "http://d/v1.47/containers/json?all=1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$count" = "$N" ] || { echo "expected $N containers in the list, got $count" >&2; exit 1; }
psrows=$("${b[@]}" ps -a -q | wc -l)
[ "$psrows" = "$N" ] || { echo "expected $N rows from berth ps -a, got $psrows" >&2; exit 1; }

echo "machine load: $(cut -d' ' -f1-3 /proc/loadavg)"
cpu() { awk '{print $14 + $15}' "/proc/$svc/stat"; }
before=$(cpu)
for ((i = 0; i < RUNS; i++)); do api "http://d/v1.47/containers/json?all=1" -o /dev/null; done
after=$(cpu)
hz=$(getconf CLK_TCK)
echo "service CPU per GET /containers/json?all=1: $(echo "scale=2; ($after - $before) * 1000 / $hz / $RUNS" | bc) ms (utime+stime over $RUNS requests)"

hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$tmp/h.json" \
    -n "GET /containers/json?all=1" "curl -sf --unix-socket $sock http://d/v1.47/containers/json?all=1 -o /dev/null" \
    -n "berth ps -a" "${b[*]} ps -a" >/dev/null
python3 - "$tmp/h.json" "$N" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"{r['command']}: median {r['median'] * 1000:.1f} ms (min {r['min'] * 1000:.1f}, max {r['max'] * 1000:.1f}) with {sys.argv[2]} containers")
PY
