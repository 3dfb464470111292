using Berth.Cluster.Client;
using Berth.Cluster.Controllers.Runtime;
using Berth.Cluster.Scheduling;
using k8s.Models;

namespace Berth.Cluster.Controllers;

/// <summary>
/// kube-controller-manager's disruption controller: keeps each PodDisruptionBudget's status — the pods
/// it selects that are ready and not being deleted (currentHealthy), what the budget needs
/// (desiredHealthy: minAvailable, or the expected pods less maxUnavailable), the expected pods (the
/// selected pods for an integer minAvailable, else the scale of their controllers: Deployment through its
/// ReplicaSet, ReplicaSet, StatefulSet), disruptionsAllowed and the DisruptionAllowed condition. Pods the
/// eviction path recorded in disruptedPods do not count as healthy until they are gone or two minutes
/// passed, as kube's DeletionTimeout.
/// </summary>
public sealed class DisruptionController : Controller
{
    static readonly TimeSpan DeletionTimeout = TimeSpan.FromMinutes(2);
    readonly IClusterClient _client;
    readonly Informer<V1PodDisruptionBudget> _pdbs;
    readonly Informer<V1Pod> _pods;
    readonly Informer<V1ReplicaSet> _rs;
    readonly Informer<V1Deployment> _deploys;
    readonly Informer<V1StatefulSet> _sts;
    readonly TimeProvider _time;
    public override string Name => "disruption-controller";

    public DisruptionController(InformerFactory f, TimeProvider? time = null)
    {
        _client = f.Client;
        _time = time ?? TimeProvider.System;
        _pdbs = f.For<V1PodDisruptionBudget>();
        _pods = f.For<V1Pod>();
        _rs = f.For<V1ReplicaSet>();
        _deploys = f.For<V1Deployment>();
        _sts = f.For<V1StatefulSet>();
        _pdbs.AddHandler(new InformerHandler<V1PodDisruptionBudget>(p => Enqueue(p.Metadata), (_, p) => Enqueue(p.Metadata)));
        _pods.AddHandler(new InformerHandler<V1Pod>(PodChanged, (_, p) => PodChanged(p), PodChanged));
        // a controller's scale is the expected pod count of percentage budgets
        _rs.AddHandler(new InformerHandler<V1ReplicaSet>(update: (_, r) => NamespaceChanged(r.Metadata.NamespaceProperty)));
        _deploys.AddHandler(new InformerHandler<V1Deployment>(update: (_, d) => NamespaceChanged(d.Metadata.NamespaceProperty)));
        _sts.AddHandler(new InformerHandler<V1StatefulSet>(update: (_, s) => NamespaceChanged(s.Metadata.NamespaceProperty)));
    }

    void PodChanged(V1Pod p)
    {
        foreach (var pdb in _pdbs.List(p.Metadata.NamespaceProperty))
            if (Selects(pdb, p)) Enqueue(pdb.Metadata);
    }

    void NamespaceChanged(string? ns)
    {
        foreach (var pdb in _pdbs.List(ns)) Enqueue(pdb.Metadata);
    }

    /// <summary>A budget with a missing or empty selector selects nothing (as the eviction path treats it).</summary>
    static bool Selects(V1PodDisruptionBudget pdb, V1Pod p) =>
        pdb.Spec?.Selector is { } s && (s.MatchLabels is { Count: > 0 } || s.MatchExpressions is { Count: > 0 })
        && LabelSelectorMatcher.From(s).Matches(p.Metadata.Labels);

