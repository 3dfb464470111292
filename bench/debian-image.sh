#!/bin/bash
# Builds the large benchmark image once: a debootstrap (minbase) Debian 12 rootfs of ~200 MB in four
# layers, as an OCI image layout at $BENCH_DIR/oci:bench. Cached: later runs reuse it.
# Needs debootstrap and network access to the Debian mirror apt uses (the only traffic it sends).
set -euo pipefail
BENCH_DIR=${BENCH_DIR:-/var/tmp/bench-debian}
layout=$BENCH_DIR/oci
[ -f "$layout/.complete" ] && { echo "$layout:bench"; exit 0; }
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
mkdir -p "$BENCH_DIR"
if [ ! -x "$BENCH_DIR/rootfs/bin/sh" ]; then
    rm -rf "$BENCH_DIR/rootfs"
    debootstrap --variant=minbase bookworm "$BENCH_DIR/rootfs" http://deb.debian.org/debian >&2
fi
rm -rf "$layout" "$BENCH_DIR/bundle"
umoci init --layout "$layout"
umoci new --image "$layout:bench"
umoci unpack --image "$layout:bench" "$BENCH_DIR/bundle" >/dev/null
fs=$BENCH_DIR/bundle/rootfs
# Layer by layer, as a Dockerfile would add them: the base without /usr, then usr/lib, usr/share, the rest.
add() { tar -C "$BENCH_DIR/rootfs" -cf - "$@" | tar -C "$fs" -xpf -; umoci repack --refresh-bundle --image "$layout:bench" "$BENCH_DIR/bundle"; }
mkdir -p "$fs/usr"
( cd "$BENCH_DIR/rootfs" && add $(ls -A | grep -vx usr) )
add usr/lib
add usr/share
( cd "$BENCH_DIR/rootfs/usr" && add $(ls -A | grep -vxE 'lib|share' | sed 's|^|usr/|') )
umoci config --image "$layout:bench" --config.cmd /bin/bash --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
umoci gc --layout "$layout"
rm -rf "$BENCH_DIR/bundle"
touch "$layout/.complete"
echo "$layout:bench"
