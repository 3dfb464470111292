using k8s.Models;

namespace Berth.Cluster.Scheduling.Plugins;

/// <summary>Base for plugins: holds the framework-assigned slot.</summary>
public abstract class PluginBase : IPlugin
{
    public abstract string Name { get; }
    public int Index { get; set; }
}

/// <summary>Rejects nodes marked spec.unschedulable (cordoned) unless the pod tolerates node.kubernetes.io/unschedulable:NoSchedule.</summary>
public sealed class NodeUnschedulable : PluginBase, IFilterPlugin
{
    public const string Reason = "node(s) were unschedulable";
    static readonly Status Rejected = Status.Unresolvable(Reason);
    static readonly V1Taint Taint = new() { Key = "node.kubernetes.io/unschedulable", Effect = "NoSchedule" };
    public override string Name => "NodeUnschedulable";

    public Status? Filter(CycleState state, PodInfo pod, NodeInfo node) =>
        node.Unschedulable && !Taints.Tolerated(pod.Tolerations, Taint) ? Rejected : null;
}

/// <summary>A pod that names its node (spec.nodeName) fits only there.</summary>
public sealed class NodeName : PluginBase, IPreFilterPlugin, IFilterPlugin
{
    public const string Reason = "node(s) didn't match the requested node name";
    static readonly Status Rejected = Status.Unresolvable(Reason);
    public override string Name => "NodeName";
    public Status? PreFilter(CycleState state, PodInfo pod) => string.IsNullOrEmpty(pod.NodeName) ? Status.Skip : null;
    public Status? Filter(CycleState state, PodInfo pod, NodeInfo node) => pod.NodeName == node.Name ? null : Rejected;
}

/// <summary>Host ports: a node fits when none of the pod's hostPort/protocol/hostIP triples is taken.</summary>
public sealed class NodePorts : PluginBase, IPreFilterPlugin, IFilterPlugin
{
    public const string Reason = "node(s) didn't have free ports for the requested pod ports";
    static readonly Status Rejected = Status.Unschedulable(Reason);
    public override string Name => "NodePorts";
    public Status? PreFilter(CycleState state, PodInfo pod) => pod.HostPorts.Length == 0 ? Status.Skip : null;

    public Status? Filter(CycleState state, PodInfo pod, NodeInfo node)
    {
        if (node.UsedPorts is null) return null;
        foreach (var (proto, ip, port) in pod.HostPorts)
            foreach (var u in node.UsedPorts)
                if (u.Port == port && u.Protocol == proto && (u.Ip == ip || u.Ip == "0.0.0.0" || ip == "0.0.0.0")) return Rejected;
        return null;
    }
}

/// <summary>NoSchedule/NoExecute taints must be tolerated (filter); fewer untolerated PreferNoSchedule taints score higher.</summary>
public sealed class TaintToleration : PluginBase, IFilterPlugin, IScorePlugin
{
    public override string Name => "TaintToleration";
    public int Weight { get; init; } = 3;

    public Status? Filter(CycleState state, PodInfo pod, NodeInfo node)
    {
        if (node.Taints.Length == 0) return null;
        var t = Taints.FindUntolerated(node.Taints, pod.Tolerations);
        return t is null ? null : Status.Unresolvable($"node(s) had untolerated taint {{{t.Key}: {t.Value}}}");
    }

    public long Score(CycleState state, PodInfo pod, NodeInfo node)
    {
        long n = 0;
        foreach (var taint in node.Taints)
        {
            if (taint.Effect != "PreferNoSchedule") continue;
            bool ok = false;
            foreach (var tol in pod.Tolerations)
                if ((string.IsNullOrEmpty(tol.Effect) || tol.Effect == "PreferNoSchedule") && Taints.Tolerates(tol, taint)) { ok = true; break; }
            if (!ok) n++;
        }
        return n;
    }

    public void Normalize(CycleState state, PodInfo pod, Span<long> scores) => Framework.DefaultNormalize(scores, reverse: true);
}

/// <summary>spec.nodeSelector and required node affinity (filter); preferred node affinity weights (score).</summary>
public sealed class NodeAffinity : PluginBase, IPreFilterPlugin, IFilterPlugin, IPreScorePlugin, IScorePlugin
{
    public const string Reason = "node(s) didn't match Pod's node affinity/selector";
    static readonly Status Rejected = Status.Unresolvable(Reason);
    public override string Name => "NodeAffinity";
    public int Weight { get; init; } = 2;

    public Status? PreFilter(CycleState state, PodInfo pod) =>
        pod.NodeSelector is null && pod.RequiredNodeAffinity is null ? Status.Skip : null;

    public Status? Filter(CycleState state, PodInfo pod, NodeInfo node) => Matches(pod, node) ? null : Rejected;

    /// <summary>nodeSelector AND required affinity (also used by topology spread's node inclusion).</summary>
    public static bool Matches(PodInfo pod, NodeInfo node)
    {
        if (pod.NodeSelector is { } sel)
            foreach (var (k, v) in sel)
                if (node.Labels is null || !node.Labels.TryGetValue(k, out var nv) || nv != v) return false;
        return pod.RequiredNodeAffinity is null || pod.RequiredNodeAffinity.Matches(node.Name, node.Labels);
    }

    public Status? PreScore(CycleState state, PodInfo pod, ReadOnlySpan<NodeInfo> feasible) =>
        pod.PreferredNodeAffinity.Length == 0 ? Status.Skip : null;

    public long Score(CycleState state, PodInfo pod, NodeInfo node)
    {
        long s = 0;
        foreach (var (term, w) in pod.PreferredNodeAffinity)
            if (term.Matches(node.Name, node.Labels)) s += w;
        return s;
    }

    public void Normalize(CycleState state, PodInfo pod, Span<long> scores) => Framework.DefaultNormalize(scores, reverse: false);
}

/// <summary>Favors nodes that already hold the pod's images (scaled by image presence only: sizes are not tracked).</summary>
public sealed class ImageLocality : PluginBase, IPreScorePlugin, IScorePlugin
{
    public override string Name => "ImageLocality";
    public int Weight { get; init; } = 1;

    public Status? PreScore(CycleState state, PodInfo pod, ReadOnlySpan<NodeInfo> feasible)
    {
        foreach (var n in feasible) if (n.Images is not null) return null;
        return Status.Skip;
    }

    public long Score(CycleState state, PodInfo pod, NodeInfo node)
    {
        var cs = pod.Pod.Spec?.Containers;
        if (node.Images is null || cs is null || cs.Count == 0) return 0;
        int have = 0;
        foreach (var c in cs) if (c.Image is { } img && (node.Images.Contains(img) || node.Images.Contains(Normalize(img)))) have++;
        return Framework.MaxNodeScore * have / cs.Count;
    }

    static string Normalize(string image)
    {
        var name = image;
        if (!name.Contains('/')) name = "docker.io/library/" + name;
        else if (!name[..name.IndexOf('/')].Contains('.') && !name.StartsWith("localhost", StringComparison.Ordinal)) name = "docker.io/" + name;
        var lastSlash = name.LastIndexOf('/');
        if (!name.Contains('@') && name.IndexOf(':', lastSlash + 1) < 0) name += ":latest";
        return name;
    }
}
