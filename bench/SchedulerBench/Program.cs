// Scheduler throughput: N simulated nodes and M pods through the in-memory cluster seam
// (informers, watch, binding and events included), as kube-scheduler's scheduler_perf
// "SchedulingBasic" case: nodes with 4 cpu / 32Gi / 110 pods, pods requesting 100m / 500Mi.
// Usage: SchedulerBench [--nodes 5000] [--pods 50000] [--parallelism N] [--precreate] [--no-events]
using System.Diagnostics;
using Berth.Cluster.Client;
using Berth.Cluster.Scheduling;
using k8s.Models;

int nodes = 5000, pods = 50000, parallelism = Environment.ProcessorCount;
bool precreate = false, events = true;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--nodes": nodes = int.Parse(args[++i]); break;
        case "--pods": pods = int.Parse(args[++i]); break;
        case "--parallelism": parallelism = int.Parse(args[++i]); break;
        case "--precreate": precreate = true; break;
        case "--no-events": events = false; break;
        case "--micro": break;
        default: Console.Error.WriteLine($"scheduler bench: unknown argument \"{args[i]}\""); return 2;
    }
}

if (args.Contains("--micro"))
{
    // The scheduling algorithm alone: cache filled directly, FindNode + Assume per pod, no informers.
    var c0 = new InMemoryClusterClient();
    var s0 = new Scheduler(c0, new SchedulerOptions { Parallelism = parallelism, Seed = 1 });
    for (int i = 0; i < nodes; i++)
        s0.Cache.AddOrUpdateNode(new V1Node { Metadata = new V1ObjectMeta { Name = $"node-{i}", Labels = new Dictionary<string, string> { ["kubernetes.io/hostname"] = $"node-{i}" } },
            Status = new V1NodeStatus { Allocatable = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("4"), ["memory"] = new("32Gi"), ["pods"] = new("110") } } });
    var infos = new PodInfo[pods];
    var t0 = Stopwatch.StartNew();
    for (int i = 0; i < pods; i++) infos[i] = new PodInfo(new V1Pod { Metadata = new V1ObjectMeta { Name = $"p{i}", NamespaceProperty = "b", Uid = $"u{i}" }, Spec = new V1PodSpec { Containers = [new V1Container { Name = "c", Resources = new V1ResourceRequirements { Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("100m"), ["memory"] = new("500Mi") } } }] } });
    Console.WriteLine($"podinfo: {t0.Elapsed.TotalMilliseconds * 1000 / pods:F2} us/pod");
    t0.Restart();
    var cpuStart = Process.GetCurrentProcess().TotalProcessorTime;
    for (int i = 0; i < pods; i++) { var r = s0.FindNode(infos[i]); s0.Cache.AssumePod(infos[i], r.Node!); }
    Console.WriteLine($"findnode+assume: {t0.Elapsed.TotalMilliseconds * 1000 / pods:F2} us/pod, {pods / t0.Elapsed.TotalSeconds:F0} pods/s; cpu {(Process.GetCurrentProcess().TotalProcessorTime - cpuStart).TotalMilliseconds * 1000 / pods:F2} us/pod");
    return 0;
}
var client = new InMemoryClusterClient();
for (int i = 0; i < nodes; i++)
{
    await client.CreateAsync(new V1Node
    {
        Metadata = new V1ObjectMeta { Name = $"node-{i}", Labels = new Dictionary<string, string> { ["kubernetes.io/hostname"] = $"node-{i}", ["topology.kubernetes.io/zone"] = $"zone-{i % 3}" } },
        Status = new V1NodeStatus
        {
            Allocatable = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("4"), ["memory"] = new("32Gi"), ["pods"] = new("110") },
            Capacity = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("4"), ["memory"] = new("32Gi"), ["pods"] = new("110") },
            Conditions = [new V1NodeCondition { Type = "Ready", Status = "True" }],
        },
    });
}

V1Pod MakePod(int i) => new()
{
    Metadata = new V1ObjectMeta { Name = $"pod-{i}", NamespaceProperty = "sched-bench", Labels = new Dictionary<string, string> { ["app"] = "bench" } },
    Spec = new V1PodSpec
    {
        Containers = [new V1Container { Name = "pause", Image = "registry.k8s.io/pause:3.10", Resources = new V1ResourceRequirements { Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("100m"), ["memory"] = new("500Mi") } } }],
    },
};

var sw = new Stopwatch();
if (precreate) for (int i = 0; i < pods; i++) await client.CreateAsync(MakePod(i));

var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
await using var sched = new Scheduler(client, new SchedulerOptions { Parallelism = parallelism, RecordScheduledEvents = events, Seed = 1 });
long bound = 0;
sched.Bound += (_, _) => { if (Interlocked.Increment(ref bound) == pods) done.TrySetResult(); };
var gc0 = GC.CollectionCount(0);
var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
if (precreate) sw.Start();
await sched.StartAsync();
if (!precreate)
{
    sw.Start();
    for (int i = 0; i < pods; i++) await client.CreateAsync(MakePod(i));
}
var finished = await Task.WhenAny(done.Task, Task.Delay(TimeSpan.FromMinutes(5)));
sw.Stop();
var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpu0;
if (finished != done.Task)
{
    Console.Error.WriteLine($"scheduler bench: only {Interlocked.Read(ref bound)}/{pods} pods bound within 5 minutes");
    return 1;
}
// Verify: every pod bound, no node over capacity.
var list = await client.ListAsync<V1Pod>("sched-bench");
var perNode = new Dictionary<string, int>();
foreach (var p in list.Items)
{
    if (string.IsNullOrEmpty(p.Spec.NodeName)) { Console.Error.WriteLine($"scheduler bench: pod {p.Metadata.Name} not bound"); return 1; }
    perNode[p.Spec.NodeName] = perNode.GetValueOrDefault(p.Spec.NodeName) + 1;
}
int maxPerNode = 0; foreach (var v in perNode.Values) maxPerNode = Math.Max(maxPerNode, v);
if (maxPerNode > 40) { Console.Error.WriteLine($"scheduler bench: a node got {maxPerNode} pods (> 4 cpu / 100m)"); return 1; }
var rate = pods / sw.Elapsed.TotalSeconds;
Console.WriteLine($"nodes={nodes} pods={pods} mode={(precreate ? "precreated" : "streamed")} events={(events ? "on" : "off")} parallelism={parallelism}");
Console.WriteLine($"elapsed={sw.Elapsed.TotalSeconds:F2}s throughput={rate:F0} pods/s nodes_used={perNode.Count} max_pods_per_node={maxPerNode} unschedulable_attempts={sched.Unschedulable} gen0_gcs={GC.CollectionCount(0) - gc0}");
Console.WriteLine($"cpu={cpu.TotalSeconds:F2}s pods_per_cpu_second={pods / cpu.TotalSeconds:F0} (process CPU time over the same window; the machine is shared)");
return 0;
