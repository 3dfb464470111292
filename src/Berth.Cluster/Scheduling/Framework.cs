namespace Berth.Cluster.Scheduling;

public enum StatusCode { Success, Error, Unschedulable, UnschedulableAndUnresolvable, Skip }

/// <summary>
/// The outcome of one plugin at one extension point, a value (never an exception). Filters return
/// null for success; a rejection carries the reasons users see counted in
/// "0/3 nodes are available: 2 Insufficient memory, …".
/// </summary>
public sealed class Status(StatusCode code, string[] reasons, string? plugin = null)
{
    public StatusCode Code { get; } = code;
    public string[] Reasons { get; } = reasons;
    public string? Plugin { get; internal set; } = plugin;
    public string Message => string.Join(", ", Reasons);
    public bool IsRejected => Code is StatusCode.Unschedulable or StatusCode.UnschedulableAndUnresolvable;

    public static Status Unschedulable(string reason) => new(StatusCode.Unschedulable, [reason]);
    public static Status Unresolvable(string reason) => new(StatusCode.UnschedulableAndUnresolvable, [reason]);
    public static Status Error(string reason) => new(StatusCode.Error, [reason]);
    public static readonly Status Skip = new(StatusCode.Skip, []);
    public override string ToString() => $"{Code}: {Message}";
}

/// <summary>Per-cycle scratch space: one slot per plugin (plugins reuse their slot's object across cycles).</summary>
public sealed class CycleState(int plugins)
{
    public readonly object?[] Data = new object?[plugins];
    public readonly bool[] SkipFilter = new bool[plugins];
    public readonly bool[] SkipScore = new bool[plugins];
    /// <summary>All nodes of this cycle (the cache's list; read-only during the cycle).</summary>
    public IReadOnlyList<NodeInfo> AllNodes { get; internal set; } = [];

    internal void Reset() { Array.Clear(SkipFilter); Array.Clear(SkipScore); }
}

public interface IPlugin
{
    string Name { get; }
    /// <summary>Slot in <see cref="CycleState.Data"/>, set by the framework at registration.</summary>
    int Index { get; set; }
}

/// <summary>Runs once per pod before filtering; precomputes what Filter needs. Return <see cref="Status.Skip"/> to skip this plugin's Filter for the pod.</summary>
public interface IPreFilterPlugin : IPlugin { Status? PreFilter(CycleState state, PodInfo pod); }

/// <summary>Called for each node, possibly in parallel: must only read shared state.</summary>
public interface IFilterPlugin : IPlugin { Status? Filter(CycleState state, PodInfo pod, NodeInfo node); }

public sealed record PostFilterResult(string? NominatedNodeName, Status Status);

/// <summary>Runs when no node passed the filters (preemption).</summary>
public interface IPostFilterPlugin : IPlugin { PostFilterResult PostFilter(CycleState state, PodInfo pod, IReadOnlyList<NodeInfo> nodes, Status?[] nodeStatuses, Scheduler scheduler); }

public interface IPreScorePlugin : IPlugin { Status? PreScore(CycleState state, PodInfo pod, ReadOnlySpan<NodeInfo> feasible); }

public interface IScorePlugin : IPlugin
{
    int Weight { get; }
    long Score(CycleState state, PodInfo pod, NodeInfo node);
    /// <summary>Maps raw scores into 0..<see cref="Framework.MaxNodeScore"/>; null when raw scores already are.</summary>
    void Normalize(CycleState state, PodInfo pod, Span<long> scores) { }
}

public interface IReservePlugin : IPlugin
{
    Status? Reserve(CycleState state, PodInfo pod, string nodeName);
    void Unreserve(CycleState state, PodInfo pod, string nodeName);
}

public interface IBindPlugin : IPlugin { ValueTask<Status?> BindAsync(PodInfo pod, string nodeName, CancellationToken ct); }

public static class Framework
{
    public const long MaxNodeScore = 100;

    /// <summary>Scales scores so the highest becomes MaxNodeScore (reverse: the lowest does).</summary>
    public static void DefaultNormalize(Span<long> scores, bool reverse)
    {
        long max = 0;
        foreach (var s in scores) if (s > max) max = s;
        if (max == 0)
        {
            if (reverse) scores.Fill(MaxNodeScore);
            return;
        }
        for (int i = 0; i < scores.Length; i++)
        {
            var s = MaxNodeScore * scores[i] / max;
            scores[i] = reverse ? MaxNodeScore - s : s;
        }
    }
}
