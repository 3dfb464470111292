using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Berth.Cluster.Api;
using Berth.Cluster.Storage;
using k8s;
using k8s.Models;

namespace Berth.Cluster.Client;

/// <summary>
/// <see cref="IClusterClient"/> for the scheduler and controllers running inside `berth server`:
/// every call goes through the API handler's own verbs (the code HTTP requests run, minus the
/// transport), so defaulting, validation, uid/creationTimestamp/generation, optimistic concurrency,
/// graceful deletion and finalizers, the status subresource and binding behave exactly as for kubectl.
/// Watches read the store's watch from the given resourceVersion; a compacted version is
/// <see cref="ClusterErrorKind.Gone"/> and a watch that fell too far behind ends with Gone too (the
/// informer relists). Objects cross the seam as JSON (source-generated, AOT-safe); watched and listed
/// objects are decoded once per revision and shared (never mutated by their readers).
/// </summary>
public sealed class LocalClusterClient : IClusterClient
{
    readonly ApiHandler _api;
    readonly IStore _store;
    readonly Dictionary<Type, ResourceType> _types = [];

    public LocalClusterClient(ApiHandler api)
    {
        _api = api;
        _store = api.Store;
        foreach (var k in Kinds.All)
            if (api.Registry.Find(k.Group, k.Version, k.Plural) is { } t) _types[k.Type] = t;
    }

    ResourceType TypeOf(ResourceKind k) =>
        _types.TryGetValue(k.Type, out var t) ? t : throw new NotSupportedException($"{k} is not served by this API server");

    static ApiHandler.Target Target(ResourceType t, string? ns, string? name, string? sub = null) => new(t, t.Namespaced ? ns : null, name, sub);

    static JsonObject ToNode<T>(ResourceKind k, T obj) where T : class =>
        JsonSerializer.SerializeToNode(obj, k.TypeInfo) as JsonObject ?? throw new InvalidOperationException($"{k} did not serialize to an object");

    static T FromNode<T>(ResourceKind k, JsonObject o) where T : class => (T)o.Deserialize(k.TypeInfo)!;

