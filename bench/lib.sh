# bench/lib.sh: what the side-by-side benchmarks share (sourced by bench/engine.sh and bench/network.sh).
#
#   bench_rootfs DIR [APPLET…]     busybox-static root filesystem (all applets unless some are named)
#   bench_podman_conf FILE         the containers.conf podman needs here; exports CONTAINERS_CONF
#   bench_umount_under DIR         unmounts everything mounted below DIR (podman bind-mounts its
#                                  overlay dir onto itself), deepest first
#   bench_rounds LABEL NAME CMD NAME CMD [NAME CMD…]
#                                  ROUNDS rounds (default 3) of hyperfine with RUNS runs (default 20) of
#                                  each command, interleaved round by round so a change in the machine's
#                                  load hits all of them; prints each round's medians, the ratio of every
#                                  command to the first, and failed runs (hyperfine -i: a failure is
#                                  counted, not fatal). Needs $tmp (a scratch dir).

bench_rootfs() {
    local dir=$1; shift
    mkdir -p "$dir/bin" "$dir/etc" "$dir/tmp"
    cp /bin/busybox "$dir/bin/busybox"
    local applets=("$@")
    [[ ${#applets[@]} -gt 0 ]] || mapfile -t applets < <(/bin/busybox --list)
    for a in "${applets[@]}"; do [[ $a == busybox ]] || ln -sf busybox "$dir/bin/$a"; done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$dir/etc/passwd"
    echo 'root:x:0:' >"$dir/etc/group"
}

# Root here lacks CAP_SYS_RESOURCE (podman's default ulimits must stay under the hard limits), crun
# refuses the hybrid cgroup layout, and there is no systemd: see shared/DESIGN.md.
bench_podman_conf() {
    cat >"$1" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
    export CONTAINERS_CONF=$1
}

bench_umount_under() {
    awk -v d="$1/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
}

bench_rounds() {
    local label=$1; shift
    local rounds=${ROUNDS:-3} runs=${RUNS:-20} r args=()
    while [[ $# -ge 2 ]]; do args+=(-n "$1" "$2"); shift 2; done
    for ((r = 1; r <= rounds; r++)); do
        hyperfine -N -i --warmup 2 --runs "$runs" --export-json "$tmp/round$r.json" "${args[@]}" >/dev/null 2>&1
        python3 - "$tmp/round$r.json" "$r" "$label" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
first = res[0]["median"]
parts = []
for x in res:
    failed = sum(1 for c in x["exit_codes"] if c != 0)
    parts.append(f'{x["command"]} {x["median"] * 1000:.1f} ms' + (f' ({failed} failed)' if failed else ''))
ratios = ", ".join(f'{res[0]["command"]}/{x["command"]} = {first / x["median"]:.2f}' for x in res[1:])
print(f"round {sys.argv[2]} {sys.argv[3]}: medians " + ", ".join(parts) + (f"; {ratios}" if ratios else ""))
PY
    done
}
