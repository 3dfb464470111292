using Berth.Cluster.Client;
using Berth.Cluster.Controllers.Runtime;
using k8s;
using k8s.Models;

namespace Berth.Cluster.Controllers;

/// <summary>
/// ownerReference garbage collection for the registered kinds: a dependent whose owners are all
/// gone is deleted (background cascade); an owner deleted with propagationPolicy=Foreground keeps its
/// "foregroundDeletion" finalizer until its dependents are gone; with Orphan, its dependents lose the
/// ownerReference and the "orphan" finalizer is then removed. An owner missing from the cache is
/// looked up live before anything is deleted, so a slow informer never causes a wrong deletion.
/// </summary>
public sealed class GarbageCollector : Controller
{
    readonly IClusterClient _client;
    readonly Dictionary<string, Kind> _kinds = [];          // by Kind name ("ReplicaSet")
    public override string Name => "garbage-collector";
    const string OwnerIndex = "owner-uid";

    sealed class Kind
    {
        public required string Name;
        public required Func<string, IMetadata<V1ObjectMeta>?> Get;                 // by cache key
        public required Func<string, List<IMetadata<V1ObjectMeta>>> ByOwner;        // by owner uid
        public required Func<string?, string, CancellationToken, Task<V1ObjectMeta?>> Live;
        public required Func<string?, string, DeleteOptions, CancellationToken, Task> Delete;
        public required Func<IMetadata<V1ObjectMeta>, CancellationToken, Task> Update;
        public required Func<IMetadata<V1ObjectMeta>, IMetadata<V1ObjectMeta>> Clone;
    }

    public GarbageCollector(InformerFactory f)
    {
        _client = f.Client;
        Watch<V1Pod>(f); Watch<V1ReplicaSet>(f); Watch<V1Deployment>(f); Watch<V1DaemonSet>(f);
        Watch<V1StatefulSet>(f); Watch<V1Job>(f); Watch<V1CronJob>(f); Watch<V1EndpointSlice>(f);
        Watch<V1ConfigMap>(f); Watch<V1Secret>(f); Watch<V1Service>(f);
    }

