using k8s.Models;

namespace Berth.Cluster.Tests;

/// <summary>Small builders for test objects.</summary>
internal static class Build
{
    public static V1Node Node(string name, string cpu = "4", string memory = "32Gi", string pods = "110",
        Dictionary<string, string>? labels = null, V1Taint[]? taints = null, bool unschedulable = false)
    {
        var l = new Dictionary<string, string> { ["kubernetes.io/hostname"] = name };
        if (labels is not null) foreach (var (k, v) in labels) l[k] = v;
        return new V1Node
        {
            Metadata = new V1ObjectMeta { Name = name, Labels = l },
            Spec = new V1NodeSpec { Taints = taints?.ToList(), Unschedulable = unschedulable ? true : null },
            Status = new V1NodeStatus
            {
                Allocatable = new Dictionary<string, ResourceQuantity> { ["cpu"] = new(cpu), ["memory"] = new(memory), ["pods"] = new(pods) },
                Conditions = [new V1NodeCondition { Type = "Ready", Status = "True" }],
            },
        };
    }

    public static V1NodeSelectorRequirement Req(string key, string op, string[]? values) => new() { Key = key, OperatorProperty = op, Values = values };
    public static V1NodeSelector Sel(List<V1NodeSelectorTerm> terms) => new() { NodeSelectorTerms = terms };
    public static V1PreferredSchedulingTerm Pref(V1NodeSelectorTerm t, int w) => new() { Preference = t, Weight = w };
    public static V1WeightedPodAffinityTerm WTerm(V1PodAffinityTerm t, int w) => new() { PodAffinityTerm = t, Weight = w };

    static int _uid;

    public static V1Pod Pod(string name, string? cpu = "100m", string? memory = "128Mi", string ns = "default",
        Dictionary<string, string>? labels = null, string? nodeName = null, int priority = 0)
    {
        var req = new Dictionary<string, ResourceQuantity>();
        if (cpu is not null) req["cpu"] = new(cpu);
        if (memory is not null) req["memory"] = new(memory);
        return new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns, Labels = labels, Uid = $"uid-{name}-{Interlocked.Increment(ref _uid)}" },
            Spec = new V1PodSpec
            {
                NodeName = nodeName, Priority = priority,
                Containers = [new V1Container { Name = "c", Image = "busybox", Resources = new V1ResourceRequirements { Requests = req } }],
            },
        };
    }

    public static Task<List<T>> Eventually<T>(Func<Task<List<T>>> probe, Func<List<T>, bool> ok, int timeoutMs = 30_000, string what = "condition") =>
        Eventually<List<T>>(async () => await probe(), ok, timeoutMs, what);

    public static async Task<T> Eventually<T>(Func<Task<T?>> probe, Func<T, bool> ok, int timeoutMs = 30_000, string what = "condition") where T : class
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        T? last = null;
        while (Environment.TickCount64 < deadline)
        {
            last = await probe();
            if (last is not null && ok(last)) return last;
            await Task.Delay(20);
        }
        throw new TimeoutException($"timed out waiting for {what}");
    }
}
