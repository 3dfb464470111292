namespace Berth.Cluster.Scheduling.Plugins;

/// <summary>
/// Required pod affinity and anti-affinity (the incoming pod's terms, and existing pods' anti-affinity
/// against it) as a filter, counted per topology pair (topologyKey, node's value); preferred terms of
/// both sides as a score (min–max normalized).
/// </summary>
public sealed class InterPodAffinity(SchedulerCache cache) : PluginBase, IPreFilterPlugin, IFilterPlugin, IPreScorePlugin, IScorePlugin
{
    public const string AffinityReason = "node(s) didn't match pod affinity rules";
    public const string AntiAffinityReason = "node(s) didn't match pod anti-affinity rules";
    public const string ExistingAntiAffinityReason = "node(s) didn't satisfy existing pods anti-affinity rules";
    static readonly Status AffinityRejected = Status.Unresolvable(AffinityReason);
    static readonly Status AntiRejected = Status.Unschedulable(AntiAffinityReason);
    static readonly Status ExistingRejected = Status.Unschedulable(ExistingAntiAffinityReason);

    public override string Name => "InterPodAffinity";
    public int Weight { get; init; } = 2;
    /// <summary>Weight an existing pod's required affinity to the incoming pod adds to the score (kube default 1).</summary>
    public int HardPodAffinityWeight { get; init; } = 1;

    sealed class FilterState
    {
        public readonly Dictionary<(string, string), int> ExistingAnti = [];
        public readonly Dictionary<(string, string), int> Affinity = [];
        public readonly Dictionary<(string, string), int> Anti = [];
        public bool SelfMatch;
        public void Clear() { ExistingAnti.Clear(); Affinity.Clear(); Anti.Clear(); }
    }

    sealed class ScoreState
    {
        public readonly Dictionary<(string, string), long> Scores = [];
    }

    public Status? PreFilter(CycleState state, PodInfo pod)
    {
        bool podHasTerms = pod.RequiredAffinity.Length + pod.RequiredAntiAffinity.Length > 0;
        if (!podHasTerms && cache.PodsWithAffinity == 0) return Status.Skip;
        var s = state.Data[Index] as FilterState ?? new FilterState();
        state.Data[Index] = s;
        s.Clear();
        foreach (var node in state.AllNodes)
        {
            if (node.Labels is null) continue;
            foreach (var existing in node.PodsWithRequiredAntiAffinity)
                foreach (var t in existing.RequiredAntiAffinity)
                    if (node.Labels.TryGetValue(t.TopologyKey, out var v) && t.Matches(pod))
                        Inc(s.ExistingAnti, (t.TopologyKey, v));
            if (!podHasTerms) continue;
            foreach (var existing in node.Pods)
            {
                if (pod.RequiredAffinity.Length > 0 && MatchesAll(pod.RequiredAffinity, existing))
                    foreach (var t in pod.RequiredAffinity)
                        if (node.Labels.TryGetValue(t.TopologyKey, out var v)) Inc(s.Affinity, (t.TopologyKey, v));
                foreach (var t in pod.RequiredAntiAffinity)
                    if (node.Labels.TryGetValue(t.TopologyKey, out var v) && t.Matches(existing)) Inc(s.Anti, (t.TopologyKey, v));
            }
        }
        s.SelfMatch = pod.RequiredAffinity.Length > 0 && MatchesAll(pod.RequiredAffinity, pod);
        return null;
    }

    static bool MatchesAll(AffinityTerm[] terms, PodInfo p)
    {
        foreach (var t in terms) if (!t.Matches(p)) return false;
        return true;
    }

    static void Inc<TV>(Dictionary<(string, string), TV> d, (string, string) k) where TV : System.Numerics.INumber<TV>
        => d[k] = (d.TryGetValue(k, out var v) ? v : TV.Zero) + TV.One;

