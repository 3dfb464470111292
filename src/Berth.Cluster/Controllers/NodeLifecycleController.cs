using Berth.Cluster.Client;
using Berth.Cluster.Controllers.Runtime;
using Berth.Cluster.Scheduling;
using k8s.Models;

namespace Berth.Cluster.Controllers;

/// <summary>
/// kube-controller-manager's node lifecycle controller, taint-based: a node whose last heartbeat (its
/// kube-node-lease Lease renewTime, or the Ready condition's lastHeartbeatTime) is older than the grace
/// period (40 s) gets Ready=Unknown ("Kubelet stopped posting node status.") and the
/// node.kubernetes.io/unreachable NoSchedule and NoExecute taints; a node reporting Ready=False gets
/// the not-ready taints; a healthy node loses them. Pods on a node with a NoExecute taint are evicted
/// (deleted) unless they tolerate it: at once without a toleration, after tolerationSeconds (from
/// the taint's timeAdded) with one, never with an unbounded one. The API server has no
/// DefaultTolerationSeconds admission yet, so a pod without any not-ready/unreachable toleration is
/// treated as that admission would have left it: tolerating them for 300 s.
/// </summary>
public sealed class NodeLifecycleController : Controller
{
    public const string LeaseNamespace = "kube-node-lease";
    public const string UnreachableTaint = "node.kubernetes.io/unreachable";
    public const string NotReadyTaint = "node.kubernetes.io/not-ready";
    public static readonly TimeSpan DefaultGracePeriod = TimeSpan.FromSeconds(40);
    public const long DefaultTolerationSeconds = 300;

    readonly IClusterClient _client;
    readonly Informer<V1Node> _nodes;
    readonly Informer<V1Lease> _leases;
    readonly Informer<V1Pod> _pods;
    readonly TimeProvider _time;
    readonly TimeSpan _grace;
    readonly Wakeups _wake;
    readonly ObjectEvents _events;
    public override string Name => "node-lifecycle-controller";
    const string NodeIndex = "lifecycle-node";

    public NodeLifecycleController(InformerFactory f, TimeProvider? time = null, TimeSpan? gracePeriod = null)
    {
        _client = f.Client;
        _time = time ?? TimeProvider.System;
        _grace = gracePeriod ?? DefaultGracePeriod;
        _wake = new Wakeups(_time, Enqueue);
        _events = new ObjectEvents(_client, "node-controller", _time);
        _nodes = f.For<V1Node>();
        _leases = f.For<V1Lease>();
        _pods = f.For<V1Pod>();
        _pods.AddIndex(NodeIndex, p => string.IsNullOrEmpty(p.Spec?.NodeName) ? null : p.Spec.NodeName);
        _nodes.AddHandler(new InformerHandler<V1Node>(n => Enqueue(n.Metadata.Name), (_, n) => Enqueue(n.Metadata.Name)));
        _leases.AddHandler(new InformerHandler<V1Lease>(l => LeaseChanged(l), (_, l) => LeaseChanged(l)));
        _pods.AddHandler(new InformerHandler<V1Pod>(p => { if (!string.IsNullOrEmpty(p.Spec?.NodeName)) Enqueue(p.Spec.NodeName); },
            (_, p) => { if (!string.IsNullOrEmpty(p.Spec?.NodeName)) Enqueue(p.Spec.NodeName); }));
    }

    void LeaseChanged(V1Lease l)
    {
        if (l.Metadata.NamespaceProperty == LeaseNamespace) Enqueue(l.Metadata.Name);
    }

    DateTime? LastHeartbeat(V1Node n)
    {
        DateTime? t = PodlessReady(n)?.LastHeartbeatTime;
        if (_leases.Get(LeaseNamespace, n.Metadata.Name)?.Spec?.RenewTime is { } renew && (t is null || renew > t)) t = renew;
        return t ?? n.Metadata.CreationTimestamp;
    }

    static V1NodeCondition? PodlessReady(V1Node n) => n.Status?.Conditions?.FirstOrDefault(c => c.Type == "Ready");

