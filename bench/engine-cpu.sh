#!/usr/bin/env bash
# bench/engine-cpu.sh: load-independent, side-by-side figures for starting a container through the engine
# (run as root). Old vs new binaries in the same run, interleaved.
#
#   N=20 bench/engine-cpu.sh [BERTH...]            # default: out/berth of this checkout
#   SCENARIOS="none bridge api" N=20 bench/engine-cpu.sh /tmp/old/berth out/berth
#
# Each BERTH is a `berth` binary; the berth-runc next to it is its runtime (as the engine finds it).
# Wall-clock medians (bench/engine.sh, bench/network.sh run, bench/docker-api.sh) mean little while other
# work keeps the machine busy; CPU time, page faults and the number of processes and syscalls barely move
# with the load. For every scenario, N iterations; in each, every binary once (so a change in the host's
# state hits every column alike):
#   none    BERTH run --rm --network none --rootfs BUSYBOX true         (perf stat of the whole process tree)
#   bridge  BERTH run --rm --rootfs BUSYBOX true, on the default bridge (its own bridge and subnet per binary,
#           10.217.240+i.0/24, through the root's network-options.json)
#   api     docker run --rm --network none IMAGE true against `BERTH system service` (own socket, image imported
#           from the same rootfs): CPU = the docker CLI's (perf stat) + the service's and everything it starts
#           (its own cpuacct cgroup: monitor, runtime, init), the wall time beside it
# Printed: medians of task-clock (ms), page faults, wall (ms); then, per binary and scenario, one run under
# strace -f -c: processes started (execve) and syscalls (calls/errors).
set -euo pipefail
export LC_ALL=C
N=${N:-20}
SCENARIOS=${SCENARIOS:-none bridge api}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$here/bench/lib.sh"
[[ $(id -u) == 0 ]] || { echo "bench/engine-cpu.sh: run as root" >&2; exit 1; }
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "bench/engine-cpu.sh: N must be a positive integer" >&2; exit 2; }
for t in perf strace; do command -v "$t" >/dev/null || { echo "bench/engine-cpu.sh: $t not found" >&2; exit 1; }; done
berths=("$@"); ((${#berths[@]})) || berths=("$here/out/berth")
for b in "${berths[@]}"; do [[ -x $b ]] || { echo "bench/engine-cpu.sh: $b not found (make build)" >&2; exit 1; }; done
[[ " $SCENARIOS " == *" api "* ]] && ! command -v docker >/dev/null && { echo "bench/engine-cpu.sh: docker CLI not found (api scenario)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/berth-engine-cpu.XXXXXX)
spids=() cgs=()
B() { local i=$1; shift; "${berths[i]}" --root "$tmp/root$i" --runroot "$tmp/run$i" "$@"; }
cleanup() {
    set +e
    local i
    for i in "${!spids[@]}"; do kill "${spids[i]}" 2>/dev/null; wait "${spids[i]}" 2>/dev/null; done
    for i in "${!berths[@]}"; do
        # shellcheck disable=SC2046
        B "$i" rm -f $(B "$i" ps -aq 2>/dev/null) >/dev/null 2>&1
        B "$i" network rm bridge >/dev/null 2>&1
    done
    sleep 0.2
    # the runtime nests its containers' parent cgroup ("berth") under the caller's: deepest first
    for c in "${cgs[@]}"; do find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null; done
    bench_umount_under "$tmp"
    rm -rf "$tmp"
}
trap cleanup EXIT
bench_rootfs "$tmp/rootfs" sh true
cpuacct=$(awk '$9 == "cgroup" && $NF ~ /cpuacct/ {print $5; exit}' /proc/self/mountinfo)
mine=$(awk -F: '$2 ~ /cpuacct/ {print $3; exit}' /proc/self/cgroup)

for i in "${!berths[@]}"; do
    mkdir -p "$tmp/root$i"
    printf '{"defaultBridge": "bec%d%d", "defaultSubnet": "10.217.%d.0/24", "chainPrefix": "BEC%d%d"}\n' $$ "$i" $((240 + i)) $$ "$i" >"$tmp/root$i/network-options.json"
    if [[ " $SCENARIOS " == *" api "* ]]; then
        # the service in a cpuacct cgroup of its own (under ours): all it starts is counted there
        cg="$cpuacct$mine/berth-engine-cpu-$$-$i"
        mkdir -p "$cg"; cgs+=("$cg")
        tar -C "$tmp/rootfs" -c . | B "$i" import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin' - bench/busybox:1 >/dev/null
        sh -c 'echo $$ > "$1/cgroup.procs"; shift; exec "$@"' _ "$cg" "${berths[i]}" --root "$tmp/root$i" --runroot "$tmp/run$i" \
            system service --host "unix://$tmp/s$i.sock" >"$tmp/service$i.log" 2>&1 &
        spids+=($!)
    fi
done
D() { local i=$1; shift; DOCKER_HOST=unix://$tmp/s$i.sock docker "$@"; }
if [[ " $SCENARIOS " == *" api "* ]]; then
    for i in "${!berths[@]}"; do
        for _ in $(seq 300); do D "$i" version >/dev/null 2>&1 && break; sleep 0.1; done
        D "$i" run --rm --network none bench/busybox:1 true || { echo "berth [$i]: docker run through the API failed" >&2; exit 1; }
    done
fi
for i in "${!berths[@]}"; do
    for sc in $SCENARIOS; do [[ $sc == api ]] || B "$i" run --rm $([[ $sc == none ]] && echo --network none) --rootfs "$tmp/rootfs" true; done
done

cmdline() { # INDEX SCENARIO -> the command, as words
    case $2 in
        none) echo "${berths[$1]} --root $tmp/root$1 --runroot $tmp/run$1 run --rm --network none --rootfs $tmp/rootfs true" ;;
        bridge) echo "${berths[$1]} --root $tmp/root$1 --runroot $tmp/run$1 run --rm --rootfs $tmp/rootfs true" ;;
        api) echo "docker -H unix://$tmp/s$1.sock run --rm --network none bench/busybox:1 true" ;;
    esac
}
usage_ns() { cat "${cgs[$1]}/cpuacct.usage"; }
measure() { # INDEX SCENARIO -> "TASKCLOCK_MS FAULTS WALL_MS" or fail
    local i=$1 sc=$2 out t f w u0 u1 t0 t1
    # shellcheck disable=SC2046
    [[ $sc == api ]] && u0=$(usage_ns "$i")
    t0=$EPOCHREALTIME
    # shellcheck disable=SC2046
    out=$(perf stat -x, -e task-clock,page-faults $(cmdline "$i" "$sc") 2>&1 >/dev/null </dev/null) || { echo fail; return; }
    t1=$EPOCHREALTIME
    t=$(grep ',task-clock' <<<"$out" | cut -d, -f1); f=$(grep ',page-faults' <<<"$out" | cut -d, -f1)
    if [[ $sc == api ]]; then
        sleep 0.05 # the monitor's last steps after it answered
        u1=$(usage_ns "$i")
        t=$(awk -v t="$t" -v a="$u0" -v b="$u1" 'BEGIN {printf "%.3f", t + (b - a) / 1e6}')
        f=-
    fi
    w=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) * 1000}')
    [[ $t =~ ^[0-9.]+$ ]] && echo "$t $f $w" || echo fail
}

