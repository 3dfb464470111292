#!/usr/bin/env bash
# bench/scheduler-api.sh: scheduling throughput through the real API. Starts out/berth server (its
# in-server scheduler and controllers, SQLite store) on a free 127.0.0.1 port with a temp data dir;
# bench/SchedulerApiBench creates NODES Nodes and PODS Pods over HTTPS with CLIENTS parallel
# connections (scheduler_perf's SchedulingBasic shape: nodes 4 cpu / 32Gi / 110 pods, pods 100m /
# 500Mi) and counts bindings on a pod watch. Prints pods bound/s from the first pod create to the
# last binding, create latency p50/p99, and the server's RSS (idle after start, peak, after).
#
#   bench/scheduler-api.sh                          5,000 nodes, 50,000 pods, 16 clients
#   NODES=500 PODS=5000 RUNS=3 bench/scheduler-api.sh
# kube-scheduler's CI floor for 5,000 nodes / 50,000 pods is 810 pods/s; the issue's goal is 8,100.
set -euo pipefail
cd "$(dirname "$0")/.."
BERTH=${BERTH:-$PWD/out/berth}
NODES=${NODES:-5000} PODS=${PODS:-50000} CLIENTS=${CLIENTS:-16} RUNS=${RUNS:-1}
dotnet build bench/SchedulerApiBench -c Release --nologo -v quiet >/dev/null
dll=bench/SchedulerApiBench/bin/Release/net10.0/SchedulerApiBench.dll
[ -f "$dll" ] || dll=$(ls bench/SchedulerApiBench/bin/Release/net10.0/*/SchedulerApiBench.dll | head -1)
for ((r = 1; r <= RUNS; r++)); do
    dir=$(mktemp -d)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$BERTH" server --listen 127.0.0.1:$port --data-dir "$dir" >"$dir/server.log" 2>&1 &
    pid=$!
    trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
    for _ in $(seq 200); do [ -f "$dir/admin.kubeconfig" ] && (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
    sleep 1
    echo "== run $r: berth server pid $pid, idle RSS $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$pid/status)"
    DOTNET_TieredPGO=1 dotnet "$dll" --server https://127.0.0.1:$port --data-dir "$dir" --nodes "$NODES" --pods "$PODS" --clients "$CLIENTS"
    echo "server RSS after: $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$pid/status), peak: $(awk '/VmHWM/ {print $2/1024 " MiB"}' /proc/$pid/status)"
    kill $pid; wait $pid 2>/dev/null || true
    rm -rf "$dir"
    trap - EXIT
done