    protected override async Task ReconcileAsync(string key, CancellationToken ct)
    {
        var (ns, name) = Kinds.SplitKey(key);
        var pdb = _pdbs.Get(ns, name);
        if (pdb is null || pdb.Metadata.DeletionTimestamp is not null) return;
        var now = _time.GetUtcNow().UtcDateTime;
        var pods = _pods.List(ns).Where(p => Selects(pdb, p)).ToList();

        // disruptedPods: kept while the pod is still there, not deleting, and the record is recent
        var disrupted = new Dictionary<string, DateTime?>();
        DateTime? nextExpiry = null;
        foreach (var (pod, at) in pdb.Status?.DisruptedPods ?? new Dictionary<string, DateTime?>())
        {
            if (at is null) continue;
            var p = pods.FirstOrDefault(x => x.Metadata.Name == pod);
            if (p is null || p.Metadata.DeletionTimestamp is not null) continue;
            var expires = at.Value.ToUniversalTime() + DeletionTimeout;
            if (expires <= now) continue;
            disrupted[pod] = at;
            if (nextExpiry is null || expires < nextExpiry) nextExpiry = expires;
        }

        var healthy = pods.Count(p => p.Metadata.DeletionTimestamp is null && !disrupted.ContainsKey(p.Metadata.Name) && PodConditions.IsReady(p));
        int expected, desired;
        if (pdb.Spec?.MaxUnavailable is { } maxUnavailable)
        {
            expected = ExpectedScale(pods);
            desired = Math.Max(0, expected - Scaled(maxUnavailable, expected));
        }
        else if (pdb.Spec?.MinAvailable is { } minAvailable && !minAvailable.Value.EndsWith('%'))
        {
            desired = Scaled(minAvailable, 0);
            expected = pods.Count;
        }
        else if (pdb.Spec?.MinAvailable is { } pct)
        {
            expected = ExpectedScale(pods);
            desired = Scaled(pct, expected);
        }
        else { expected = pods.Count; desired = 0; }
        var allowed = healthy - desired;
        if (expected <= 0 || allowed <= 0) allowed = 0;

        var generation = pdb.Metadata.Generation ?? 0;
        var old = pdb.Status;
        var condition = old?.Conditions?.FirstOrDefault(c => c.Type == "DisruptionAllowed");
        var (status, reason) = allowed > 0 ? ("True", "SufficientPods") : ("False", "InsufficientPods");
        var same = old is not null && old.CurrentHealthy == healthy && old.DesiredHealthy == desired && old.ExpectedPods == expected
            && old.DisruptionsAllowed == allowed && old.ObservedGeneration == generation
            && (old.DisruptedPods?.Count ?? 0) == disrupted.Count && condition is not null && condition.Status == status && condition.ObservedGeneration == generation;
        if (!same)
        {
            var copy = Kinds.Clone(pdb);
            var st = copy.Status ??= new V1PodDisruptionBudgetStatus();
            st.CurrentHealthy = healthy;
            st.DesiredHealthy = desired;
            st.ExpectedPods = expected;
            st.DisruptionsAllowed = allowed;
            st.ObservedGeneration = generation;
            st.DisruptedPods = disrupted.Count > 0 ? disrupted : null;
            var conditions = st.Conditions?.Where(c => c.Type != "DisruptionAllowed").ToList() ?? [];
            conditions.Add(new V1Condition
            {
                Type = "DisruptionAllowed", Status = status, Reason = reason, Message = "", ObservedGeneration = generation,
                LastTransitionTime = condition is not null && condition.Status == status ? condition.LastTransitionTime : now,
            });
            st.Conditions = conditions;
            try { await _client.UpdateStatusAsync(copy, ct).ConfigureAwait(false); }
            catch (ClusterException e) when (e.Kind is ClusterErrorKind.NotFound) { return; }
        }
        if (nextExpiry is { } next) EnqueueAfter(key, next - now + TimeSpan.FromMilliseconds(100));
    }

    /// <summary>An int-or-percent against a total, rounded up (intstr.GetScaledValueFromIntOrPercent with roundUp).</summary>
    static int Scaled(IntOrString v, int total)
    {
        var s = v.Value ?? "0";
        if (s.EndsWith('%') && int.TryParse(s[..^1], out var pct)) return (int)Math.Ceiling(total * pct / 100.0);
        return int.TryParse(s, out var n) ? n : 0;
    }

    /// <summary>The sum of the scales of the selected pods' controllers (each counted once); pods without one add nothing.</summary>
    int ExpectedScale(List<V1Pod> pods)
    {
        var seen = new HashSet<string>();
        var total = 0;
        foreach (var p in pods)
        {
            var owner = p.Metadata.OwnerReferences?.FirstOrDefault(o => o.Controller == true);
            if (owner is null) continue;
            var ns = p.Metadata.NamespaceProperty;
            switch (owner.Kind)
            {
                case "ReplicaSet" when _rs.Get(ns, owner.Name) is { } rs && rs.Metadata.Uid == owner.Uid:
                    var dep = rs.Metadata.OwnerReferences?.FirstOrDefault(o => o.Controller == true && o.Kind == "Deployment");
                    if (dep is not null && _deploys.Get(ns, dep.Name) is { } d && d.Metadata.Uid == dep.Uid)
                    {
                        if (seen.Add(d.Metadata.Uid)) total += d.Spec?.Replicas ?? 1;
                    }
                    else if (seen.Add(rs.Metadata.Uid)) total += rs.Spec?.Replicas ?? 1;
                    break;
                case "StatefulSet" when _sts.Get(ns, owner.Name) is { } s && s.Metadata.Uid == owner.Uid:
                    if (seen.Add(s.Metadata.Uid)) total += s.Spec?.Replicas ?? 1;
                    break;
            }
        }
        return total;
    }
}
