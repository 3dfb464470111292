using Berth.Cluster.Client;
using Berth.Cluster.Controllers.Runtime;
using Berth.Cluster.Scheduling;
using k8s.Models;

namespace Berth.Cluster.Controllers;

/// <summary>
/// Keeps spec.replicas pods matching a ReplicaSet's selector: adopts matching orphans, releases pods
/// whose labels no longer match, creates missing pods from the template (in slow-start batches) and
/// deletes surplus ones (unscheduled, pending, not ready and youngest first). Expectations stop it
/// from acting again before its informer has seen its own creations and deletions. Writes status
/// (replicas, fullyLabeled, ready, available, observedGeneration).
/// </summary>
public sealed class ReplicaSetController : Controller
{
    readonly IClusterClient _client;
    readonly Informer<V1ReplicaSet> _rs;
    readonly Informer<V1Pod> _pods;
    readonly Expectations _exp = new();
    readonly ObjectEvents _events;
    public const int BurstReplicas = 500;
    public override string Name => "replicaset-controller";

    public ReplicaSetController(InformerFactory f)
    {
        _client = f.Client;
        _events = new ObjectEvents(_client, Name, TimeProvider.System);
        _rs = f.For<V1ReplicaSet>();
        _pods = f.For<V1Pod>();
        _rs.AddHandler(new InformerHandler<V1ReplicaSet>(r => Enqueue(r.Metadata), (_, r) => Enqueue(r.Metadata), r => { _exp.Delete(Kinds.Key(r.Metadata)); Enqueue(r.Metadata); }));
        _pods.AddHandler(new InformerHandler<V1Pod>(PodAdded, PodUpdated, PodDeleted));
    }

    string? OwnerKey(V1Pod p)
    {
        var r = Owners.ControllerOf(p.Metadata);
        return r is { Kind: "ReplicaSet" } ? p.Metadata.NamespaceProperty + "/" + r.Name : null;
    }

    void PodAdded(V1Pod p)
    {
        if (OwnerKey(p) is { } k)
        {
            if (p.Metadata.DeletionTimestamp is not null) _exp.DeletionObserved(k); else _exp.CreationObserved(k);
            Enqueue(k);
            return;
        }
        EnqueueMatching(p);
    }

    void PodUpdated(V1Pod old, V1Pod p)
    {
        var ok = OwnerKey(old); var nk = OwnerKey(p);
        if (ok is not null && ok != nk) Enqueue(ok);
        if (nk is not null)
        {
            if (old.Metadata.DeletionTimestamp is null && p.Metadata.DeletionTimestamp is not null) _exp.DeletionObserved(nk);
            Enqueue(nk);
        }
        else EnqueueMatching(p);
    }

    void PodDeleted(V1Pod p)
    {
        if (OwnerKey(p) is not { } k) return;
        if (p.Metadata.DeletionTimestamp is null) _exp.DeletionObserved(k);
        Enqueue(k);
    }

    void EnqueueMatching(V1Pod p)
    {
        foreach (var rs in _rs.ByIndex(InformerFactory.NamespaceIndex, p.Metadata.NamespaceProperty ?? ""))
            if (LabelSelectorMatcher.From(rs.Spec?.Selector).Matches(p.Metadata.Labels)) Enqueue(rs.Metadata);
    }

    protected override async Task ReconcileAsync(string key, CancellationToken ct)
    {
        var rs = _rs.Get(key);
        if (rs is null) { _exp.Delete(key); return; }
        var ns = rs.Metadata.NamespaceProperty;
        var selector = LabelSelectorMatcher.From(rs.Spec.Selector);
        if (selector.Everything) throw new InvalidOperationException($"replicaset \"{rs.Metadata.Name}\" in namespace \"{ns}\" has an empty selector");
        bool needsSync = _exp.Satisfied(key);

        var owned = await ClaimPodsAsync(rs, selector, ct).ConfigureAwait(false);
        var active = owned.Where(Owners.IsActivePod).ToList();
        int want = rs.Spec.Replicas ?? 1;
        if (needsSync && rs.Metadata.DeletionTimestamp is null)
        {
            int diff = active.Count - want;
            if (diff < 0) await CreatePodsAsync(rs, key, Math.Min(-diff, BurstReplicas), ct).ConfigureAwait(false);
            else if (diff > 0) await DeletePodsAsync(rs, key, RankForDeletion(active).Take(Math.Min(diff, BurstReplicas)).ToList(), ct).ConfigureAwait(false);
        }
        await UpdateStatusAsync(rs, key, owned, selector, ct).ConfigureAwait(false);
    }