    static T FromEntry<T>(ResourceKind k, StoreEntry e) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var obj = (T)JsonSerializer.Deserialize(e.Value, k.TypeInfo)!;
        obj.Metadata ??= new V1ObjectMeta();
        obj.Metadata.ResourceVersion = e.ModRevision.ToString();
        return obj;
    }

    // Watch events are shared, immutable snapshots (the seam's contract), so the informers of one
    // process (scheduler, controller manager) decode each store entry once between them.
    readonly System.Runtime.CompilerServices.ConditionalWeakTable<StoreEntry, object> _decoded = new();

    T Shared<T>(ResourceKind k, StoreEntry e) where T : class, IKubernetesObject<V1ObjectMeta> =>
        (T)_decoded.GetValue(e, entry => FromEntry<T>(k, entry));

    public async ValueTask<T?> GetAsync<T>(string? ns, string name, CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var k = Kinds.Of<T>();
        var t = TypeOf(k);
        var e = await _store.GetAsync(t.Key(t.Namespaced ? ns : null, name), ct).ConfigureAwait(false);
        return e is null ? null : FromEntry<T>(k, e);
    }

    public async ValueTask<ObjectList<T>> ListAsync<T>(string? ns = null, CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var k = Kinds.Of<T>();
        var t = TypeOf(k);
        var page = await Call(() => _store.ListAsync(t.Prefix(t.Namespaced ? ns : null), ct: ct)).ConfigureAwait(false);
        var items = new List<T>(page.Items.Count);
        foreach (var e in page.Items) items.Add(Listed<T>(k, e));
        SweepListed();
        return new ObjectList<T>(items, page.Revision.ToString());
    }

    // Lists share decoded objects too: the scheduler's and the controllers' informers list the same
    // pods at start (50,000 after a restart), and each would otherwise hold its own copy of every one
    // until the pod next changes. Keyed by (key, revision), held weakly: an object lives as long as a
    // cache holds it.
    readonly Dictionary<(string Key, long Revision), WeakReference<object>> _listed = [];
    int _listedSweepAt = 4096;

    T Listed<T>(ResourceKind k, StoreEntry e) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        lock (_listed)
            if (_listed.TryGetValue((e.Key, e.ModRevision), out var w) && w.TryGetTarget(out var o) && o is T shared) return shared;
        var obj = FromEntry<T>(k, e);
        lock (_listed) _listed[(e.Key, e.ModRevision)] = new WeakReference<object>(obj);
        return obj;
    }

    void SweepListed()
    {
        lock (_listed)
        {
            if (_listed.Count < _listedSweepAt) return;
            foreach (var (key, w) in _listed)
                if (!w.TryGetTarget(out _)) _listed.Remove(key);
            _listed.TrimExcess();
            _listedSweepAt = Math.Max(4096, 2 * _listed.Count);
        }
    }

    public async IAsyncEnumerable<WatchEvent<T>> WatchAsync<T>(string? ns, string resourceVersion, [EnumeratorCancellation] CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var k = Kinds.Of<T>();
        var t = TypeOf(k);
        long from;
        if (string.IsNullOrEmpty(resourceVersion) || resourceVersion == "0") from = _store.CurrentRevision;
        else if (!long.TryParse(resourceVersion, out from) || from < 0)
            throw new ClusterException(ClusterErrorKind.Invalid, $"invalid resourceVersion \"{resourceVersion}\"");
        var watch = await Call(() => _store.WatchAsync(t.Prefix(t.Namespaced ? ns : null), from, ct)).ConfigureAwait(false);
        using (watch)
        {
            var reader = Unbounded(watch.Events, ct);
            while (true)
            {
                try
                {
                    if (!await reader.WaitToReadAsync(ct).ConfigureAwait(false)) yield break;
                }
                catch (StoreWatchLaggedException e) { throw new ClusterException(ClusterErrorKind.Gone, e.Message); }
                while (reader.TryRead(out var ev))
                {
                    var type = ev.Type == StoreEventType.Delete ? WatchEventType.Deleted
                        : ev.Previous is null ? WatchEventType.Added : WatchEventType.Modified;
                    yield return new WatchEvent<T>(type, Shared<T>(k, ev.Entry));
                }
            }
        }
    }

    /// <summary>
    /// The store ends a watch whose reader falls <c>WatchHub.Capacity</c> events behind (a slow HTTP client must
    /// not grow the server's memory). The informers of this process are no such client: when 50,000 bindings
    /// are committed in a few seconds, a busy informer can lag by more than that for a moment, and the relist
    /// that followed (every pod listed and decoded again) cost more than the lag. So an in-process watch is
    /// moved at once into a queue of its own, as fast as the store publishes; its reader catches up later.
    /// </summary>
    static System.Threading.Channels.ChannelReader<StoreEvent> Unbounded(System.Threading.Channels.ChannelReader<StoreEvent> events, CancellationToken ct)
    {
        var queue = System.Threading.Channels.Channel.CreateUnbounded<StoreEvent>(new() { SingleReader = true, SingleWriter = true });
        _ = PumpAsync();
        return queue.Reader;

        async Task PumpAsync()
        {
            try
            {
                while (await events.WaitToReadAsync(ct).ConfigureAwait(false))
                    while (events.TryRead(out var e)) queue.Writer.TryWrite(e);
                queue.Writer.TryComplete();
            }
            catch (Exception e) { queue.Writer.TryComplete(e); }
        }
    }

    public async ValueTask<T> CreateAsync<T>(T obj, CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var k = Kinds.Of<T>();
        var t = TypeOf(k);
        var o = ToNode(k, obj);
        var (created, stored) = await Call(() => _api.CreateStoredAsync(Target(t, obj.Metadata?.NamespaceProperty, null), o, false, ct)).ConfigureAwait(false);
        // from the stored bytes: cheaper than from the tree
        return stored is not null ? FromEntry<T>(k, stored) : FromNode<T>(k, created);
    }

    public async ValueTask CreateOnlyAsync<T>(T obj, CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var k = Kinds.Of<T>();
        var t = TypeOf(k);
        await Call(() => _api.CreateAsync(Target(t, obj.Metadata?.NamespaceProperty, null), ToNode(k, obj), false, ct)).ConfigureAwait(false);
    }

    /// <summary>
    /// For kinds the API server neither defaults nor validates beyond metadata (Events): each object is
    /// stamped (uid, creationTimestamp, apiVersion, kind) and serialized once from the typed data into its
    /// stored form, and all are written concurrently, so they share the store's commits. No JSON tree,
    /// no answer decoded. Other kinds take <see cref="CreateOnlyAsync"/> one by one.
    /// </summary>
    public async ValueTask CreateManyOnlyAsync<T>(IReadOnlyList<T> objs, CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var k = Kinds.Of<T>();
        var t = TypeOf(k);
        var tasks = new Task[objs.Count];
        for (var i = 0; i < objs.Count; i++)
        {
            var o = objs[i];
            if (!ApiHandler.CanCreateBuilt(t)) { tasks[i] = CreateOnlyAsync(o, ct).AsTask(); continue; }
            var m = o.Metadata ?? throw ClusterException.Invalid(k, null, "metadata: Required value");
            if (string.IsNullOrEmpty(m.Name)) throw ClusterException.Invalid(k, null, "metadata.name: Required value");
            o.ApiVersion = k.ApiVersion;
            o.Kind = k.Kind;
            m.Uid = Json.NewUid();
            m.CreationTimestamp = Json.NowSeconds();
            m.ResourceVersion = null;
            if (!t.Namespaced) m.NamespaceProperty = null;
            tasks[i] = Call(() => _api.CreateBuiltAsync(Target(t, m.NamespaceProperty, null), m.Name, JsonSerializer.SerializeToUtf8Bytes(o, k.TypeInfo), ct));
        }
        ClusterException? first = null;
        foreach (var task in tasks)
        {
            try { await task.ConfigureAwait(false); }
            catch (ClusterException e) { first ??= e; }
        }
        if (first is not null) throw first;
    }

    public ValueTask<T> UpdateAsync<T>(T obj, CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta> => Replace(obj, null, ct);

    public ValueTask<T> UpdateStatusAsync<T>(T obj, CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var k = Kinds.Of<T>();
        if (!TypeOf(k).HasStatus) throw ClusterException.Invalid(k, obj.Metadata?.Name, "the resource has no status subresource");
        return Replace(obj, "status", ct);
    }

    async ValueTask<T> Replace<T>(T obj, string? sub, CancellationToken ct) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var k = Kinds.Of<T>();
        var t = TypeOf(k);
        var name = obj.Metadata?.Name ?? throw ClusterException.Invalid(k, null, "metadata.name: Required value");
        var o = ToNode(k, obj);
        var updated = await Call(() => _api.ReplaceAsync(Target(t, obj.Metadata.NamespaceProperty, name, sub), o, false, ct)).ConfigureAwait(false);
        return FromNode<T>(k, updated);
    }

    public async ValueTask DeleteAsync<T>(string? ns, string name, DeleteOptions? options = null, CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var t = TypeOf(Kinds.Of<T>());
        var o = new JsonObject();
        if (options?.Propagation is { } p) o["propagationPolicy"] = p.ToString();
        if (options?.Uid is not null || options?.ResourceVersion is not null)
        {
            var pre = new JsonObject();
            if (options.Uid is not null) pre["uid"] = options.Uid;
            if (options.ResourceVersion is not null) pre["resourceVersion"] = options.ResourceVersion;
            o["preconditions"] = pre;
        }
        await Call(() => _api.DeleteOneAsync(Target(t, ns, name), o, false, ct)).ConfigureAwait(false);
    }

    public async ValueTask BindAsync(V1Binding binding, CancellationToken ct = default)
    {
        var t = TypeOf(Kinds.Of<V1Pod>());
        var name = binding.Metadata?.Name ?? throw ClusterException.Invalid(Kinds.Of<V1Pod>(), null, "binding metadata.name: Required value");
        var o = new JsonObject
        {
            ["apiVersion"] = "v1", ["kind"] = "Binding",
            ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = binding.Metadata.NamespaceProperty, ["uid"] = binding.Metadata.Uid },
            ["target"] = new JsonObject { ["kind"] = binding.Target?.Kind ?? "Node", ["name"] = binding.Target?.Name },
        };
        await Call(() => _api.BindPodAsync(Target(t, binding.Metadata.NamespaceProperty, name), o, false, ct)).ConfigureAwait(false);
    }

    public async ValueTask<V1Namespace> FinalizeNamespaceAsync(V1Namespace ns, CancellationToken ct = default)
    {
        var k = Kinds.Of<V1Namespace>();
        var t = TypeOf(k);
        var o = ToNode(k, ns);
        var done = await Call(() => _api.FinalizeNamespaceAsync(Target(t, null, ns.Metadata.Name, "finalize"), o, ct)).ConfigureAwait(false);
        return FromNode<V1Namespace>(k, done);
    }

    /// <summary>The API's errors in the seam's terms (the same kinds the HTTP edge maps to status codes).</summary>
    static async Task<R> Call<R>(Func<Task<R>> f)
    {
        try { return await f().ConfigureAwait(false); }
        catch (ApiException e) { throw Translate(e); }
        catch (StoreCompactedException e) { throw new ClusterException(ClusterErrorKind.Gone, $"too old resource version: {e.Requested} ({e.Compacted})"); }
        catch (StoreFutureRevisionException e) { throw new ClusterException(ClusterErrorKind.Other, e.Message); }
    }

    static async Task Call(Func<Task> f) => await Call(async () => { await f().ConfigureAwait(false); return 0; }).ConfigureAwait(false);

    internal static ClusterException Translate(ApiException e) => new(e.Code switch
    {
        404 => ClusterErrorKind.NotFound,
        409 when e.Reason == "AlreadyExists" => ClusterErrorKind.AlreadyExists,
        409 => ClusterErrorKind.Conflict,
        410 => ClusterErrorKind.Gone,
        422 => ClusterErrorKind.Invalid,
        403 => ClusterErrorKind.Forbidden,
        _ => ClusterErrorKind.Other,
    }, e.Message);
}
