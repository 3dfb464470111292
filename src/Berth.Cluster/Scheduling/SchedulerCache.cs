using k8s.Models;

namespace Berth.Cluster.Scheduling;

/// <summary>
/// Nodes and the pods bound (or assumed bound) to them. A pod is "assumed" from the moment the
/// scheduler picks its node until the informer shows the binding, so the next cycle already counts
/// it; a failed binding forgets it; an assumption not confirmed within the TTL after binding finished
/// expires. Used only from the scheduler's thread.
/// </summary>
public sealed class SchedulerCache(TimeSpan? assumeTtl = null)
{
    readonly Dictionary<string, NodeInfo> _nodes = [];
    readonly List<NodeInfo> _list = [];
    readonly Dictionary<string, PodState> _pods = [];
    readonly TimeSpan _ttl = assumeTtl ?? TimeSpan.FromSeconds(30);

    sealed class PodState
    {
        public required PodInfo Info;
        public required string Node;
        public bool Assumed;
        public DateTime? Deadline;
    }

    /// <summary>Nodes in a stable round-robin order (read-only for callers).</summary>
    public IReadOnlyList<NodeInfo> Nodes => _list;
    public int NodeCount => _list.Count;
    public int PodCount => _pods.Count;
    public int PodsWithAffinity { get; private set; }

    public NodeInfo? GetNode(string name) => _nodes.TryGetValue(name, out var n) && n.Node is not null ? n : null;

    public void AddOrUpdateNode(V1Node node)
    {
        var name = node.Metadata.Name;
        if (!_nodes.TryGetValue(name, out var ni)) _nodes[name] = ni = new NodeInfo(name);
        ni.SetNode(node);
        if (ni.ListIndex < 0) { ni.ListIndex = _list.Count; _list.Add(ni); }
    }

    public void RemoveNode(string name)
    {
        if (!_nodes.TryGetValue(name, out var ni)) return;
        if (ni.ListIndex >= 0)
        {
            var last = _list[^1];
            _list[ni.ListIndex] = last;
            last.ListIndex = ni.ListIndex;
            _list.RemoveAt(_list.Count - 1);
            ni.ListIndex = -1;
        }
        ni.ClearNode();
        // Pods still on the node stay accounted for until their own deletions arrive.
        if (ni.Pods.Count == 0) _nodes.Remove(name);
    }

    NodeInfo NodeFor(string name)
    {
        if (!_nodes.TryGetValue(name, out var ni)) _nodes[name] = ni = new NodeInfo(name);
        return ni;
    }

    public bool IsAssumed(string uid) => _pods.TryGetValue(uid, out var s) && s.Assumed;

    /// <summary>Counts the pod on <paramref name="node"/> before the binding is confirmed.</summary>
    public void AssumePod(PodInfo pod, string node)
    {
        if (_pods.ContainsKey(pod.Uid)) throw new InvalidOperationException($"pod \"{pod.Key}\" is already in the scheduler cache");
        NodeFor(node).AddPod(pod);
        _pods[pod.Uid] = new PodState { Info = pod, Node = node, Assumed = true };
        if (pod.HasAffinity) PodsWithAffinity++;
    }

    /// <summary>Binding finished: start the assumption's expiry clock.</summary>
    public void FinishBinding(string uid, DateTime now)
    {
        if (_pods.TryGetValue(uid, out var s) && s.Assumed) s.Deadline = now + _ttl;
    }

    /// <summary>Binding failed: undo the assumption.</summary>
    public void ForgetPod(string uid)
    {
        if (_pods.TryGetValue(uid, out var s) && s.Assumed) RemoveState(uid, s);
    }

    /// <summary>A bound pod seen by the informer (confirms an assumption, or moves it if bound elsewhere).</summary>
    public void AddOrUpdatePod(PodInfo pod)
    {
        var node = pod.NodeName!;
        if (_pods.TryGetValue(pod.Uid, out var s)) RemoveState(pod.Uid, s);
        NodeFor(node).AddPod(pod);
        _pods[pod.Uid] = new PodState { Info = pod, Node = node };
        if (pod.HasAffinity) PodsWithAffinity++;
    }

    public void RemovePod(string uid)
    {
        if (_pods.TryGetValue(uid, out var s)) RemoveState(uid, s);
    }

    void RemoveState(string uid, PodState s)
    {
        _pods.Remove(uid);
        if (s.Info.HasAffinity) PodsWithAffinity--;
        if (_nodes.TryGetValue(s.Node, out var ni))
        {
            ni.RemovePod(uid);
            if (ni.Node is null && ni.Pods.Count == 0) _nodes.Remove(s.Node);
        }
    }

    /// <summary>Drops assumptions whose binding finished more than the TTL ago without confirmation.</summary>
    public int CleanupExpired(DateTime now)
    {
        List<string>? expired = null;
        foreach (var (uid, s) in _pods)
            if (s.Assumed && s.Deadline is { } d && d < now) (expired ??= []).Add(uid);
        if (expired is null) return 0;
        foreach (var uid in expired) RemoveState(uid, _pods[uid]);
        return expired.Count;
    }
}