    public Status? Filter(CycleState state, PodInfo pod, NodeInfo node)
    {
        var s = (FilterState)state.Data[Index]!;
        var labels = node.Labels;
        if (pod.RequiredAffinity.Length > 0)
        {
            bool ok = true;
            foreach (var t in pod.RequiredAffinity)
            {
                if (labels is null || !labels.TryGetValue(t.TopologyKey, out var v)) return AffinityRejected;
                if (s.Affinity.GetValueOrDefault((t.TopologyKey, v)) <= 0) { ok = false; }
            }
            // The first pod of a group that selects itself may go anywhere its topology keys exist.
            if (!ok && !(s.Affinity.Count == 0 && s.SelfMatch)) return AffinityRejected;
        }
        // kube-scheduler's order: the pod's affinity, its anti-affinity, then existing pods' anti-affinity.
        foreach (var t in pod.RequiredAntiAffinity)
            if (labels is not null && labels.TryGetValue(t.TopologyKey, out var v) && s.Anti.GetValueOrDefault((t.TopologyKey, v)) > 0) return AntiRejected;
        foreach (var ((key, value), n) in s.ExistingAnti)
            if (n > 0 && labels is not null && labels.TryGetValue(key, out var ev) && ev == value) return ExistingRejected;
        return null;
    }

    public Status? PreScore(CycleState state, PodInfo pod, ReadOnlySpan<NodeInfo> feasible)
    {
        bool podHasPreferred = pod.PreferredAffinity.Length + pod.PreferredAntiAffinity.Length > 0;
        if (!podHasPreferred && cache.PodsWithAffinity == 0) return Status.Skip;
        var s = state.Data[Index + 1] as ScoreState ?? new ScoreState();
        state.Data[Index + 1] = s;
        s.Scores.Clear();
        foreach (var node in state.AllNodes)
        {
            if (node.Labels is null) continue;
            var pods = podHasPreferred ? node.Pods : node.PodsWithAffinity;
            foreach (var existing in pods)
            {
                foreach (var t in pod.PreferredAffinity) if (t.Matches(existing)) Add(s, node, t.TopologyKey, t.Weight);
                foreach (var t in pod.PreferredAntiAffinity) if (t.Matches(existing)) Add(s, node, t.TopologyKey, -t.Weight);
                if (!existing.HasAffinity) continue;
                foreach (var t in existing.RequiredAffinity) if (t.Matches(pod)) Add(s, node, t.TopologyKey, HardPodAffinityWeight);
                foreach (var t in existing.PreferredAffinity) if (t.Matches(pod)) Add(s, node, t.TopologyKey, t.Weight);
                foreach (var t in existing.PreferredAntiAffinity) if (t.Matches(pod)) Add(s, node, t.TopologyKey, -t.Weight);
            }
        }
        return s.Scores.Count == 0 ? Status.Skip : null;
    }

    static void Add(ScoreState s, NodeInfo node, string key, long w)
    {
        if (w == 0 || !node.Labels!.TryGetValue(key, out var v)) return;
        s.Scores[(key, v)] = s.Scores.GetValueOrDefault((key, v)) + w;
    }

    public long Score(CycleState state, PodInfo pod, NodeInfo node)
    {
        var s = (ScoreState)state.Data[Index + 1]!;
        if (node.Labels is null) return 0;
        long total = 0;
        foreach (var ((key, value), w) in s.Scores)
            if (node.Labels.TryGetValue(key, out var v) && v == value) total += w;
        return total;
    }

    public void Normalize(CycleState state, PodInfo pod, Span<long> scores)
    {
        if (scores.Length == 0) return;
        long min = long.MaxValue, max = long.MinValue;
        foreach (var x in scores) { if (x < min) min = x; if (x > max) max = x; }
        long diff = max - min;
        for (int i = 0; i < scores.Length; i++)
            scores[i] = diff > 0 ? Framework.MaxNodeScore * (scores[i] - min) / diff : 0;
    }
}