    protected override async Task ReconcileAsync(string key, CancellationToken ct)
    {
        var cached = _nodes.Get(key);
        if (cached is null) return;
        var node = Kinds.Clone(cached);
        var now = _time.GetUtcNow().UtcDateTime;
        var last = LastHeartbeat(node) ?? now;
        var ready = PodlessReady(node);
        bool stale = now - last > _grace;
        if (stale && ready?.Status != "Unknown")
        {
            node.Status ??= new V1NodeStatus();
            node.Status.Conditions ??= [];
            foreach (var c in node.Status.Conditions.Where(c => c.Type is "Ready" or "MemoryPressure" or "DiskPressure" or "PIDPressure"))
            {
                if (c.Status != "Unknown") c.LastTransitionTime = now;
                c.Status = "Unknown"; c.Reason = "NodeStatusUnknown"; c.Message = "Kubelet stopped posting node status.";
            }
            if (ready is null) node.Status.Conditions.Add(new V1NodeCondition { Type = "Ready", Status = "Unknown", Reason = "NodeStatusNeverUpdated", Message = "Kubelet never posted node status.", LastTransitionTime = now });
            node = await _client.UpdateStatusAsync(node, ct).ConfigureAwait(false);
            _events.Record(node, "Normal", "NodeNotReady", $"Node {node.Metadata.Name} status is now: NodeNotReady");
            ready = PodlessReady(node);
        }
        else if (!stale) _wake.At(key, last + _grace + TimeSpan.FromMilliseconds(1), now);

        // Taints follow the Ready condition.
        string? want = ready?.Status switch { "Unknown" => UnreachableTaint, "False" => NotReadyTaint, _ => null };
        var taints = new List<V1Taint>(node.Spec?.Taints ?? []);
        var kept = taints.Where(t => t.Key is not (UnreachableTaint or NotReadyTaint) || (t.Key == want)).ToList();
        if (want is not null)
            foreach (var effect in new[] { "NoSchedule", "NoExecute" })
                if (!kept.Any(t => t.Key == want && t.Effect == effect)) kept.Add(new V1Taint { Key = want, Effect = effect, TimeAdded = now });
        if (kept.Count != taints.Count || kept.Except(taints).Any())
        {
            node.Spec ??= new V1NodeSpec();
            node.Spec.Taints = kept;
            node.Metadata.ResourceVersion = null;
            node = await _client.UpdateAsync(node, ct).ConfigureAwait(false);
        }
        await EvictAsync(node, now, ct).ConfigureAwait(false);
    }

    /// <summary>Deletes the node's pods that do not tolerate its NoExecute taints (or whose toleration ran out).</summary>
    async Task EvictAsync(V1Node node, DateTime now, CancellationToken ct)
    {
        var noExecute = (node.Spec?.Taints ?? []).Where(t => t.Effect == "NoExecute").ToList();
        if (noExecute.Count == 0) return;
        foreach (var p in _pods.ByIndex(NodeIndex, node.Metadata.Name))
        {
            if (p.Metadata.DeletionTimestamp is not null || PodFacts.IsTerminal(p)) continue;
            DateTime? evictAt = null;
            bool forever = true;
            foreach (var taint in noExecute)
            {
                var tolerations = EffectiveTolerations(p, taint);
                var match = tolerations.Where(t => Taints.Tolerates(t, taint)).ToList();
                if (match.Count == 0) { evictAt = now; forever = false; break; }
                if (match.Any(t => t.TolerationSeconds is null)) continue;
                var at = (taint.TimeAdded ?? now).AddSeconds(Math.Max(0, match.Min(t => t.TolerationSeconds!.Value)));
                forever = false;
                if (evictAt is null || at < evictAt) evictAt = at;
            }
            if (forever || evictAt is not { } when) continue;
            if (when > now) { _wake.At(node.Metadata.Name, when, now); continue; }
            try
            {
                await _client.DeleteAsync<V1Pod>(p.Metadata.NamespaceProperty, p.Metadata.Name, new DeleteOptions(Uid: p.Metadata.Uid), ct).ConfigureAwait(false);
                _events.Record(p, "Normal", "TaintManagerEviction", $"Marking for deletion Pod {p.Metadata.NamespaceProperty}/{p.Metadata.Name}");
            }
            catch (ClusterException e) when (e.Kind is ClusterErrorKind.NotFound or ClusterErrorKind.Conflict) { }
        }
    }

    /// <summary>The pod's tolerations, plus the 300 s not-ready/unreachable ones DefaultTolerationSeconds would have added.</summary>
    static List<V1Toleration> EffectiveTolerations(V1Pod p, V1Taint taint)
    {
        var l = new List<V1Toleration>(p.Spec?.Tolerations ?? []);
        if (taint.Key is UnreachableTaint or NotReadyTaint && !l.Any(t => t.Key == taint.Key || (string.IsNullOrEmpty(t.Key) && t.OperatorProperty == "Exists")))
            l.Add(new V1Toleration { Key = taint.Key, OperatorProperty = "Exists", Effect = "NoExecute", TolerationSeconds = DefaultTolerationSeconds });
        return l;
    }
}
