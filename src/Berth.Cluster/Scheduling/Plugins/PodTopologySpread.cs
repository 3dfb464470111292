namespace Berth.Cluster.Scheduling.Plugins;

/// <summary>
/// topologySpreadConstraints: DoNotSchedule constraints filter (skew = matching pods in the node's
/// domain + self − the global minimum must stay ≤ maxSkew; nodes without the topology key are
/// rejected); ScheduleAnyway constraints score (fewer matching pods in the domain is better).
/// Only nodes that satisfy the pod's node affinity/selector (nodeAffinityPolicy Honor) and, with
/// nodeTaintsPolicy Honor, whose taints it tolerates, count as domains.
/// </summary>
public sealed class PodTopologySpread : PluginBase, IPreFilterPlugin, IFilterPlugin, IPreScorePlugin, IScorePlugin
{
    public const string Reason = "node(s) didn't match pod topology spread constraints";
    public const string MissingLabelReason = "node(s) didn't match pod topology spread constraints (missing required label)";
    static readonly Status Rejected = Status.Unschedulable(Reason);
    static readonly Status MissingLabel = Status.Unresolvable(MissingLabelReason);
    public override string Name => "PodTopologySpread";
    public int Weight { get; init; } = 2;

    sealed class SpreadState
    {
        public readonly List<SpreadConstraint> Constraints = [];
        public readonly List<Dictionary<string, int>> Counts = [];
        public readonly List<int> Min = [];
        public readonly List<double> TopoWeights = [];
        public void Reset() { Constraints.Clear(); Counts.Clear(); Min.Clear(); TopoWeights.Clear(); }
    }

    static void Compute(CycleState state, PodInfo pod, SpreadState s, bool doNotSchedule)
    {
        s.Reset();
        foreach (var c in pod.SpreadConstraints)
            if (c.DoNotSchedule == doNotSchedule) { s.Constraints.Add(c); s.Counts.Add([]); }
        if (s.Constraints.Count == 0) return;
        foreach (var node in state.AllNodes)
        {
            if (node.Labels is null) continue;
            bool affinityOk = NodeAffinity.Matches(pod, node);
            bool taintsOk = node.Taints.Length == 0 || Taints.FindUntolerated(node.Taints, pod.Tolerations) is null;
            // A node must carry every constraint's key to count as a domain at all.
            bool hasAll = true;
            foreach (var c in s.Constraints) if (!node.Labels.ContainsKey(c.TopologyKey)) { hasAll = false; break; }
            if (!hasAll) continue;
            for (int i = 0; i < s.Constraints.Count; i++)
            {
                var c = s.Constraints[i];
                if (c.HonorNodeAffinity && !affinityOk) continue;
                if (c.HonorTaints && !taintsOk) continue;
                var v = node.Labels[c.TopologyKey];
                int n = 0;
                foreach (var p in node.Pods)
                    if (p.Namespace == pod.Namespace && p.Pod.Metadata?.DeletionTimestamp is null && c.Selector.Matches(p.Labels)) n++;
                s.Counts[i][v] = s.Counts[i].GetValueOrDefault(v) + n;
            }
        }
        for (int i = 0; i < s.Constraints.Count; i++)
        {
            var counts = s.Counts[i];
            int min = int.MaxValue;
            foreach (var n in counts.Values) if (n < min) min = n;
            if (counts.Count == 0 || counts.Count < s.Constraints[i].MinDomains) min = 0;
            s.Min.Add(min);
            s.TopoWeights.Add(Math.Log(counts.Count + 2));
        }
    }

    public Status? PreFilter(CycleState state, PodInfo pod)
    {
        bool any = false;
        foreach (var c in pod.SpreadConstraints) if (c.DoNotSchedule) { any = true; break; }
        if (!any) return Status.Skip;
        var s = state.Data[Index] as SpreadState ?? new SpreadState();
        state.Data[Index] = s;
        Compute(state, pod, s, doNotSchedule: true);
        return null;
    }

    public Status? Filter(CycleState state, PodInfo pod, NodeInfo node)
    {
        var s = (SpreadState)state.Data[Index]!;
        for (int i = 0; i < s.Constraints.Count; i++)
        {
            var c = s.Constraints[i];
            if (node.Labels is null || !node.Labels.TryGetValue(c.TopologyKey, out var v)) return MissingLabel;
            int self = c.Selector.Matches(pod.Labels) ? 1 : 0;
            int skew = s.Counts[i].GetValueOrDefault(v) + self - s.Min[i];
            if (skew > c.MaxSkew) return Rejected;
        }
        return null;
    }

    public Status? PreScore(CycleState state, PodInfo pod, ReadOnlySpan<NodeInfo> feasible)
    {
        bool any = false;
        foreach (var c in pod.SpreadConstraints) if (!c.DoNotSchedule) { any = true; break; }
        if (!any) return Status.Skip;
        var s = state.Data[Index + 1] as SpreadState ?? new SpreadState();
        state.Data[Index + 1] = s;
        Compute(state, pod, s, doNotSchedule: false);
        return null;
    }

    public long Score(CycleState state, PodInfo pod, NodeInfo node)
    {
        var s = (SpreadState)state.Data[Index + 1]!;
        double score = 0;
        for (int i = 0; i < s.Constraints.Count; i++)
        {
            var c = s.Constraints[i];
            if (node.Labels is null || !node.Labels.TryGetValue(c.TopologyKey, out var v)) return -1; // ignored node
            score += s.Counts[i].GetValueOrDefault(v) * s.TopoWeights[i] + (c.MaxSkew - 1);
        }
        return (long)Math.Round(score);
    }

    public void Normalize(CycleState state, PodInfo pod, Span<long> scores)
    {
        long min = long.MaxValue, max = 0;
        foreach (var x in scores) { if (x < 0) continue; if (x < min) min = x; if (x > max) max = x; }
        for (int i = 0; i < scores.Length; i++)
        {
            if (scores[i] < 0) { scores[i] = 0; continue; }
            scores[i] = max == 0 ? Framework.MaxNodeScore : Framework.MaxNodeScore * (max + min - scores[i]) / max;
        }
    }
}
