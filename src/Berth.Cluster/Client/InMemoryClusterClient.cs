using System.Runtime.CompilerServices;
using System.Threading.Channels;
using k8s;
using k8s.Models;

namespace Berth.Cluster.Client;

/// <summary>
/// A complete in-process implementation of <see cref="IClusterClient"/> for tests and benchmarks: one
/// global resourceVersion counter, a revision log per kind that backs watch (replay from any retained
/// version, Gone after compaction), optimistic concurrency, spec/status separation, generation,
/// finalizers and deletionTimestamp, propagation finalizers (orphan, foregroundDeletion) and pods/binding.
/// Stored objects are immutable: every write stores a fresh copy, reads hand out copies, watch events
/// share the stored copy. Namespaces are not required to exist.
/// </summary>
public sealed class InMemoryClusterClient : IClusterClient
{
    readonly Lock _lock = new();
    readonly Dictionary<Type, KindStore> _stores = [];
    long _rv;
    readonly int _maxLog;
    readonly TimeProvider _time;

    public InMemoryClusterClient(int maxLogEvents = 2_000_000, TimeProvider? time = null)
    {
        _maxLog = maxLogEvents;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Number of writes so far (the current resourceVersion).</summary>
    public long ResourceVersion { get { lock (_lock) return _rv; } }

    sealed class KindStore(ResourceKind kind)
    {
        public readonly ResourceKind Kind = kind;
        public readonly Dictionary<string, object> Items = [];
        public readonly List<(long Rv, WatchEventType Type, object Obj)> Log = [];
        public long CompactedRv;
        public readonly List<Watcher> Watchers = [];
    }

    sealed class Watcher(string? ns, Channel<(WatchEventType, object)> ch)
    {
        public readonly string? Ns = ns;
        public readonly Channel<(WatchEventType, object)> Channel = ch;
    }

    KindStore Store(ResourceKind k)
    {
        if (!_stores.TryGetValue(k.Type, out var s)) _stores[k.Type] = s = new KindStore(k);
        return s;
    }

    static string KeyOf(ResourceKind k, string? ns, string name) => k.Namespaced ? (ns ?? "") + "/" + name : name;

    static V1ObjectMeta Meta(object o) => ((IMetadata<V1ObjectMeta>)o).Metadata;

    public ValueTask<T?> GetAsync<T>(string? ns, string name, CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var k = Kinds.Of<T>();
        object? o;
        lock (_lock) Store(k).Items.TryGetValue(KeyOf(k, ns, name), out o);
        return ValueTask.FromResult(o is null ? null : (T)Kinds.CloneObject(k, o));
    }

    public ValueTask<ObjectList<T>> ListAsync<T>(string? ns = null, CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var k = Kinds.Of<T>();
        List<object> snap;
        long rv;
        lock (_lock)
        {
            var s = Store(k);
            snap = new List<object>(s.Items.Count);
            foreach (var o in s.Items.Values)
                if (ns is null || Meta(o).NamespaceProperty == ns) snap.Add(o);
            rv = _rv;
        }
        var items = new List<T>(snap.Count);
        foreach (var o in snap) items.Add((T)Kinds.CloneObject(k, o));
        return ValueTask.FromResult(new ObjectList<T>(items, rv.ToString()));
    }

    public async IAsyncEnumerable<WatchEvent<T>> WatchAsync<T>(string? ns, string resourceVersion, [EnumeratorCancellation] CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var k = Kinds.Of<T>();
        var from = string.IsNullOrEmpty(resourceVersion) ? -1 : long.Parse(resourceVersion);
        var ch = Channel.CreateUnbounded<(WatchEventType, object)>(new UnboundedChannelOptions { SingleReader = true });
        var w = new Watcher(ns, ch);
        KindStore s;
        lock (_lock)
        {
            s = Store(k);
            if (from < 0) from = _rv;
            if (from < s.CompactedRv)
                throw new ClusterException(ClusterErrorKind.Gone, $"too old resource version: {from} ({s.CompactedRv})");
            // Replay what happened after `from` (the log is ordered by rv), then go live.
            int i = LowerBound(s.Log, from + 1);
            for (; i < s.Log.Count; i++)
            {
                var e = s.Log[i];
                if (ns is null || Meta(e.Obj).NamespaceProperty == ns) ch.Writer.TryWrite((e.Type, e.Obj));
            }
            s.Watchers.Add(w);
        }
        try
        {
            while (await ch.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
                while (ch.Reader.TryRead(out var e))
                    yield return new WatchEvent<T>(e.Item1, (T)e.Item2);
        }
        finally
        {
            lock (_lock) s.Watchers.Remove(w);
        }
    }

    static int LowerBound(List<(long Rv, WatchEventType, object)> log, long rv)
    {
        int lo = 0, hi = log.Count;
        while (lo < hi) { int mid = (lo + hi) >>> 1; if (log[mid].Rv < rv) lo = mid + 1; else hi = mid; }
        return lo;
    }

    /// <summary>Drops the revision log up to <paramref name="rv"/>: watches from older versions get Gone.</summary>
    public void Compact(long rv)
    {
        lock (_lock)
            foreach (var s in _stores.Values)
            {
                int n = LowerBound(s.Log, rv + 1);
                s.Log.RemoveRange(0, n);
                s.CompactedRv = Math.Max(s.CompactedRv, rv);
            }
    }

    // Must hold _lock. Stores `obj` (already a private copy) under a new resourceVersion and tells watchers.
    void Commit(KindStore s, string key, object obj, WatchEventType type)
    {
        var rv = ++_rv;
        Meta(obj).ResourceVersion = rv.ToString();
        if (type == WatchEventType.Deleted) s.Items.Remove(key); else s.Items[key] = obj;
        s.Log.Add((rv, type, obj));
        if (s.Log.Count > _maxLog)
        {
            int drop = s.Log.Count / 2;
            s.CompactedRv = s.Log[drop - 1].Rv;
            s.Log.RemoveRange(0, drop);
        }
        var ns = Meta(obj).NamespaceProperty;
        foreach (var w in s.Watchers)
            if (w.Ns is null || w.Ns == ns) w.Channel.Writer.TryWrite((type, obj));
    }

    static readonly char[] NameChars = "bcdfghjklmnpqrstvwxz2456789".ToCharArray();

    public ValueTask<T> CreateAsync<T>(T obj, CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var k = Kinds.Of<T>();
        var copy = (T)Kinds.CloneObject(k, obj);
        var m = copy.Metadata ?? throw ClusterException.Invalid(k, null, "metadata: Required value");
        if (string.IsNullOrEmpty(m.Name))
        {
            if (string.IsNullOrEmpty(m.GenerateName)) throw ClusterException.Invalid(k, null, "metadata.name: Required value: name or generateName is required");
            Span<char> sfx = stackalloc char[5];
            for (int i = 0; i < 5; i++) sfx[i] = NameChars[Random.Shared.Next(NameChars.Length)];
            m.Name = m.GenerateName + new string(sfx);
        }
        if (k.Namespaced && string.IsNullOrEmpty(m.NamespaceProperty)) throw ClusterException.Invalid(k, m.Name, "metadata.namespace: Required value");
        if (!k.Namespaced) m.NamespaceProperty = null;
        copy.ApiVersion = k.ApiVersion;
        copy.Kind = k.Kind;
        m.Uid = Guid.NewGuid().ToString();
        m.CreationTimestamp = _time.GetUtcNow().UtcDateTime;
        m.DeletionTimestamp = null;
        if (k.GetSpec is not null) m.Generation = 1;
        lock (_lock)
        {
            var s = Store(k);
            var key = KeyOf(k, m.NamespaceProperty, m.Name);
            if (s.Items.ContainsKey(key)) throw ClusterException.AlreadyExists(k, m.NamespaceProperty, m.Name);
            Commit(s, key, copy, WatchEventType.Added);
        }
        return ValueTask.FromResult((T)Kinds.CloneObject(k, copy));
    }

    public ValueTask<T> UpdateAsync<T>(T obj, CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta>
        => ValueTask.FromResult(Update(obj, statusOnly: false));

    public ValueTask<T> UpdateStatusAsync<T>(T obj, CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta>
        => ValueTask.FromResult(Update(obj, statusOnly: true));

    T Update<T>(T obj, bool statusOnly) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var k = Kinds.Of<T>();
        var incoming = (T)Kinds.CloneObject(k, obj);
        var m = incoming.Metadata ?? throw ClusterException.Invalid(k, null, "metadata: Required value");
        lock (_lock)
        {
            var s = Store(k);
            var key = KeyOf(k, m.NamespaceProperty, m.Name);
            if (!s.Items.TryGetValue(key, out var cur)) throw ClusterException.NotFound(k, m.NamespaceProperty, m.Name);
            var cm = Meta(cur);
            if (!string.IsNullOrEmpty(m.ResourceVersion) && m.ResourceVersion != cm.ResourceVersion)
                throw ClusterException.Conflict(k, m.NamespaceProperty, m.Name);
            object next;
            if (statusOnly)
            {
                if (!k.HasStatus) throw ClusterException.Invalid(k, m.Name, "the resource has no status subresource");
                next = Kinds.CloneObject(k, cur);
                k.SetStatus!(next, k.GetStatus!(incoming));
            }
            else
            {
                next = incoming;
                if (k.HasStatus) k.SetStatus!(next, k.GetStatus!(Kinds.CloneObject(k, cur)));
                var nm = Meta(next);
                nm.Uid = cm.Uid;
                nm.CreationTimestamp = cm.CreationTimestamp;
                nm.DeletionTimestamp = cm.DeletionTimestamp;
                nm.Generation = cm.Generation;
                if (Kinds.SpecChanged(k, cur, next)) nm.Generation = (cm.Generation ?? 0) + 1;
                ((IKubernetesObject)next).ApiVersion = k.ApiVersion;
                ((IKubernetesObject)next).Kind = k.Kind;
                if (nm.DeletionTimestamp is not null && (nm.Finalizers is null || nm.Finalizers.Count == 0))
                {
                    Commit(s, key, next, WatchEventType.Deleted);
                    return (T)Kinds.CloneObject(k, next);
                }
            }
            Commit(s, key, next, WatchEventType.Modified);
            return (T)Kinds.CloneObject(k, next);
        }
    }

    public ValueTask DeleteAsync<T>(string? ns, string name, DeleteOptions? options = null, CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var k = Kinds.Of<T>();
        lock (_lock)
        {
            var s = Store(k);
            var key = KeyOf(k, ns, name);
            if (!s.Items.TryGetValue(key, out var cur)) throw ClusterException.NotFound(k, ns, name);
            var cm = Meta(cur);
            if (options?.Uid is { } uid && uid != cm.Uid)
                throw new ClusterException(ClusterErrorKind.Conflict, $"Precondition failed: UID in precondition: {uid}, UID in object meta: {cm.Uid}");
            if (options?.ResourceVersion is { } rv && rv != cm.ResourceVersion) throw ClusterException.Conflict(k, ns, name);
            var finalizer = options?.Propagation switch
            {
                PropagationPolicy.Foreground => "foregroundDeletion",
                PropagationPolicy.Orphan => "orphan",
                _ => null,
            };
            var hasFinalizers = cm.Finalizers is { Count: > 0 } || cur is V1Namespace { Spec.Finalizers.Count: > 0 };
            if (finalizer is null && !hasFinalizers)
            {
                var gone = Kinds.CloneObject(k, cur);
                Commit(s, key, gone, WatchEventType.Deleted);
                return ValueTask.CompletedTask;
            }
            var next = Kinds.CloneObject(k, cur);
            var nm = Meta(next);
            nm.DeletionTimestamp ??= _time.GetUtcNow().UtcDateTime;
            nm.DeletionGracePeriodSeconds ??= 0;
            if (next is V1Namespace terminating) (terminating.Status ??= new V1NamespaceStatus()).Phase = "Terminating";
            if (finalizer is not null)
            {
                nm.Finalizers ??= [];
                if (!nm.Finalizers.Contains(finalizer)) nm.Finalizers.Add(finalizer);
            }
            Commit(s, key, next, WatchEventType.Modified);
        }
        return ValueTask.CompletedTask;
    }

    public ValueTask<V1Namespace> FinalizeNamespaceAsync(V1Namespace ns, CancellationToken ct = default)
    {
        var k = Kinds.Of<V1Namespace>();
        lock (_lock)
        {
            var s = Store(k);
            var name = ns.Metadata?.Name ?? throw ClusterException.Invalid(k, null, "metadata.name: Required value");
            if (!s.Items.TryGetValue(name, out var cur)) throw ClusterException.NotFound(k, null, name);
            var next = (V1Namespace)Kinds.CloneObject(k, cur);
            next.Spec ??= new V1NamespaceSpec();
            next.Spec.Finalizers = ns.Spec?.Finalizers is { } f ? [.. f] : [];
            var gone = next.Metadata.DeletionTimestamp is not null && next.Spec.Finalizers.Count == 0 && next.Metadata.Finalizers is not { Count: > 0 };
            Commit(s, name, next, gone ? WatchEventType.Deleted : WatchEventType.Modified);
            return ValueTask.FromResult((V1Namespace)Kinds.CloneObject(k, next));
        }
    }

    public ValueTask BindAsync(V1Binding binding, CancellationToken ct = default)
    {
        var k = Kinds.Of<V1Pod>();
        var ns = binding.Metadata?.NamespaceProperty;
        var name = binding.Metadata?.Name ?? throw ClusterException.Invalid(k, null, "binding metadata.name: Required value");
        var node = binding.Target?.Name;
        if (string.IsNullOrEmpty(node)) throw ClusterException.Invalid(k, name, "target.name: Required value");
        lock (_lock)
        {
            var s = Store(k);
            var key = KeyOf(k, ns, name);
            if (!s.Items.TryGetValue(key, out var cur)) throw ClusterException.NotFound(k, ns, name);
            var pod = (V1Pod)cur;
            if (binding.Metadata!.Uid is { Length: > 0 } uid && uid != pod.Metadata.Uid)
                throw new ClusterException(ClusterErrorKind.Conflict, $"Precondition failed: UID in precondition: {uid}, UID in object meta: {pod.Metadata.Uid}");
            if (!string.IsNullOrEmpty(pod.Spec?.NodeName))
                throw new ClusterException(ClusterErrorKind.Conflict, $"Operation cannot be fulfilled on pods/binding \"{name}\": pod {name} is already assigned to node \"{pod.Spec.NodeName}\"");
            if (pod.Metadata.DeletionTimestamp is not null)
                throw new ClusterException(ClusterErrorKind.Conflict, $"Operation cannot be fulfilled on pods/binding \"{name}\": pod {name} is being deleted, cannot be assigned to a host");
            var next = (V1Pod)Kinds.CloneObject(k, pod);
            next.Spec!.NodeName = node;
            next.Status ??= new V1PodStatus();
            PodConditions.Set(next.Status, "PodScheduled", "True", null, null, _time.GetUtcNow().UtcDateTime);
            Commit(s, key, next, WatchEventType.Modified);
        }
        return ValueTask.CompletedTask;
    }
}

/// <summary>Condition helpers for pod status (the API server's and the scheduler's shared use).</summary>
public static class PodConditions
{
    /// <summary>Sets or replaces a condition; lastTransitionTime moves only when the status changes. Returns true if anything changed.</summary>
    public static bool Set(V1PodStatus status, string type, string value, string? reason, string? message, DateTime now)
    {
        status.Conditions ??= [];
        foreach (var c in status.Conditions)
        {
            if (c.Type != type) continue;
            if (c.Status == value && c.Reason == reason && c.Message == message) return false;
            if (c.Status != value) c.LastTransitionTime = now;
            c.Status = value; c.Reason = reason; c.Message = message; c.LastProbeTime = null;
            return true;
        }
        status.Conditions.Add(new V1PodCondition { Type = type, Status = value, Reason = reason, Message = message, LastTransitionTime = now });
        return true;
    }

    public static V1PodCondition? Get(V1PodStatus? status, string type)
    {
        if (status?.Conditions is null) return null;
        foreach (var c in status.Conditions) if (c.Type == type) return c;
        return null;
    }

    public static bool IsReady(V1Pod p) => Get(p.Status, "Ready")?.Status == "True";
}
