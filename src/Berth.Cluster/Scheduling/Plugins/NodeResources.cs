namespace Berth.Cluster.Scheduling.Plugins;

/// <summary>
/// Requests against allocatable (cpu, memory, ephemeral-storage, pods, extended resources) as a filter,
/// and the LeastAllocated score (free share of cpu and memory after placing the pod, with kube's
/// non-zero defaults for containers that request nothing).
/// </summary>
public sealed class NodeResourcesFit : PluginBase, IFilterPlugin, IScorePlugin
{
    public override string Name => "NodeResourcesFit";
    public int Weight { get; init; } = 1;
    static readonly Status TooManyPods = Status.Unschedulable("Too many pods");
    static readonly Status Cpu = Status.Unschedulable("Insufficient cpu");
    static readonly Status Memory = Status.Unschedulable("Insufficient memory");
    static readonly Status Ephemeral = Status.Unschedulable("Insufficient ephemeral-storage");

    public Status? Filter(CycleState state, PodInfo pod, NodeInfo node)
    {
        ref readonly var want = ref pod.Requests;
        ref readonly var have = ref node.Allocatable;
        ref readonly var used = ref node.Requested;
        int bad = 0;
        Status? only = null;
        if (used.Pods + 1 > have.Pods) { bad++; only = TooManyPods; }
        if (want.MilliCpu > 0 && want.MilliCpu > have.MilliCpu - used.MilliCpu) { bad++; only ??= Cpu; }
        if (want.Memory > 0 && want.Memory > have.Memory - used.Memory) { bad++; only ??= Memory; }
        if (want.EphemeralStorage > 0 && want.EphemeralStorage > have.EphemeralStorage - used.EphemeralStorage) { bad++; only ??= Ephemeral; }
        List<string>? scalar = null;
        if (want.Scalar is not null)
            foreach (var (name, q) in want.Scalar)
            {
                if (q == 0) continue;
                long cap = have.Scalar?.GetValueOrDefault(name) ?? 0, u = used.Scalar?.GetValueOrDefault(name) ?? 0;
                if (q > cap - u) (scalar ??= []).Add("Insufficient " + name);
            }
        if (bad == 0 && scalar is null) return null;
        if (bad == 1 && scalar is null) return only;
        var reasons = new List<string>();
        if (used.Pods + 1 > have.Pods) reasons.Add("Too many pods");
        if (want.MilliCpu > 0 && want.MilliCpu > have.MilliCpu - used.MilliCpu) reasons.Add("Insufficient cpu");
        if (want.Memory > 0 && want.Memory > have.Memory - used.Memory) reasons.Add("Insufficient memory");
        if (want.EphemeralStorage > 0 && want.EphemeralStorage > have.EphemeralStorage - used.EphemeralStorage) reasons.Add("Insufficient ephemeral-storage");
        if (scalar is not null) reasons.AddRange(scalar);
        return new Status(StatusCode.Unschedulable, [.. reasons]);
    }

    public long Score(CycleState state, PodInfo pod, NodeInfo node)
    {
        long cpu = Least(node.NonZeroMilliCpu + pod.NonZeroMilliCpu, node.Allocatable.MilliCpu);
        long mem = Least(node.NonZeroMemory + pod.NonZeroMemory, node.Allocatable.Memory);
        return (cpu + mem) / 2;
    }

    static long Least(long requested, long capacity)
    {
        if (capacity == 0 || requested > capacity) return 0;
        return (capacity - requested) * Framework.MaxNodeScore / capacity;
    }
}

/// <summary>Favors nodes whose cpu and memory use stay balanced after placing the pod: (1 − std of the fractions) · 100.</summary>
public sealed class NodeResourcesBalancedAllocation : PluginBase, IScorePlugin
{
    public override string Name => "NodeResourcesBalancedAllocation";
    public int Weight { get; init; } = 1;

    public long Score(CycleState state, PodInfo pod, NodeInfo node)
    {
        double cpu = Fraction(node.NonZeroMilliCpu + pod.NonZeroMilliCpu, node.Allocatable.MilliCpu);
        double mem = Fraction(node.NonZeroMemory + pod.NonZeroMemory, node.Allocatable.Memory);
        double std = Math.Abs(cpu - mem) / 2;
        return (long)((1 - std) * Framework.MaxNodeScore);
    }

    static double Fraction(long req, long cap) => cap == 0 ? 1 : Math.Min(1.0, (double)req / cap);
}
