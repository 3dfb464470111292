#!/bin/bash
# Where a pull's CPU goes right after a delete (the "old method" of bench/images.sh): two berth builds
# alternate, each pull made right after `rm -rf` of that build's previous root (+ sync), each under
# `perf record -e cpu-clock -g`. Prints per pull: wall/user/sys, the CPU ms of samples whose stack
# contains ext4's find_inode_bit (the free-inode bitmap scan that walks recently deleted inodes on an
# ext4 without a journal), all sampled CPU ms, and the flex groups (inode / 131072: 8192 inodes per
# group x 16 groups per flex group, this VM's root; a label only) of the layer trees. Then medians.
#   BERTH_BASE=path/to/older/berth [BERTH=out/berth] [N=6] bench/images-alloc.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-6}
BERTH=${BERTH:-$PWD/out/berth}
: "${BERTH_BASE:?set BERTH_BASE to the build to compare with}"
image=$(bench/debian-image.sh)
work=$(mktemp -d /var/tmp/berth-bench-alloc.XXXXXX)
. bench/registry-lib.sh
reg=""; ref=""
cleanup() { [ -n "$reg" ] && { kill "$reg" 2>/dev/null || true; wait "$reg" 2>/dev/null || true; }; rm -rf "$work"; }
trap cleanup EXIT
start_registry "$work" "$image"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$N"); do
  for t in base new; do
    b=$BERTH; [ $t = base ] && b=$BERTH_BASE
    rm -rf "${work:?}/$t"; sync
    /usr/bin/time -o "$work/time" -f "%e %U %S" perf record -q -F 4000 -e cpu-clock -g -o "$work/perf.data" -- \
        "$b" --root "$work/$t" pull -q --tls-verify=false "$ref" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    read -r tot fib < <(perf script -i "$work/perf.data" -F ip,sym 2>/dev/null | awk 'BEGIN{RS=""} {n++; if ($0 ~ /find_inode_bit/) f++} END{print n+0, f+0}')
    g=$(for d in "$work/$t"/images/snapshots/*/layers/*/fs; do echo -n "$(( $(stat -c %i "$d") / 131072 )) "; done)
    echo "$t $(tail -1 "$work/time") alloc_ms $((fib / 4)) sampled_ms $((tot / 4)) load $(cut -d' ' -f1 /proc/loadavg) groups $g"
  done
done | tee "$work/result"
python3 - "$work/result" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
for t in ("base", "new"):
    R = [r for r in rows if r[0] == t]
    w, u, s = ([float(r[i]) for r in R] for i in (1, 2, 3))
    a, c = [int(r[5]) for r in R], [int(r[7]) for r in R]
    print(f"{t}: medians wall {st.median(w):.2f} s, user {st.median(u):.2f} s, sys {st.median(s):.2f} s ({min(s):.2f}-{max(s):.2f}), "
          f"find_inode_bit {st.median(a):.0f} ms ({min(a)}-{max(a)}) of {st.median(c):.0f} ms sampled CPU")
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