    void Watch<T>(InformerFactory f) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var k = Kinds.Of<T>();
        var inf = f.For<T>();
        inf.AddIndex(OwnerIndex + "/" + k.Kind, o => o.Metadata?.OwnerReferences is { Count: > 0 } r ? r[0].Uid : null);
        _kinds[k.Kind] = new Kind
        {
            Name = k.Kind,
            Get = key => inf.Get(key),
            ByOwner = uid =>
            {
                var l = new List<IMetadata<V1ObjectMeta>>();
                foreach (var o in inf.ByIndex(OwnerIndex + "/" + k.Kind, uid)) l.Add(o);
                return l;
            },
            Live = async (ns, name, ct) => (await _client.GetAsync<T>(k.Namespaced ? ns : null, name, ct).ConfigureAwait(false))?.Metadata,
            Delete = (ns, name, opts, ct) => _client.DeleteAsync<T>(ns, name, opts, ct).AsTask(),
            Update = (o, ct) => _client.UpdateAsync((T)o, ct).AsTask(),
            Clone = o => Kinds.Clone((T)o),
        };
        inf.AddHandler(new InformerHandler<T>(o => Enqueue(k.Kind, o), (_, o) => Enqueue(k.Kind, o), o => OwnerGone(o)));
    }

    void Enqueue(string kind, IMetadata<V1ObjectMeta> o)
    {
        // Only an object with owners, or one being deleted with the orphan/foreground finalizers, has
        // anything to reconcile here: a pod without owners (the scheduler's 50,000 bindings) is no work item.
        if (HasWork(o.Metadata)) Queue.Add(kind + "|" + Kinds.Key(o.Metadata));
        // Dependents must look again when their owner starts or finishes being deleted.
        if (o.Metadata.DeletionTimestamp is not null) OwnerGone(o);
    }

    /// <summary>What <see cref="ReconcileAsync"/> acts on: ownerReferences, or a deletion held by the orphan/foregroundDeletion finalizer.</summary>
    internal static bool HasWork(V1ObjectMeta m) =>
        m.OwnerReferences is { Count: > 0 } ||
        (m.DeletionTimestamp is not null && m.Finalizers is { Count: > 0 } f && (f.Contains("orphan") || f.Contains("foregroundDeletion")));

    void OwnerGone(IMetadata<V1ObjectMeta> o)
    {
        foreach (var k in _kinds.Values)
            foreach (var d in k.ByOwner(o.Metadata.Uid)) Queue.Add(k.Name + "|" + Kinds.Key(d.Metadata));
    }

    List<(Kind Kind, IMetadata<V1ObjectMeta> Obj)> Dependents(string uid)
    {
        var r = new List<(Kind, IMetadata<V1ObjectMeta>)>();
        foreach (var k in _kinds.Values)
            foreach (var d in k.ByOwner(uid)) r.Add((k, d));
        return r;
    }

    protected override async Task ReconcileAsync(string item, CancellationToken ct)
    {
        var bar = item.IndexOf('|');
        if (!_kinds.TryGetValue(item[..bar], out var kind)) return;
        var key = item[(bar + 1)..];
        var obj = kind.Get(key);
        if (obj is null) return;
        var m = obj.Metadata;

        if (m.DeletionTimestamp is not null && m.Finalizers is { Count: > 0 } fins)
        {
            if (fins.Contains("orphan"))
            {
                foreach (var (dk, dep) in Dependents(m.Uid))
                {
                    var c = dk.Clone(dep);
                    c.Metadata.OwnerReferences = c.Metadata.OwnerReferences.Where(r => r.Uid != m.Uid).ToList();
                    c.Metadata.ResourceVersion = null;
                    try { await dk.Update(c, ct).ConfigureAwait(false); } catch (ClusterException e) when (e.Kind == ClusterErrorKind.NotFound) { }
                }
                await RemoveFinalizerAsync(kind, obj, "orphan", ct).ConfigureAwait(false);
                return;
            }
            if (fins.Contains("foregroundDeletion"))
            {
                var deps = Dependents(m.Uid);
                foreach (var (dk, dep) in deps)
                    if (dep.Metadata.DeletionTimestamp is null)
                        await DeleteQuietlyAsync(dk, dep.Metadata, new DeleteOptions(PropagationPolicy.Foreground, Uid: dep.Metadata.Uid), ct).ConfigureAwait(false);
                if (deps.Count == 0) await RemoveFinalizerAsync(kind, obj, "foregroundDeletion", ct).ConfigureAwait(false);
                else EnqueueAfter(item, TimeSpan.FromMilliseconds(200));
                return;
            }
        }

        if (m.OwnerReferences is not { Count: > 0 } refs) return;
        var gone = new List<V1OwnerReference>();
        bool foregroundOwner = false;
        foreach (var r in refs)
        {
            var state = await OwnerStateAsync(r, m.NamespaceProperty, ct).ConfigureAwait(false);
            if (state is null) gone.Add(r);
            else if (state.DeletionTimestamp is not null && state.Finalizers?.Contains("foregroundDeletion") == true && r.BlockOwnerDeletion == true) foregroundOwner = true;
        }
        if (gone.Count > 0)
        {
            // The cached dependent may be stale (e.g. just orphaned): decide on its live ownerReferences.
            var live = await kind.Live(m.NamespaceProperty, m.Name, ct).ConfigureAwait(false);
            if (live is null || live.Uid != m.Uid) return;
            if (live.OwnerReferences is null || !gone.All(g => live.OwnerReferences.Any(r => r.Uid == g.Uid))) return;
        }
        if (gone.Count == refs.Count || foregroundOwner)
        {
            if (m.DeletionTimestamp is null)
                await DeleteQuietlyAsync(kind, m, new DeleteOptions(foregroundOwner ? PropagationPolicy.Foreground : PropagationPolicy.Background, Uid: m.Uid), ct).ConfigureAwait(false);
            return;
        }
        if (gone.Count > 0)
        {
            var c = kind.Clone(obj);
            c.Metadata.OwnerReferences = c.Metadata.OwnerReferences.Where(r => !gone.Any(g => g.Uid == r.Uid)).ToList();
            c.Metadata.ResourceVersion = null;
            await kind.Update(c, ct).ConfigureAwait(false);
        }
    }

    /// <summary>The owner's metadata if it exists with the referenced uid (cache first, then a live read), else null.</summary>
    async Task<V1ObjectMeta?> OwnerStateAsync(V1OwnerReference r, string? ns, CancellationToken ct)
    {
        if (!_kinds.TryGetValue(r.Kind, out var ok)) return new V1ObjectMeta(); // unknown kind: never collect
        var key = Kinds.Of(KindType(r.Kind)).Namespaced && !string.IsNullOrEmpty(ns) ? ns + "/" + r.Name : r.Name;
        var cached = ok.Get(key);
        if (cached is not null && cached.Metadata.Uid == r.Uid) return cached.Metadata;
        var live = await ok.Live(ns, r.Name, ct).ConfigureAwait(false);
        return live is not null && live.Uid == r.Uid ? live : null;
    }

    static Type KindType(string kind)
    {
        foreach (var k in Kinds.All) if (k.Kind == kind) return k.Type;
        throw new NotSupportedException(kind);
    }

    static async Task DeleteQuietlyAsync(Kind k, V1ObjectMeta m, DeleteOptions o, CancellationToken ct)
    {
        try { await k.Delete(m.NamespaceProperty, m.Name, o, ct).ConfigureAwait(false); }
        catch (ClusterException e) when (e.Kind is ClusterErrorKind.NotFound or ClusterErrorKind.Conflict) { }
    }

    static async Task RemoveFinalizerAsync(Kind k, IMetadata<V1ObjectMeta> obj, string finalizer, CancellationToken ct)
    {
        var c = k.Clone(obj);
        c.Metadata.Finalizers = c.Metadata.Finalizers.Where(f => f != finalizer).ToList();
        c.Metadata.ResourceVersion = null;
        try { await k.Update(c, ct).ConfigureAwait(false); } catch (ClusterException e) when (e.Kind == ClusterErrorKind.NotFound) { }
    }
}
