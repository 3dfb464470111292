#!/usr/bin/env bash
# bench/network.sh: attach + detach of a network namespace to a bridge network with one published port,
# Berth's native driver (out/berth network attach-netns/detach-netns) vs podman's netavark (setup/teardown),
# side by side with hyperfine (run as root).
#
#   RUNS=30 bench/network.sh
#   RUNS=20 ROUNDS=3 bench/network.sh run     # `run --rm ... true` on the default bridge, see run_bench below
#
# Each timed command is "ip netns add X; attach X (address, veth, default route, -p 127.0.0.1:P:80);
# detach X; ip netns del X"; a baseline with only the netns add/del is measured too, so the networking
# share is the difference. Both bridges are kept alive by one long-lived attached namespace, so neither
# tool creates or deletes its bridge inside the timed part. Subnets 10.213.243/244.0/24; nothing else on
# the host is touched, and everything is removed at the end.
set -euo pipefail
export LC_ALL=C
RUNS=${RUNS:-30}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BERTH=${BERTH:-$here/out/berth}
# shellcheck source=bench/lib.sh
. "$here/bench/lib.sh"

# `berth run --rm --rootfs DIR true` on Berth's default bridge vs `podman run --rm --rootfs DIR true` on
# podman's default bridge (netavark), interleaved by hyperfine in ROUNDS rounds; medians, ratio and the
# machine's load. Berth's default network gets its own bridge and subnet (10.213.245.0/24, through the
# root's network-options.json) so berth0 on a shared machine is not touched; podman uses its own default
# network ("podman", podman0), as a user's podman would. Temp storage roots for both; podman uses runc.
run_bench() {
    tmp=$(mktemp -d /tmp/berth-netrun-XXXXXX)
    B=("$BERTH" --root "$tmp/broot" --runroot "$tmp/brun")
    trap 'set +e; "${B[@]}" rm -f $("${B[@]}" ps -aq 2>/dev/null) >/dev/null 2>&1; "${B[@]}" network rm bridge >/dev/null 2>&1;
          podman --root "$tmp/proot" --runroot "$tmp/prun" rm -af >/dev/null 2>&1; bench_umount_under "$tmp"; rm -rf "$tmp"' EXIT
    bench_rootfs "$tmp/rootfs" sh true ip
    mkdir -p "$tmp/broot"
    echo "{\"defaultBridge\": \"bbn$$\", \"defaultSubnet\": \"10.213.245.0/24\", \"chainPrefix\": \"BBN$$\"}" > "$tmp/broot/network-options.json"
    bench_podman_conf "$tmp/containers.conf"
    local berth=("${B[@]}" run --rm --rootfs "$tmp/rootfs" true)
    local podman=(podman --root "$tmp/proot" --runroot "$tmp/prun" --runtime runc run --rm --rootfs "$tmp/rootfs" true)
    # Both work, and both really get an address on their bridge.
    "${B[@]}" run --rm --rootfs "$tmp/rootfs" ip -4 addr show eth0 | grep -q 'inet 10.213.245.' || { echo "berth: no bridge address" >&2; exit 1; }
    podman --root "$tmp/proot" --runroot "$tmp/prun" --runtime runc run --rm --rootfs "$tmp/rootfs" ip -4 addr show eth0 | grep -q 'inet ' || { echo "podman: no bridge address" >&2; exit 1; }
    echo "uptime: $(uptime)"
    bench_rounds "run --rm (bridge)" berth "${berth[*]}" podman "${podman[*]}"
    echo "uptime after: $(uptime)"
}
if [[ ${1:-} == run ]]; then run_bench; exit 0; fi
NETAVARK=${NETAVARK:-/usr/lib/podman/netavark}
[[ $(id -u) == 0 ]] || { echo "bench/network.sh: run as root" >&2; exit 1; }
for t in hyperfine ip "$BERTH" "$NETAVARK"; do command -v "$t" >/dev/null || { echo "bench/network.sh: $t not found" >&2; exit 1; }; done

tmp=$(mktemp -d /tmp/berth-netbench.XXXXXX)
sfx=$$
keep_b=bnk-$sfx keep_n=nnk-$sfx
cleanup() {
    set +e
    "$BERTH" --root "$tmp/berth" network detach-netns bench --id keeper >/dev/null 2>&1
    "$BERTH" --root "$tmp/berth" network rm bench >/dev/null 2>&1
    [[ -f $tmp/keep.json ]] && "$NETAVARK" --config "$tmp/nv" teardown "/run/netns/$keep_n" <"$tmp/keep.json" >/dev/null 2>&1
    ip netns del "$keep_b" 2>/dev/null; ip netns del "$keep_n" 2>/dev/null
    ip netns del "bb-$sfx" 2>/dev/null; ip netns del "nb-$sfx" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

# Berth: network + keeper
"$BERTH" --root "$tmp/berth" network create --subnet 10.213.243.0/24 -o "com.docker.network.bridge.name=bbr$sfx" bench >/dev/null
ip netns add "$keep_b"
"$BERTH" --root "$tmp/berth" network attach-netns bench "/run/netns/$keep_b" --id keeper >/dev/null

# netavark: options for the keeper and for the timed container (same network)
mkdir -p "$tmp/nv"
nvopts() { # id name ip port
    cat <<JSON
{"container_id":"$1","container_name":"$2",
 "networks":{"bench":{"interface_name":"eth0","static_ips":["$3"]}},
 "network_info":{"bench":{"name":"bench","id":"fedcba9876543210fedcba9876543210fedcba9876543210fedcba98765432$((sfx % 90 + 10))","driver":"bridge",
   "network_interface":"nbr$sfx","subnets":[{"subnet":"10.213.244.0/24","gateway":"10.213.244.1"}],
   "ipv6_enabled":false,"internal":false,"dns_enabled":false,"ipam_options":{"driver":"host-local"}}},
 "port_mappings":[$4]}
JSON
}
nvopts "$(printf 'a%.0s' {1..64})" keeper 10.213.244.2 "" >"$tmp/keep.json"
nvopts "$(printf 'b%.0s' {1..64})" timed 10.213.244.3 '{"host_ip":"127.0.0.1","container_port":80,"host_port":18181,"range":1,"protocol":"tcp"}' >"$tmp/run.json"
ip netns add "$keep_n"
"$NETAVARK" --config "$tmp/nv" setup "/run/netns/$keep_n" <"$tmp/keep.json" >/dev/null

B="$BERTH --root $tmp/berth network"
hyperfine -N --runs "$RUNS" --warmup 3 --export-markdown "$tmp/result.md" \
    -n "netns add+del (baseline)" "bash -c 'ip netns add bb-$sfx && ip netns del bb-$sfx'" \
    -n "berth attach+detach -p" "bash -c 'ip netns add bb-$sfx && $B attach-netns bench /run/netns/bb-$sfx --id timed -p 127.0.0.1:18180:80 >/dev/null && $B detach-netns bench --id timed && ip netns del bb-$sfx'" \
    -n "netavark setup+teardown -p" "bash -c 'ip netns add nb-$sfx && $NETAVARK --config $tmp/nv setup /run/netns/nb-$sfx <$tmp/run.json >/dev/null && $NETAVARK --config $tmp/nv teardown /run/netns/nb-$sfx <$tmp/run.json && ip netns del nb-$sfx'"
cat "$tmp/result.md"