    /// <summary>Owned pods after adoption of matching orphans and release of non-matching ones.</summary>
    async Task<List<V1Pod>> ClaimPodsAsync(V1ReplicaSet rs, LabelSelectorMatcher selector, CancellationToken ct)
    {
        var result = new List<V1Pod>();
        foreach (var p in _pods.ByIndex(InformerFactory.NamespaceIndex, rs.Metadata.NamespaceProperty))
        {
            var cref = Owners.ControllerOf(p.Metadata);
            bool matches = selector.Matches(p.Metadata.Labels);
            if (cref is not null)
            {
                if (cref.Uid != rs.Metadata.Uid) continue;
                if (matches) { result.Add(p); continue; }
                if (rs.Metadata.DeletionTimestamp is not null) continue;
                var rel = Kinds.Clone(p);                      // release
                rel.Metadata.OwnerReferences = rel.Metadata.OwnerReferences.Where(r => r.Uid != rs.Metadata.Uid).ToList();
                try { await _client.UpdateAsync(rel, ct).ConfigureAwait(false); } catch (ClusterException e) when (e.Kind is ClusterErrorKind.NotFound) { }
                continue;
            }
            if (!matches || rs.Metadata.DeletionTimestamp is not null || p.Metadata.DeletionTimestamp is not null) continue;
            var adopt = Kinds.Clone(p);                         // adopt
            adopt.Metadata.OwnerReferences ??= [];
            adopt.Metadata.OwnerReferences.Add(Owners.ControllerRef("apps/v1", "ReplicaSet", rs.Metadata));
            try { result.Add(await _client.UpdateAsync(adopt, ct).ConfigureAwait(false)); }
            catch (ClusterException e) when (e.Kind is ClusterErrorKind.NotFound or ClusterErrorKind.Conflict) { }
        }
        return result;
    }

    async Task CreatePodsAsync(V1ReplicaSet rs, string key, int count, CancellationToken ct)
    {
        _exp.Expect(key, count, 0);
        int done = 0;
        // Slow start: 1, 2, 4, … so a failing template does not produce a storm of errors.
        for (int batch = 1; done < count; batch = Math.Min(batch * 2, count - done))
        {
            int n = Math.Min(batch, count - done);
            var tasks = new Task<bool>[n];
            for (int i = 0; i < n; i++) tasks[i] = CreateOneAsync(rs, ct);
            var results = await Task.WhenAll(tasks).ConfigureAwait(false);
            done += n;
            int failed = results.Count(ok => !ok);
            if (failed > 0)
            {
                _exp.Lower(key, failed + (count - done), 0);
                throw new InvalidOperationException($"creating pods for replicaset \"{rs.Metadata.Name}\" in namespace \"{rs.Metadata.NamespaceProperty}\" failed: {LastCreateError}");
            }
        }
    }

    string? LastCreateError;

    async Task<bool> CreateOneAsync(V1ReplicaSet rs, CancellationToken ct)
    {
        try
        {
            var pod = await _client.CreateAsync(PodFromTemplate(rs.Spec.Template, rs.Metadata, rs.Metadata.Name + "-", Owners.ControllerRef("apps/v1", "ReplicaSet", rs.Metadata)), ct).ConfigureAwait(false);
            _events.Record(rs, "Normal", "SuccessfulCreate", $"Created pod: {pod.Metadata.Name}");
            return true;
        }
        catch (ClusterException e)
        {
            LastCreateError = e.Message;
            _events.Record(rs, "Warning", "FailedCreate", $"Error creating: {e.Message}");
            return false;
        }
    }

