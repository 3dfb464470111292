#!/usr/bin/env bash
# bench/scheduler.sh: scheduler throughput with simulated nodes and pods (kube-scheduler's
# scheduler_perf "SchedulingBasic" shape: nodes 4 cpu / 32Gi / 110 pods, pods 100m / 500Mi).
#
#   bench/scheduler.sh                       5,000 nodes, 50,000 pods, through the in-memory seam
#   NODES=500 PODS=5000 bench/scheduler.sh   smaller
#   RUNS=3 bench/scheduler.sh                repeat, print each run
#   ARGS="--precreate --no-events" bench/scheduler.sh
#
# Pods are created through the IClusterClient seam (InMemoryClusterClient: revision log, watch,
# deep copies, pods/binding) while the scheduler runs; the clock runs from the first pod creation
# until the last binding. Scheduled events are written for every pod, as kube-scheduler does.
# Reference: kube-scheduler's CI floor for 5,000 nodes / 50,000 pods (SchedulingBasic) is 810 pods/s.
# Also printed: the process CPU time over the same window (the bench machine is shared, so wall
# time depends on the load; pods per CPU-second does not).
set -euo pipefail
cd "$(dirname "$0")/.."
NODES=${NODES:-5000} PODS=${PODS:-50000} RUNS=${RUNS:-1}
dotnet build bench/SchedulerBench -c Release --nologo -v quiet >/dev/null
dll=bench/SchedulerBench/bin/Release/net10.0/linux-x64/SchedulerBench.dll
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)  cores: $(nproc)"
for ((i = 1; i <= RUNS; i++)); do
    DOTNET_TieredPGO=1 DOTNET_gcServer=0 dotnet "$dll" --nodes "$NODES" --pods "$PODS" ${ARGS:-}
done
