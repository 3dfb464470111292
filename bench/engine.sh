#!/usr/bin/env bash
# bench/engine.sh (as root): the engine side by side with podman (and docker when a daemon is reachable).
#
# 1. `berth run --rm --rootfs DIR true` vs `podman run --rm --network none --rootfs DIR true`: hyperfine runs
#    them in ROUNDS interleaved rounds of RUNS runs (bench/lib.sh); medians and ratios per round. Berth
#    runs with no network too (`--network none`). BERTH_BASE=/path/to/older/berth adds that binary as a
#    third command, for a before/after in the same run. Docker (`docker run --rm --network none`, the
#    same rootfs imported as an image) is added when `docker info` answers.
# 2. CONCURRENT (default 100) `run -d … sleep 1000` started at once, for each engine in turn: the wall
#    time until all of them returned, then, while they are all up, the memory of the per-container
#    monitors: berth-shim for Berth, conmon for podman (VmRSS, peak VmHWM and PSS/anonymous/private from
#    /proc/PID/smaps_rollup, page tables and threads from /proc/PID/status, per monitor), then the time
#    to remove them all (`rm -f`). PSS is the figure to compare: private pages plus a 1/N share of
#    the pages all monitors (and the CLI) map from the same executable.
#
#   RUNS=20 ROUNDS=3 CONCURRENT=100 bench/engine.sh
#   SKIP_RUN=1 bench/engine.sh         # only part 2
#   SKIP_CONCURRENT=1 bench/engine.sh  # only part 1
#
# Both use temp storage roots; podman gets the containers.conf this machine needs (bench/lib.sh) and runc
# (crun refuses this hybrid cgroup layout); Berth uses its own out/berth-runc.
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$here/bench/lib.sh"
BERTH=${BERTH:-$here/out/berth}
CONCURRENT=${CONCURRENT:-100}
for t in hyperfine podman python3 "$BERTH"; do command -v "$t" >/dev/null || { echo "bench/engine.sh: $t not found" >&2; exit 1; }; done
tmp=$(mktemp -d /tmp/berth-bench-XXXXXX)
B=("$BERTH" --root "$tmp/broot" --runroot "$tmp/brun")
P=(podman --root "$tmp/proot" --runroot "$tmp/prun" --tmpdir "$tmp/ptmp" --runtime runc)
docker_image=
cleanup() {
    set +e
    "${B[@]}" rm -f $("${B[@]}" ps -aq 2>/dev/null) >/dev/null 2>&1
    [[ -n ${BERTH_BASE:-} ]] && "$BERTH_BASE" --root "$tmp/oroot" --runroot "$tmp/orun" rm -f $("$BERTH_BASE" --root "$tmp/oroot" --runroot "$tmp/orun" ps -aq 2>/dev/null) >/dev/null 2>&1
    "${P[@]}" rm -af -t 0 >/dev/null 2>&1
    [[ -n $docker_image ]] && docker rmi -f "$docker_image" >/dev/null 2>&1
    bench_umount_under "$tmp"
    rm -rf "$tmp"
}
trap cleanup EXIT
bench_rootfs "$tmp/rootfs"
bench_podman_conf "$tmp/containers.conf"
echo "machine load: $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ -z ${SKIP_RUN:-} ]]; then
    cmds=(berth "${B[*]} run --rm --network none --rootfs $tmp/rootfs true")
    [[ -n ${BERTH_BASE:-} ]] && cmds+=(berth-base "$BERTH_BASE --root $tmp/oroot --runroot $tmp/orun run --rm --network none --rootfs $tmp/rootfs true")
    cmds+=(podman "${P[*]} run --rm --network none --rootfs $tmp/rootfs true")
    if docker info >/dev/null 2>&1; then
        docker_image=berth-bench-busybox:$$
        tar -C "$tmp/rootfs" -c . | docker import - "$docker_image" >/dev/null
        cmds+=(docker "docker run --rm --network none $docker_image true")
    else
        echo "(no docker daemon answers: docker left out)"
    fi
    for ((i = 1; i < ${#cmds[@]}; i += 2)); do ${cmds[i]} >/dev/null; done   # each works before anything is timed
    bench_rounds "run --rm true" "${cmds[@]}"
    # CPU time (user+sys of the whole process tree) and page faults barely move with the machine's load:
    # they guide and prove a change where the wall clock cannot (shared, loaded machines).
    if command -v perf >/dev/null; then
        for ((i = 0; i < ${#cmds[@]}; i += 2)); do
            # shellcheck disable=SC2086
            perf stat -r "${RUNS:-20}" -x, -e task-clock,page-faults,context-switches -- ${cmds[i + 1]} 2>&1 >/dev/null |
                awk -F, -v n="${cmds[i]}" '{v[$3] = $1} END {printf "%s: task-clock %.1f ms, page-faults %d, context-switches %d (mean of '"${RUNS:-20}"' runs, whole process tree)\n", n, v["task-clock"], v["page-faults"], v["context-switches"]}'
        done
    fi
fi

# Per-monitor memory of the processes whose command line contains $1 and whose argv[0] is named $2.
monitors() {
    python3 - "$1" "$2" <<'PY'
import os, sys
mark, name = sys.argv[1], sys.argv[2]
rows = []
for d in os.listdir("/proc"):
    if not d.isdigit():
        continue
    try:
        argv = open(f"/proc/{d}/cmdline", "rb").read().decode().split("\0")
        # by argv[0]: the monitor is `berth` exec'd as "berth-shim" (k3s-style multicall)
        if os.path.basename(argv[0]) != name or mark not in " ".join(argv):
            continue
        st = dict(l.split(":", 1) for l in open(f"/proc/{d}/status"))
        sm = dict(l.split(":", 1) for l in open(f"/proc/{d}/smaps_rollup").readlines()[1:])
        kb = lambda v: int(v.split()[0])
        rows.append((kb(st["VmRSS"]), kb(st["VmHWM"]), kb(sm["Pss"]), kb(sm["Anonymous"]),
                     kb(sm["Private_Clean"]) + kb(sm["Private_Dirty"]), kb(st["VmPTE"]), int(st["Threads"])))
    except (FileNotFoundError, ProcessLookupError, KeyError):
        pass
n = len(rows)
if n == 0:
    print(f"  no {name} processes found"); sys.exit()
s = [sum(r[i] for r in rows) for i in range(7)]
print(f"  {n} x {name}: per monitor VmRSS {s[0] / n / 1024:.2f} MiB, peak VmHWM {s[1] / n / 1024:.2f} MiB, "
      f"PSS {s[2] / n / 1024:.2f} MiB, anonymous {s[3] / n / 1024:.2f} MiB; all {n}: PSS {s[2] / 1024:.1f} MiB")
# PSS = private pages + a 1/N share of the pages shared with the other processes (code, read-only data);
# page tables are the kernel's, outside PSS, but paid per process too.
print(f"  {n} x {name}: per monitor private {s[4] / n / 1024:.2f} MiB, page tables {s[5] / n:.0f} KiB, threads {s[6] / n:.1f}")
PY
}

# concurrent LABEL MARK MONITOR RMFLAGS CLI…: CONCURRENT `CLI run -d` at once; prints the wall time, the
# memory of the monitors (argv[0] MONITOR, MARK in their command line), the time of `CLI rm RMFLAGS` of all.
concurrent() {
    local label=$1 mark=$2 monitor=$3 rmflags=$4; shift 4
    local t0 t1 i fails=0
    t0=$EPOCHREALTIME
    for ((i = 0; i < CONCURRENT; i++)); do
        "$@" run -d --network none --rootfs "$tmp/rootfs" sleep 1000 >"$tmp/c-$label-$i.out" 2>&1 &
    done
    for ((i = 0; i < CONCURRENT; i++)); do wait -n || fails=$((fails + 1)); done
    t1=$EPOCHREALTIME
    local up
    up=$("$@" ps -q | wc -l)
    printf '%s: %d concurrent run -d: %.2f s wall for all, %d failed, %d running\n' "$label" "$CONCURRENT" "$(echo "$t1 - $t0" | bc)" "$fails" "$up"
    ((fails == 0)) || head -3 "$tmp"/c-"$label"-*.out | grep -v '^[0-9a-f]\{64\}$' | head -5
    monitors "$mark" "$monitor"
    t0=$EPOCHREALTIME
    # shellcheck disable=SC2046
    "$@" rm $rmflags $("$@" ps -aq) >/dev/null
    t1=$EPOCHREALTIME
    printf '%s: rm -f of all: %.2f s\n' "$label" "$(echo "$t1 - $t0" | bc)"
}

if [[ -z ${SKIP_CONCURRENT:-} ]]; then
    echo "load before the concurrent starts: $(cut -d' ' -f1-3 /proc/loadavg)"
    concurrent berth "$tmp/brun" berth-shim -f "${B[@]}"
    echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
    concurrent podman "$tmp/prun" conmon "-f -t 0" "${P[@]}"   # podman's rm -f waits 10 s for SIGTERM first
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