    /// <summary>A pod from a template: labels, annotations and spec copied, an owner reference to the controller.</summary>
    public static V1Pod PodFromTemplate(V1PodTemplateSpec template, V1ObjectMeta owner, string generateName, V1OwnerReference ownerRef)
    {
        var t = Kinds.Clone(template);
        return new V1Pod
        {
            Metadata = new V1ObjectMeta
            {
                GenerateName = generateName, NamespaceProperty = owner.NamespaceProperty,
                Labels = t.Metadata?.Labels, Annotations = t.Metadata?.Annotations, Finalizers = t.Metadata?.Finalizers,
                OwnerReferences = [ownerRef],
            },
            Spec = t.Spec,
        };
    }

    /// <summary>Deletion order: unassigned, then pending/unknown, not ready, recently ready, youngest.</summary>
    static IEnumerable<V1Pod> RankForDeletion(List<V1Pod> pods) => pods
        .OrderBy(p => string.IsNullOrEmpty(p.Spec?.NodeName) ? 0 : 1)
        .ThenBy(p => p.Status?.Phase switch { "Pending" => 0, "Unknown" => 1, "Running" => 2, _ => 0 })
        .ThenBy(p => PodConditions.IsReady(p) ? 1 : 0)
        .ThenByDescending(p => p.Metadata.CreationTimestamp ?? DateTime.MinValue);

    async Task DeletePodsAsync(V1ReplicaSet rs, string key, List<V1Pod> victims, CancellationToken ct)
    {
        _exp.Expect(key, 0, victims.Count);
        foreach (var p in victims)
        {
            try
            {
                await _client.DeleteAsync<V1Pod>(p.Metadata.NamespaceProperty, p.Metadata.Name, new DeleteOptions(Uid: p.Metadata.Uid), ct).ConfigureAwait(false);
                _events.Record(rs, "Normal", "SuccessfulDelete", $"Deleted pod: {p.Metadata.Name}");
            }
            catch (ClusterException e) when (e.Kind is ClusterErrorKind.NotFound or ClusterErrorKind.Conflict) { _exp.Lower(key, 0, 1); }
        }
    }

    async Task UpdateStatusAsync(V1ReplicaSet rs, string key, List<V1Pod> owned, LabelSelectorMatcher selector, CancellationToken ct)
    {
        var active = owned.Where(Owners.IsActivePod).ToList();
        var templateLabels = LabelSelectorMatcher.From(new V1LabelSelector { MatchLabels = rs.Spec.Template?.Metadata?.Labels ?? new Dictionary<string, string>() });
        int minReady = rs.Spec.MinReadySeconds ?? 0;
        var now = DateTime.UtcNow;
        int ready = 0, available = 0, fully = 0;
        TimeSpan? recheck = null;
        foreach (var p in active)
        {
            if (templateLabels.Matches(p.Metadata.Labels)) fully++;
            if (!PodConditions.IsReady(p)) continue;
            ready++;
            var since = PodConditions.Get(p.Status, "Ready")?.LastTransitionTime ?? now;
            var left = since.AddSeconds(minReady) - now;
            if (minReady == 0 || left <= TimeSpan.Zero) available++;
            else if (recheck is null || left < recheck) recheck = left;
        }
        var st = rs.Status ?? new V1ReplicaSetStatus();
        if (st.Replicas == active.Count && st.ReadyReplicas == ready && st.AvailableReplicas == available &&
            st.FullyLabeledReplicas == fully && st.ObservedGeneration == rs.Metadata.Generation)
        {
            if (recheck is { } r0) EnqueueAfter(key, r0 + TimeSpan.FromMilliseconds(50));
            return;
        }
        var u = Kinds.Clone(rs);
        u.Status = new V1ReplicaSetStatus
        {
            Replicas = active.Count, ReadyReplicas = ready, AvailableReplicas = available, FullyLabeledReplicas = fully,
            ObservedGeneration = rs.Metadata.Generation, Conditions = st.Conditions,
        };
        u.Metadata.ResourceVersion = null;
        try { await _client.UpdateStatusAsync(u, ct).ConfigureAwait(false); }
        catch (ClusterException e) when (e.Kind == ClusterErrorKind.NotFound) { }
        if (recheck is { } r) EnqueueAfter(key, r + TimeSpan.FromMilliseconds(50));
    }
}
