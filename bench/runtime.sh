#!/usr/bin/env bash
# bench/runtime.sh: side-by-side OCI runtime benchmark, berth-runc vs runc vs crun (run as root).
#
#   N=200 bench/runtime.sh          (or: make bench)
#
# One busybox-static bundle whose process is `true` (terminal=false), one container root per runtime
# in a temp dir. Scenarios, each measured for N iterations with the runtimes interleaved
# (iteration i runs berth, runc, crun, iteration i+1 runs them in the reverse order, ...):
#   run     RUNTIME --root R run --bundle B ID           (create+start+wait+delete)
#   split   create / start / wait (poll `state` until stopped) / delete, each timed
#   mem1m   `run` of the same bundle with linux.resources.memory.limit = 1048576
# Each command is timed by a small worker (bash, $EPOCHREALTIME around a fork+exec of the runtime;
# stdio to /dev/null), one worker per runtime, so crun can be timed inside its own mount namespace
# when it needs one (see CRUN_HIDE_UNIFIED below) without adding nsenter to its timings.
#
# Environment:
#   N=200                 iterations per scenario and runtime
#   WARMUP=5              untimed `run`s per runtime first
#   BERTH_RUNC=PATH       default: out/berth-runc of this checkout
#   CRUN_HIDE_UNIFIED=1   crun refuses hybrid cgroups (v1 + a cgroup2 mount holding hugetlb). If plain
#                         crun fails, try --cgroup-manager=disabled, then a config without cgroups, then
#                         (unless 0) a private mount namespace with /sys/fs/cgroup/unified unmounted, so
#                         crun sees plain cgroup v1. The host's mounts are never changed.
#   KEEP=DIR              copy the raw samples (microseconds, one per line) to DIR
set -euo pipefail
export LC_ALL=C