echo "berth engine CPU benchmark: N=$N, $(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(uname -r), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), mountinfo $(wc -l </proc/self/mountinfo) lines"
for i in "${!berths[@]}"; do echo "  [$i] ${berths[i]} (runtime: $(dirname "${berths[i]}")/berth-runc)"; done
declare -A samples=()
for ((k = 0; k < N; k++)); do
    for sc in $SCENARIOS; do
        for i in "${!berths[@]}"; do
            r=$(measure "$i" "$sc")
            [[ $r == fail ]] || samples[$i.$sc]+="$r"$'\n'
        done
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
med() { sort -g | awk '{v[NR] = $1} END {if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; else print "-"}'; }
printf '%-8s %-44s %6s %16s %12s %10s\n' scenario berth ok/N "task-clock ms" "page faults" "wall ms"
for sc in $SCENARIOS; do
    for i in "${!berths[@]}"; do
        s=${samples[$i.$sc]:-}
        n=$(grep -c . <<<"$s" || true)
        t=$(awk 'NF {print $1}' <<<"$s" | med); w=$(awk 'NF {print $3}' <<<"$s" | med)
        f=$(awk 'NF && $2 != "-" {print $2}' <<<"$s" | med)
        printf '%-8s %-44s %6s %16s %12s %10s\n' "$sc" "[$i] ${berths[i]}" "$n/$N" "$t" "$f" "$w"
    done
done
echo "processes (execve) and syscalls (calls/errors) of one run, strace -f -c (api: the docker CLI and the service):"
for sc in $SCENARIOS; do
    for i in "${!berths[@]}"; do
        if [[ $sc == api ]]; then
            strace -f -c -o "$tmp/sc.svc" -p "${spids[i]}" 2>/dev/null &
            st=$!
            sleep 0.5
            # shellcheck disable=SC2046
            strace -f -c -o "$tmp/sc" $(cmdline "$i" "$sc") >/dev/null 2>&1 || true
            sleep 0.2; kill -INT "$st"; wait "$st" 2>/dev/null || true
            cat "$tmp/sc.svc" >>"$tmp/sc"
        else
            # shellcheck disable=SC2046
            strace -f -c -o "$tmp/sc" $(cmdline "$i" "$sc") >/dev/null 2>&1 || true
        fi
        # strace -c lines: % time, seconds, usecs/call, calls, [errors,] syscall
        awk -v sc="$sc" -v b="[$i] ${berths[i]}" '
            NF == 6 && $NF != "total" {if ($6 == "execve") ex += $4}
            NF == 5 && $NF != "total" {if ($5 == "execve") ex += $4}
            $NF == "total" {calls += $4; errs += (NF == 6 ? $5 : 0)}
            END {printf "  %-8s %-44s execve %d, syscalls %d/%d\n", sc, b, ex, calls, errs}' "$tmp/sc"
    done
done
