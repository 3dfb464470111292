#!/bin/sh
# make-bundle.sh DIR [berth-runc]: an OCI bundle with a busybox-static rootfs and a default config.json.
set -e
dir=$1; runtime=${2:-berth-runc}
[ -n "$dir" ] || { echo "usage: $0 DIR [runtime]" >&2; exit 2; }
mkdir -p "$dir/rootfs/bin" "$dir/rootfs/etc" "$dir/rootfs/tmp"
cp /bin/busybox "$dir/rootfs/bin/busybox"
for a in $("$dir/rootfs/bin/busybox" --list); do [ -e "$dir/rootfs/bin/$a" ] || ln -s busybox "$dir/rootfs/bin/$a"; done
echo "root:x:0:0:root:/root:/bin/sh" > "$dir/rootfs/etc/passwd"
echo "root:x:0:" > "$dir/rootfs/etc/group"
rm -f "$dir/config.json"
(cd "$dir" && "$runtime" spec)
