using System.Text.Json;
using System.Text.Json.Nodes;
using Berth.Cluster.Api.Admission;
using Berth.Cluster.Client;
using Berth.Cluster.Controllers.Runtime;
using k8s;
using k8s.Models;

namespace Berth.Cluster.Controllers;

/// <summary>
/// kube-controller-manager's resource quota controller: keeps each ResourceQuota's status.hard equal to
/// spec.hard and status.used equal to what the namespace's objects use (the same evaluators as the
/// admission check, <see cref="QuotaUsage"/>). Level-triggered: a quota is synced when it is added or its
/// spec.hard changes, when an object it may count is deleted or a pod finishes (replenishment), and
/// every <see cref="ResyncPeriod"/> (kube's --resource-quota-sync-period, 5 minutes). Admission only
/// ever adds to status.used; this controller is what gives back what deletes released.
/// </summary>
public sealed class ResourceQuotaController : Controller
{
    readonly IClusterClient _client;
    readonly Informer<V1ResourceQuota> _quotas;
    readonly Informer<V1Pod> _pods;
    readonly List<Source> _sources = [];
    readonly TimeProvider _time;
    public override string Name => "resourcequota-controller";
    public TimeSpan ResyncPeriod { get; }

    /// <summary>Where the objects of one kind come from: an informer's cache (shared with other controllers) or a list.</summary>
    sealed record Source(string Group, string Plural, Func<string, CancellationToken, ValueTask<IEnumerable<JsonObject>>> ListAsync);

    public ResourceQuotaController(InformerFactory f, TimeSpan? resync = null, TimeProvider? time = null)
    {
        _client = f.Client;
        _time = time ?? TimeProvider.System;
        ResyncPeriod = resync ?? TimeSpan.FromMinutes(5);
        _quotas = f.For<V1ResourceQuota>();
        _pods = f.For<V1Pod>();
        _quotas.AddHandler(new InformerHandler<V1ResourceQuota>(q => Enqueue(q.Metadata), (o, q) => { if (NeedsSync(o, q)) Enqueue(q.Metadata); }));
        _pods.AddHandler(new InformerHandler<V1Pod>(
            update: (o, p) => { if (CountsAsPod(o) && !CountsAsPod(p)) NamespaceChanged(p.Metadata.NamespaceProperty); },
            delete: p => NamespaceChanged(p.Metadata.NamespaceProperty)));
        _sources.Add(new Source("", "pods", (ns, _) => new(_pods.List(ns).Select(ToJson))));
        // kinds other controllers already watch: their informers are shared, deletes replenish at once
        Informed<V1Service>(f); Informed<V1ConfigMap>(f); Informed<V1ServiceAccount>(f); Informed<V1Endpoints>(f);
        Informed<V1Deployment>(f); Informed<V1ReplicaSet>(f); Informed<V1StatefulSet>(f); Informed<V1DaemonSet>(f);
        Informed<V1Job>(f); Informed<V1CronJob>(f); Informed<V1ControllerRevision>(f); Informed<V1EndpointSlice>(f);
        Informed<V1Lease>(f); Informed<V1PodDisruptionBudget>(f);
        _sources.Add(new Source("", "resourcequotas", (ns, _) => new(_quotas.List(ns).Select(ToJson))));
        // the others are listed when a quota names them (no cache of every Secret in memory): resync replenishes
        Listed<V1Secret>(); Listed<V1PersistentVolumeClaim>(); Listed<V1LimitRange>();
    }

