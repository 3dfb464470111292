using Berth.Cluster.Client;
using k8s;
using k8s.Models;

namespace Berth.Cluster.Controllers.Runtime;

/// <summary>Callbacks of an informer; run on the informer's own loop, in event order. Objects are shared: never mutate.</summary>
public interface IInformerHandler<in T>
{
    void OnAdd(T obj);
    void OnUpdate(T oldObj, T newObj);
    void OnDelete(T obj);
}

/// <summary>An <see cref="IInformerHandler{T}"/> made of delegates.</summary>
public sealed class InformerHandler<T>(Action<T>? add = null, Action<T, T>? update = null, Action<T>? delete = null) : IInformerHandler<T>
{
    public void OnAdd(T obj) => add?.Invoke(obj);
    public void OnUpdate(T oldObj, T newObj) => update?.Invoke(oldObj, newObj);
    public void OnDelete(T obj) => delete?.Invoke(obj);
}

/// <summary>
/// List + watch of one kind into a local, indexed cache (client-go's shared informer). The cache holds
/// the objects the watch delivered; readers get those shared objects and must clone before changing
/// them (<see cref="Kinds.Clone{T}"/>). When the watch ends or its version is compacted (Gone), the
/// informer relists and reports the difference as adds, updates and deletes.
/// </summary>
public sealed class Informer<T> where T : class, IKubernetesObject<V1ObjectMeta>
{
    readonly IClusterClient _client;
    readonly string? _ns;
    readonly Lock _lock = new();
    readonly Dictionary<string, T> _items = [];
    readonly Dictionary<string, Func<T, string?>> _indexFuncs = [];
    readonly Dictionary<string, Dictionary<string, HashSet<string>>> _indices = [];
    readonly List<IInformerHandler<T>> _handlers = [];
    readonly TaskCompletionSource _synced = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Informer(IClusterClient client, string? ns = null) { _client = client; _ns = ns; }

    public bool HasSynced => _synced.Task.IsCompleted;
    public Task WaitForSyncAsync(CancellationToken ct) => _synced.Task.WaitAsync(ct);

    /// <summary>Registers a handler; call before <see cref="RunAsync"/>.</summary>
    public void AddHandler(IInformerHandler<T> h) { lock (_lock) _handlers.Add(h); }

    /// <summary>An index of one value per object (null = not indexed), e.g. pods by spec.nodeName. Call before <see cref="RunAsync"/>.</summary>
    public void AddIndex(string name, Func<T, string?> fn) { lock (_lock) { _indexFuncs[name] = fn; _indices[name] = []; } }

    public T? Get(string key) { lock (_lock) return _items.GetValueOrDefault(key); }
    public T? Get(string? ns, string name) => Get(string.IsNullOrEmpty(ns) ? name : ns + "/" + name);

    public List<T> List()
    {
        lock (_lock) return [.. _items.Values];
    }

    public List<T> List(string? ns)
    {
        if (ns is null) return List();
        var r = new List<T>();
        lock (_lock) foreach (var o in _items.Values) if (o.Metadata.NamespaceProperty == ns) r.Add(o);
        return r;
    }

    public List<T> ByIndex(string index, string value)
    {
        var r = new List<T>();
        lock (_lock)
            if (_indices[index].TryGetValue(value, out var keys))
                foreach (var k in keys) r.Add(_items[k]);
        return r;
    }

    public int Count { get { lock (_lock) return _items.Count; } }

    /// <summary>Lists, then watches until cancelled; relists after a Gone or a broken watch.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var list = await _client.ListAsync<T>(_ns, ct).ConfigureAwait(false);
                Replace(list.Items);
                _synced.TrySetResult();
                var rv = list.ResourceVersion;
                await foreach (var e in _client.WatchAsync<T>(_ns, rv, ct).ConfigureAwait(false))
                    Apply(e.Type, e.Object);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
            catch (ClusterException ex) when (ex.Kind == ClusterErrorKind.Gone) { /* relist */ }
            catch (Exception) when (!ct.IsCancellationRequested)
            {
                try { await Task.Delay(200, ct).ConfigureAwait(false); } catch (OperationCanceledException) { return; }
            }
        }
    }

    void Replace(IReadOnlyList<T> items)
    {
        var seen = new HashSet<string>();
        foreach (var o in items)
        {
            var key = Kinds.Key(o.Metadata);
            seen.Add(key);
            Apply(WatchEventType.Added, o);
        }
        List<T> gone = [];
        lock (_lock) foreach (var (k, v) in _items) if (!seen.Contains(k)) gone.Add(v);
        foreach (var o in gone) Apply(WatchEventType.Deleted, o);
    }

    void Apply(WatchEventType type, T obj)
    {
        if (type == WatchEventType.Bookmark) return;
        var key = Kinds.Key(obj.Metadata);
        T? old;
        IInformerHandler<T>[] handlers;
        lock (_lock)
        {
            _items.TryGetValue(key, out old);
            if (old is not null) Unindex(key, old);
            if (type == WatchEventType.Deleted) _items.Remove(key);
            else { _items[key] = obj; Index(key, obj); }
            handlers = [.. _handlers];
        }
        foreach (var h in handlers)
        {
            if (type == WatchEventType.Deleted) { if (old is not null) h.OnDelete(obj); }
            else if (old is null) h.OnAdd(obj);
            else if (!ReferenceEquals(old, obj) && old.Metadata.ResourceVersion != obj.Metadata.ResourceVersion) h.OnUpdate(old, obj);
        }
    }

    void Index(string key, T obj)
    {
        foreach (var (name, fn) in _indexFuncs)
            if (fn(obj) is { } v)
            {
                var idx = _indices[name];
                if (!idx.TryGetValue(v, out var set)) idx[v] = set = [];
                set.Add(key);
            }
    }

    void Unindex(string key, T obj)
    {
        foreach (var (name, fn) in _indexFuncs)
            if (fn(obj) is { } v && _indices[name].TryGetValue(v, out var set))
            {
                set.Remove(key);
                if (set.Count == 0) _indices[name].Remove(v);
            }
    }
}
