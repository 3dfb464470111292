#!/usr/bin/env bash
# bench/runtime-cpu.sh: load-independent side-by-side figures for the OCI runtimes (run as root).
#
#   N=30 bench/runtime-cpu.sh [BERTH_RUNC_BINARY...]
#
# Wall-clock medians (bench/runtime.sh) mean little on a machine other work keeps busy; CPU time and
# page faults barely move with load. For each scenario and runtime, N invocations interleaved (runtime
# after runtime, scenario after scenario, so a change in the host's state hits every column alike),
# each under `perf stat -e task-clock,page-faults` (the whole process tree: runtime, its init, the
# container's `true`), and the median of each. Several berth-runc binaries may be given (old vs new);
# default: out/berth-runc of this checkout. runc and crun are added when installed; crun runs in a
# private mount namespace with /sys/fs/cgroup/unified unmounted (it refuses this host's hybrid layout,
# see bench/runtime.sh), which adds nothing to its measured tree.
#
# Scenarios (the bundle of bench/runtime.sh: busybox `true`, terminal=false):
#   run      RUNTIME run --bundle B ID
#   seccomp  the same with podman's default profile (SECCOMP_PROFILE, /usr/share/containers/seccomp.json)
#   state    RUNTIME state of a missing container (the fixed cost of one invocation)
# A syscall count of one `run` per runtime (strace -f -c) follows when strace is installed.
set -euo pipefail
export LC_ALL=C
N=${N:-30}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ $(id -u) == 0 ]] || { echo "bench/runtime-cpu.sh: run as root" >&2; exit 1; }
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "bench/runtime-cpu.sh: N must be a positive integer" >&2; exit 2; }
for t in perf jq busybox unshare; do command -v "$t" >/dev/null || { echo "bench/runtime-cpu.sh: $t not found" >&2; exit 1; }; done
berths=("$@"); ((${#berths[@]})) || berths=("$here/out/berth-runc")
for b in "${berths[@]}"; do [[ -x $b ]] || { echo "bench/runtime-cpu.sh: $b not found (make build)" >&2; exit 1; }; done

tmp=$(mktemp -d /tmp/berth-cpu-bench.XXXXXX)
runtimes=() roots=()
cleanup() {
    local i d
    for i in "${!runtimes[@]}"; do
        for d in "${roots[i]}"/*/; do
            [[ -f $d/state.json || -f $d/status ]] || continue
            rt_cmd "$i" delete --force "$(basename "$d")" >/dev/null 2>&1 || true
        done
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

"$here/scripts/make-bundle.sh" "$tmp/b" "${berths[0]}" >/dev/null
jq '.ociVersion = "1.0.2-dev" | .process.terminal = false | .process.args = ["true"]' "$tmp/b/config.json" >"$tmp/c" && mv "$tmp/c" "$tmp/b/config.json"
SECCOMP_PROFILE=${SECCOMP_PROFILE:-/usr/share/containers/seccomp.json}
scenarios=(run state)
if [[ -r $SECCOMP_PROFILE ]]; then
    mkdir "$tmp/bsec"
    jq --arg r "$tmp/b/rootfs" --slurpfile sp "$SECCOMP_PROFILE" '.root.path = $r | .linux.seccomp = $sp[0]' "$tmp/b/config.json" >"$tmp/bsec/config.json"
    scenarios=(run seccomp state)
fi

for b in "${berths[@]}"; do runtimes+=("$b"); done
command -v runc >/dev/null && runtimes+=(runc)
command -v crun >/dev/null && runtimes+=(crun)
for i in "${!runtimes[@]}"; do roots+=("$tmp/root$i"); mkdir "$tmp/root$i"; done

rt_cmd() {   # INDEX ARGS... : runtime INDEX with its --root (crun in its mount namespace)
    local i=$1; shift
    if [[ ${runtimes[i]} == crun ]]; then
        unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' _ crun --root "${roots[i]}" "$@"
    else
        "${runtimes[i]}" --root "${roots[i]}" "$@"
    fi
}
measure() {   # INDEX SCENARIO ID -> "TASKCLOCK_MS PAGEFAULTS" (or "fail")
    local i=$1 sc=$2 id=$3 rt=${runtimes[$1]} args out
    case $sc in
        run) args=(--root "${roots[i]}" run --bundle "$tmp/b" "$id") ;;
        seccomp) args=(--root "${roots[i]}" run --bundle "$tmp/bsec" "$id") ;;
        state) args=(--root "${roots[i]}" state missing-container) ;;
    esac
    if [[ $rt == crun ]]; then
        out=$(unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec perf stat -x, -e task-clock,page-faults "$@" 2>&1 >/dev/null </dev/null' _ "$rt" "${args[@]}") || true
    else
        out=$(perf stat -x, -e task-clock,page-faults "$rt" "${args[@]}" 2>&1 >/dev/null </dev/null) || true
    fi
    local t f
    t=$(grep ',task-clock' <<<"$out" | cut -d, -f1); f=$(grep ',page-faults' <<<"$out" | cut -d, -f1)
    [[ $t =~ ^[0-9.]+$ ]] && echo "$t $f" || echo fail
}

echo "berth runtime CPU benchmark: N=$N, $(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(uname -r), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), mountinfo $(wc -l </proc/self/mountinfo) lines"
for i in "${!runtimes[@]}"; do echo "  [$i] ${runtimes[i]}"; done
declare -A samples=()
for ((k = 0; k < N; k++)); do
    for sc in "${scenarios[@]}"; do
        for i in "${!runtimes[@]}"; do
            r=$(measure "$i" "$sc" "cpu$k-$sc")
            [[ $r == fail ]] || samples[$i.$sc]+="$r"$'\n'
        done
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-9s %-40s %6s %16s %12s\n' scenario runtime ok/N "task-clock ms" "page faults"
med() { sort -g | awk '{v[NR] = $1} END {if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; else print "-"}'; }
for sc in "${scenarios[@]}"; do
    for i in "${!runtimes[@]}"; do
        s=${samples[$i.$sc]:-}
        n=$(grep -c . <<<"$s" || true)
        t=$(awk 'NF {print $1}' <<<"$s" | med); f=$(awk 'NF {print $2}' <<<"$s" | med)
        printf '%-9s %-40s %6s %16s %12s\n' "$sc" "${runtimes[i]}" "$n/$N" "$t" "$f"
    done
done
if command -v strace >/dev/null; then
    echo "syscalls of one run (strace -f -c: calls, errors):"
    for i in "${!runtimes[@]}"; do
        rt=${runtimes[i]}
        if [[ $rt == crun ]]; then
            unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec strace -f -c -o "$0" "$@" >/dev/null 2>&1' "$tmp/sc" "$rt" --root "${roots[i]}" run --bundle "$tmp/b" strace-run || true
        else
            strace -f -c -o "$tmp/sc" "$rt" --root "${roots[i]}" run --bundle "$tmp/b" strace-run >/dev/null 2>&1 || true
        fi
        printf '  %-40s %s\n' "$rt" "$(tail -1 "$tmp/sc" | awk '{print $(NF-2), $(NF-1)}')"
    done
fi
