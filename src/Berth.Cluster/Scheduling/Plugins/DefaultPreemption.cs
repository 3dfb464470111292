using k8s.Models;

namespace Berth.Cluster.Scheduling.Plugins;

/// <summary>
/// PostFilter: when no node fits, looks for nodes where evicting lower-priority pods would make room.
/// Nodes rejected as unresolvable are "Preemption is not helpful for scheduling"; nodes without
/// lower-priority pods (or where removing them does not help) say why. When candidates exist, the one
/// whose highest victim priority, then victim priority sum, then victim count is lowest wins: its
/// victims are deleted and the pod is nominated to it (status.nominatedNodeName).
/// </summary>
public sealed class DefaultPreemption : PluginBase, IPostFilterPlugin
{
    public const string NotHelpful = "Preemption is not helpful for scheduling";
    public const string NoVictims = "No preemption victims found for incoming pod";
    public override string Name => "DefaultPreemption";

    public PostFilterResult PostFilter(CycleState state, PodInfo pod, IReadOnlyList<NodeInfo> nodes, Status?[] nodeStatuses, Scheduler scheduler)
    {
        if (pod.PreemptNever)
            return new(null, Status.Unschedulable("preemption: not eligible due to preemptionPolicy=Never."));
        var reasons = new Dictionary<string, int>();
        (NodeInfo Node, List<PodInfo> Victims)? best = null;
        (int MaxPrio, long Sum, int Count) bestKey = default;
        for (int i = 0; i < nodes.Count; i++)
        {
            var st = nodeStatuses[i];
            if (st is null || st.Code == StatusCode.UnschedulableAndUnresolvable) { Count(reasons, NotHelpful); continue; }
            var node = nodes[i];
            var victims = new List<PodInfo>();
            foreach (var p in node.Pods) if (p.Priority < pod.Priority) victims.Add(p);
            if (victims.Count == 0) { Count(reasons, NoVictims); continue; }
            var sim = node.CloneForSimulation();
            foreach (var v in victims) sim.RemovePod(v.Uid);
            var fit = scheduler.RunFilters(state, pod, sim);
            if (fit is not null) { foreach (var r in fit.Reasons) Count(reasons, r); continue; }
            // Reprieve as many victims as possible, highest priority first.
            victims.Sort((a, b) => b.Priority.CompareTo(a.Priority));
            var kept = new List<PodInfo>();
            foreach (var v in victims)
            {
                sim.AddPod(v);
                if (scheduler.RunFilters(state, pod, sim) is null) continue;
                sim.RemovePod(v.Uid);
                kept.Add(v);
            }
            int maxPrio = int.MinValue; long sum = 0;
            foreach (var v in kept) { maxPrio = Math.Max(maxPrio, v.Priority); sum += v.Priority; }
            var key = (maxPrio, sum, kept.Count);
            if (best is null || key.CompareTo(bestKey) < 0) { best = (node, kept); bestKey = key; }
        }
        if (best is { } b)
        {
            scheduler.Preempt(pod, b.Node.Name, b.Victims);
            return new(b.Node.Name, new Status(StatusCode.Success, []));
        }
        var msg = Scheduler.FitErrorMessage(nodes.Count, null, reasons, null);
        return new(null, Status.Unschedulable("preemption: " + msg));
    }

    static void Count(Dictionary<string, int> d, string r) => d[r] = d.GetValueOrDefault(r) + 1;
}

/// <summary>Binds through the cluster seam (POST pods/binding).</summary>
public sealed class DefaultBinder(Client.IClusterClient client) : PluginBase, IBindPlugin
{
    public override string Name => "DefaultBinder";

    public async ValueTask<Status?> BindAsync(PodInfo pod, string nodeName, CancellationToken ct)
    {
        var b = new V1Binding
        {
            Metadata = new V1ObjectMeta { Name = pod.Name, NamespaceProperty = pod.Namespace, Uid = pod.Uid },
            Target = new V1ObjectReference { Kind = "Node", ApiVersion = "v1", Name = nodeName },
        };
        try { await client.BindAsync(b, ct).ConfigureAwait(false); return null; }
        catch (Client.ClusterException ex) { return Status.Error(ex.Message); }
    }
}