# ---------------------------------------------------------------- worker mode -----------------------
# bench/runtime.sh --worker ROOT ERRFILE -- RUNTIME [ARGS...]
# Reads "OP ID BUNDLE" lines on stdin, answers "RC MICROSECONDS" on stdout. OP: run create start wait
# delete kill (kill = delete --force, untimed use). The runtime's stderr of the last op goes to ERRFILE.
if [[ ${1:-} == --worker ]]; then
    root=$2 err=$3; shift 4; rt=("$@")
    set +e
    while read -r op id bundle; do
        case $op in
        run)    t0=$EPOCHREALTIME; "${rt[@]}" --root "$root" run --bundle "$bundle" "$id" </dev/null >/dev/null 2>"$err"; rc=$?; t1=$EPOCHREALTIME ;;
        create) t0=$EPOCHREALTIME; "${rt[@]}" --root "$root" create --bundle "$bundle" "$id" </dev/null >/dev/null 2>"$err"; rc=$?; t1=$EPOCHREALTIME ;;
        start)  t0=$EPOCHREALTIME; "${rt[@]}" --root "$root" start "$id" </dev/null >/dev/null 2>"$err"; rc=$?; t1=$EPOCHREALTIME ;;
        delete) t0=$EPOCHREALTIME; "${rt[@]}" --root "$root" delete "$id" </dev/null >/dev/null 2>"$err"; rc=$?; t1=$EPOCHREALTIME ;;
        wait)   # poll `state` until it says stopped (5 s at most)
                t0=$EPOCHREALTIME; rc=1
                for ((k = 0; k < 5000; k++)); do
                    s=$("${rt[@]}" --root "$root" state "$id" </dev/null 2>"$err") || break
                    [[ $s =~ \"status\":[[:space:]]*\"stopped\" ]] && { rc=0; break; }
                done
                t1=$EPOCHREALTIME
                [[ $rc == 0 ]] || { [[ -s $err ]] || echo "state never said stopped: $s" >"$err"; } ;;
        kill)   t0=$EPOCHREALTIME; "${rt[@]}" --root "$root" delete --force "$id" </dev/null >/dev/null 2>"$err"; rc=$?; t1=$EPOCHREALTIME ;;
        cleanup) # force-delete whatever is left in ROOT
                t0=$EPOCHREALTIME; rc=0
                for d in "$root"/*/; do
                    [[ -f $d/state.json ]] || continue; c=$(basename "$d")   # containers only (not berth-runc's @seccomp-cache/)
                    "${rt[@]}" --root "$root" delete --force "$c" </dev/null >/dev/null 2>>"$err" || rc=1
                done
                t1=$EPOCHREALTIME ;;
        *) t0=0 t1=0 rc=99 ;;
        esac
        echo "$rc $(( ${t1/./} - ${t0/./} ))"
    done
    exit 0
fi

# ---------------------------------------------------------------- main -------------------------------
N=${N:-200}
WARMUP=${WARMUP:-5}
CRUN_HIDE_UNIFIED=${CRUN_HIDE_UNIFIED:-1}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
self=$here/bench/runtime.sh
BERTH_RUNC=${BERTH_RUNC:-$here/out/berth-runc}

[[ $(id -u) == 0 ]] || { echo "bench/runtime.sh: run as root" >&2; exit 1; }
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "bench/runtime.sh: N must be a positive integer" >&2; exit 2; }
for t in jq busybox unshare; do command -v "$t" >/dev/null || { echo "bench/runtime.sh: $t not found" >&2; exit 1; }; done
[[ -x $BERTH_RUNC ]] || { echo "bench/runtime.sh: $BERTH_RUNC not found (make build)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/berth-bench.XXXXXX)
prefix=bench$$
declare -A wpid=() wfd=() rfd=() errf=() mode=()
names=()   # runtimes that run here, in order

cleanup() {
    local rc=$? n r c
    trap - EXIT INT TERM
    for n in "${!wfd[@]}"; do
        if { echo "cleanup - -" >&"${wfd[$n]}"; } 2>/dev/null && read -r -t 60 r _ <&"${rfd[$n]}"; then
            [[ $r == 0 ]] || echo "cleanup: $n: $(cat "${errf[$n]}" 2>/dev/null)" >&2
        fi
        eval "exec ${wfd[$n]}>&- ${rfd[$n]}<&-"
    done
    for n in "${!wpid[@]}"; do   # only the workers this script started
        for ((c = 0; c < 300; c++)); do kill -0 "${wpid[$n]}" 2>/dev/null || break; sleep 0.1; done
        kill "${wpid[$n]}" 2>/dev/null || true
        wait "${wpid[$n]}" 2>/dev/null || true
    done
    # empty cgroup directories left behind by failed creates of this run (named after our ids)
    find /sys/fs/cgroup -depth -type d -name "$prefix-*" 2>/dev/null | while read -r c; do
        rmdir "$c" 2>/dev/null && echo "removed leftover cgroup $c" >&2 || echo "leftover cgroup $c" >&2
    done
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- bundles
"$here/scripts/make-bundle.sh" "$tmp/bundle" "$BERTH_RUNC" >/dev/null
cfg=$tmp/bundle/config.json
# crun 1.8 rejects ociVersion 1.2.0 ("unknown version specified"); 1.0.2-dev is what runc 1.1 writes.
jq '.ociVersion = "1.0.2-dev" | .process.terminal = false | .process.args = ["true"]' "$cfg" >"$cfg.new"
mv "$cfg.new" "$cfg"
# variants share the rootfs through an absolute root.path (runc rejects a symlinked rootfs)
mkdir "$tmp/bundle-mem" "$tmp/bundle-nocg" "$tmp/bundle-sec"
jq --arg r "$tmp/bundle/rootfs" '.root.path = $r | .linux.resources.memory.limit = 1048576' "$cfg" >"$tmp/bundle-mem/config.json"
jq --arg r "$tmp/bundle/rootfs" '.root.path = $r | del(.linux.resources) | .linux.cgroupsPath = ""' "$cfg" >"$tmp/bundle-nocg/config.json"
# the default seccomp profile podman applies to every container (containers-common's seccomp.json)
SECCOMP_PROFILE=${SECCOMP_PROFILE:-/usr/share/containers/seccomp.json}
if [[ -r $SECCOMP_PROFILE ]]; then
    jq --arg r "$tmp/bundle/rootfs" --slurpfile sp "$SECCOMP_PROFILE" '.root.path = $r | .linux.seccomp = $sp[0]' "$cfg" >"$tmp/bundle-sec/config.json"
fi
declare -A bundle=() bundle_mem=()

# ---- workers
start_worker() {   # NAME MNTNS(0|1) RUNTIME ARGS...
    local n=$1 ns=$2; shift 2
    mkdir -p "$tmp/root-$n"; errf[$n]=$tmp/err-$n
    mkfifo "$tmp/req-$n" "$tmp/resp-$n"
    if [[ $ns == 1 ]]; then
        unshare -m --propagation private bash -c 'umount /sys/fs/cgroup/unified; exec "$@"' _ \
            bash "$self" --worker "$tmp/root-$n" "${errf[$n]}" -- "$@" <"$tmp/req-$n" >"$tmp/resp-$n" &
    else
        bash "$self" --worker "$tmp/root-$n" "${errf[$n]}" -- "$@" <"$tmp/req-$n" >"$tmp/resp-$n" &
    fi
    wpid[$n]=$!
    exec {wfd[$n]}>"$tmp/req-$n" {rfd[$n]}<"$tmp/resp-$n"
}
stop_worker() {
    local n=$1
    eval "exec ${wfd[$n]}>&- ${rfd[$n]}<&-"; unset "wfd[$n]" "rfd[$n]"
    wait "${wpid[$n]}" 2>/dev/null || true; unset "wpid[$n]"
}
RC=0 US=0
op() {   # NAME OP ID BUNDLE -> RC, US
    echo "$2 $3 ${4:--}" >&"${wfd[$1]}"
    read -r -t 120 RC US <&"${rfd[$1]}" || { echo "bench/runtime.sh: $1 $2 $3: no answer in 120 s" >&2; exit 1; }
}
errmsg() { tr '\n' ' ' <"${errf[$1]}" | sed 's/ *$//'; }
probe() {   # NAME BUNDLE -> 0 if `run` works; leaves error in PROBE_ERR
    local id=$prefix-probe-$1-$RANDOM
    op "$1" run "$id" "$2"
    local rc=$RC
    PROBE_ERR=$(errmsg "$1")
    [[ $rc == 0 ]] || op "$1" kill "$id" -
    [[ $rc == 0 ]]
}

echo "berth runtime benchmark: N=$N, $(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(uname -r), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
start_worker berth-runc 0 "$BERTH_RUNC"
if probe berth-runc "$tmp/bundle"; then names+=(berth-runc); mode[berth-runc]=default
else echo "berth-runc: run fails: $PROBE_ERR"; fi
bundle[berth-runc]=$tmp/bundle bundle_mem[berth-runc]=$tmp/bundle-mem

if command -v runc >/dev/null; then
    start_worker runc 0 runc
    if probe runc "$tmp/bundle"; then names+=(runc); mode[runc]=default
    else echo "runc: not runnable here: $PROBE_ERR"; fi
    bundle[runc]=$tmp/bundle bundle_mem[runc]=$tmp/bundle-mem
else echo "runc: not installed"; fi

crun_mode=""
if command -v crun >/dev/null; then
    crun_errs=()
    start_worker crun 0 crun
    if probe crun "$tmp/bundle"; then crun_mode=default
    else
        crun_errs+=("default: $PROBE_ERR"); stop_worker crun; rm -f "$tmp"/req-crun "$tmp"/resp-crun
        start_worker crun 0 crun --cgroup-manager=disabled
        if probe crun "$tmp/bundle"; then crun_mode="--cgroup-manager=disabled"
        else
            crun_errs+=("--cgroup-manager=disabled: $PROBE_ERR")
            if probe crun "$tmp/bundle-nocg"; then
                crun_mode="--cgroup-manager=disabled, config without linux.resources and cgroupsPath=\"\" (no memory limit possible)"
                bundle[crun]=$tmp/bundle-nocg
            else
                crun_errs+=("no-cgroups config: $PROBE_ERR")
                if [[ $CRUN_HIDE_UNIFIED == 1 ]]; then
                    stop_worker crun; rm -f "$tmp"/req-crun "$tmp"/resp-crun
                    start_worker crun 1 crun
                    if probe crun "$tmp/bundle"; then
                        crun_mode="default flags, in a private mount namespace with /sys/fs/cgroup/unified unmounted (crun sees cgroup v1 only)"
                    else crun_errs+=("private mount namespace: $PROBE_ERR"); fi
                fi
            fi
        fi
    fi
    if [[ -n $crun_mode ]]; then
        names+=(crun); mode[crun]=$crun_mode
        : "${bundle[crun]:=$tmp/bundle}"
        if [[ ${bundle[crun]} == "$tmp/bundle-nocg" ]]; then bundle_mem[crun]=""; else bundle_mem[crun]=$tmp/bundle-mem; fi
        for e in "${crun_errs[@]}"; do echo "crun: refused with $e"; done
    else
        echo "crun: not runnable here: ${crun_errs[0]#default: }"
        for e in "${crun_errs[@]:1}"; do echo "crun: also refused with $e"; done
    fi
else echo "crun: not installed"; fi

for n in "${names[@]}"; do
    v=$( { [[ $n == berth-runc ]] && "$BERTH_RUNC" --version || "$n" --version; } 2>&1 | head -1)
    echo "  $n: $v; mode: ${mode[$n]}"
done
((${#names[@]} > 0)) || { echo "no runtime runs here" >&2; exit 1; }

# ---- measurement
mkdir "$tmp/samples"
declare -A fails=() firsterr=()
record() {   # NAME STEP  (uses RC, US)
    local key="$1.$2"
    if [[ $RC == 0 ]]; then echo "$US" >>"$tmp/samples/$key"
    else
        fails[$key]=$(( ${fails[$key]:-0} + 1 ))
        [[ -n ${firsterr[$key]:-} ]] || firsterr[$key]="$(errmsg "$1") (exit $RC)"
    fi
}
order() {   # ITERATION -> ORDER (names, reversed on odd iterations)
    ORDER=("${names[@]}")
    if (($1 % 2)); then local i; ORDER=(); for ((i = ${#names[@]} - 1; i >= 0; i--)); do ORDER+=("${names[i]}"); done; fi
}

for n in "${names[@]}"; do for ((i = 0; i < WARMUP; i++)); do op "$n" run "$prefix-w$i" "${bundle[$n]}"; [[ $RC == 0 ]] || op "$n" kill "$prefix-w$i"; done; done

echo "scenario run: $N x ${#names[@]} interleaved ..."
for ((i = 0; i < N; i++)); do
    order "$i"
    for n in "${ORDER[@]}"; do
        op "$n" run "$prefix-r$i" "${bundle[$n]}"; record "$n" run
        [[ $RC == 0 ]] || op "$n" kill "$prefix-r$i"
    done
done

echo "scenario split (create, start, wait, delete): $N x ${#names[@]} interleaved ..."
for ((i = 0; i < N; i++)); do
    order "$i"
    for n in "${ORDER[@]}"; do
        id=$prefix-s$i ok=1
        for step in create start wait delete; do
            op "$n" "$step" "$id" "${bundle[$n]}"; record "$n" "$step"
            [[ $RC == 0 ]] || { ok=0; break; }
        done
        ((ok)) || op "$n" kill "$id"
    done
done

echo "scenario mem1m (run with memory.limit = 1048576): $N x ${#names[@]} interleaved ..."
for ((i = 0; i < N; i++)); do
    order "$i"
    for n in "${ORDER[@]}"; do
        [[ -n ${bundle_mem[$n]} ]] || continue
        op "$n" run "$prefix-m$i" "${bundle_mem[$n]}"; record "$n" mem1m
        [[ $RC == 0 ]] || op "$n" kill "$prefix-m$i"
    done
done

if [[ -s $tmp/bundle-sec/config.json ]]; then
    echo "scenario seccomp (run with $SECCOMP_PROFILE): $N x ${#names[@]} interleaved ..."
    for ((i = 0; i < N; i++)); do
        order "$i"
        for n in "${ORDER[@]}"; do
            [[ ${bundle[$n]} == "$tmp/bundle" ]] || continue   # crun without cgroups: same rootfs, skip
            op "$n" run "$prefix-c$i" "$tmp/bundle-sec"; record "$n" seccomp
            [[ $RC == 0 ]] || op "$n" kill "$prefix-c$i"
        done
    done
fi

echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- report
stat() {   # FILE -> "median p90" in ms (median: mean of the middle two; p90: nearest rank)
    sort -n "$1" | awk '{v[NR] = $1} END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        r = int(0.9 * NR); if (r < 0.9 * NR) r++
        printf "%.2f %.2f\n", m / 1000, v[r] / 1000 }'
}
declare -A med=() p90=() okn=() tried=()
steps=(run create start wait delete mem1m seccomp)
for step in "${steps[@]}"; do
    for n in "${names[@]}"; do
        key=$n.$step f=$tmp/samples/$n.$step
        okn[$key]=0; [[ -s $f ]] && okn[$key]=$(wc -l <"$f")
        tried[$key]=$(( ${okn[$key]} + ${fails[$key]:-0} ))
        if ((${okn[$key]} > 0)); then read -r med[$key] p90[$key] < <(stat "$f"); fi
        [[ -z ${KEEP:-} || ! -s $f ]] || { mkdir -p "$KEEP"; cp "$f" "$KEEP/$key.us"; }
    done
done
ratio() { [[ -n ${med[$1]:-} && -n ${med[$2]:-} ]] && awk -v a="${med[$1]}" -v b="${med[$2]}" 'BEGIN {printf "%.2f", a / b}' || echo -; }
echo
printf '%-8s %-7s %-11s %9s %10s %8s %11s %11s\n' scenario step runtime ok/N "median ms" "p90 ms" berth/runc berth/crun
for step in "${steps[@]}"; do
    case $step in run) sc=run ;; mem1m) sc=mem1m ;; seccomp) sc=seccomp ;; *) sc=split ;; esac
    for n in "${names[@]}"; do
        key=$n.$step
        if [[ $step == mem1m && -z ${bundle_mem[$n]} ]]; then
            printf '%-8s %-7s %-11s %9s   %s\n' "$sc" "$step" "$n" n/a "(crun's mode has no cgroups)"; continue
        fi
        ((${tried[$key]} > 0)) || continue
        r1=- r2=-
        [[ $n != berth-runc ]] || { r1=$(ratio "$key" "runc.$step"); r2=$(ratio "$key" "crun.$step"); }
        printf '%-8s %-7s %-11s %9s %10s %8s %11s %11s\n' "$sc" "$step" "$n" "${okn[$key]}/${tried[$key]}" \
            "${med[$key]:--}" "${p90[$key]:--}" "$r1" "$r2"
    done
done
echo
for key in "${!firsterr[@]}"; do echo "failures $key: ${fails[$key]}; first error: ${firsterr[$key]}"; done | sort
