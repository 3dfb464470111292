#!/bin/sh
# `make run`: Berth's main job on embedded defaults (no configuration, no daemon, no internet): a
# busybox image built locally, a --rm one-shot, and a detached server with logs, exec, stats, stop
# and rm, each command printed before it runs.
set -e
BERTH=${BERTH:-/usr/local/bin/berth}
# BERTH_OPTS="--root DIR --runroot DIR" runs the demo on other state directories than the defaults.
BERTH_OPTS=${BERTH_OPTS:-}
BUSYBOX=${BUSYBOX:-/bin/busybox}
IMAGE=berth-demo/busybox:latest
dir=$(mktemp -d /tmp/berth-demo.XXXXXX)
cleanup() { "$BERTH" $BERTH_OPTS rm -f demo-web >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }
run() { b=$1; shift; printf '$ berth %s\n' "$*"; "$b" $BERTH_OPTS "$@"; }

step "building a busybox image from $BUSYBOX (busybox-static) and importing it"
r="$dir/rootfs"
mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/root" "$r/proc" "$r/sys" "$r/dev"
cp "$BUSYBOX" "$r/bin/busybox"
for a in $("$BUSYBOX" --list); do [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' > "$r/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
tar -C "$r" -cf "$dir/busybox.tar" .
run "$BERTH" import -c 'CMD ["sh"]' -m "busybox-static, built by make run" "$dir/busybox.tar" "$IMAGE"
run "$BERTH" images

step "a one-shot container: --rm, the exit status passes through"
run "$BERTH" run --rm "$IMAGE" sh -c 'echo "hello from $(hostname), pid $$ in its own namespace"; id'
set +e
"$BERTH" $BERTH_OPTS run --rm "$IMAGE" sh -c 'exit 3'
echo "exit status: $?"
set -e

step "a detached server: logs, exec, stats, stop, rm"
run "$BERTH" run -d --name demo-web --memory 64m "$IMAGE" sh -c 'i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 1; done'
sleep 2
run "$BERTH" ps
run "$BERTH" logs --tail 2 demo-web
run "$BERTH" exec demo-web ps
run "$BERTH" stats --no-stream demo-web
run "$BERTH" stop -t 1 demo-web
run "$BERTH" rm demo-web
run "$BERTH" ps -a
echo
echo "done: the image stays (berth rmi $IMAGE removes it)"