    void Informed<T>(InformerFactory f) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var k = Kinds.Of<T>();
        var inf = f.For<T>();
        inf.AddHandler(new InformerHandler<T>(delete: o => NamespaceChanged(o.Metadata.NamespaceProperty)));
        _sources.Add(new Source(k.Group, k.Plural, (ns, _) => new(inf.List(ns).Select(ToJson))));
    }

    void Listed<T>() where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var k = Kinds.Of<T>();
        _sources.Add(new Source(k.Group, k.Plural, async (ns, ct) => (await _client.ListAsync<T>(ns, ct).ConfigureAwait(false)).Items.Select(ToJson)));
    }

    static JsonObject ToJson<T>(T obj) where T : class => JsonNode.Parse(Kinds.ToJson(obj))!.AsObject();

    bool CountsAsPod(V1Pod p) => QuotaUsage.CountsAsPod(ToJson(p), _time.GetUtcNow());

    static bool NeedsSync(V1ResourceQuota old, V1ResourceQuota q) =>
        !SameList(old.Spec?.Hard, q.Spec?.Hard) || !SameList(q.Spec?.Hard, q.Status?.Hard);

    static bool SameList(IDictionary<string, ResourceQuantity>? a, IDictionary<string, ResourceQuantity>? b)
    {
        if ((a?.Count ?? 0) != (b?.Count ?? 0)) return false;
        if (a is null || b is null) return true;
        foreach (var (k, v) in a)
            if (!b.TryGetValue(k, out var w) || Quantity.TryParse(v?.ToString()) != Quantity.TryParse(w?.ToString())) return false;
        return true;
    }

    void NamespaceChanged(string? ns)
    {
        if (ns is null) return;
        foreach (var q in _quotas.List(ns)) Enqueue(q.Metadata);
    }

    protected override async Task ReconcileAsync(string key, CancellationToken ct)
    {
        var (ns, name) = Kinds.SplitKey(key);
        var quota = _quotas.Get(ns, name);
        if (quota is null || ns is null) return;
        var quotaJson = ToJson(quota);
        var hard = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in quota.Spec?.Hard ?? new Dictionary<string, ResourceQuantity>())
            hard[k] = Quantity.TryParse(v?.ToString()) is { } q ? q.ToString() : v?.ToString() ?? "0";
        var used = new Dictionary<string, Quantity>(StringComparer.Ordinal);
        foreach (var r in hard.Keys) used[r] = Quantity.Zero;
        var now = _time.GetUtcNow();
        foreach (var s in _sources)
        {
            var names = hard.Keys.Where(r => QuotaUsage.Tracks(s.Group, s.Plural, r) && QuotaUsage.ScopeAllows(quotaJson, r)).ToList();
            if (names.Count == 0) continue;
            foreach (var o in await s.ListAsync(ns, ct).ConfigureAwait(false))
            {
                if (!QuotaUsage.MatchesScopes(quotaJson, s.Group, s.Plural, o)) continue;
                var u = QuotaUsage.Of(s.Group, s.Plural, o, now);
                foreach (var r in names)
                    if (u.TryGetValue(r, out var v)) used[r] = used[r].Add(v);
            }
        }
        var usedText = used.ToDictionary(kv => kv.Key, kv => kv.Value.ToString(), StringComparer.Ordinal);
        if (!SameText(quota.Status?.Hard, hard) || !SameText(quota.Status?.Used, usedText))
        {
            var copy = Kinds.Clone(quota);
            copy.Status = new V1ResourceQuotaStatus
            {
                Hard = hard.ToDictionary(kv => kv.Key, kv => new ResourceQuantity(kv.Value)),
                Used = usedText.ToDictionary(kv => kv.Key, kv => new ResourceQuantity(kv.Value)),
            };
            try { await _client.UpdateStatusAsync(copy, ct).ConfigureAwait(false); }
            catch (ClusterException e) when (e.Kind is ClusterErrorKind.NotFound) { return; }
        }
        EnqueueAfter(key, ResyncPeriod);
    }

    static bool SameText(IDictionary<string, ResourceQuantity>? have, Dictionary<string, string> want)
    {
        if ((have?.Count ?? 0) != want.Count) return false;
        foreach (var (k, v) in want)
            if (have is null || !have.TryGetValue(k, out var h) || Quantity.TryParse(h?.ToString()) != Quantity.TryParse(v)) return false;
        return true;
    }
}
