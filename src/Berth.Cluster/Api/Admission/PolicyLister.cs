using System.Text.Json.Nodes;
using Berth.Cluster.Storage;

namespace Berth.Cluster.Api.Admission;

/// <summary>
/// The admission plugins' lister of one namespaced kind (ResourceQuotas or LimitRanges), as kube's plugins
/// read theirs from an informer: the objects by namespace from a list and a watch of the store, so a create
/// in a namespace without any costs no store read. A namespace is answered from here only when the lister
/// is in sync for it; before the first list, after a lagged watch, and after this server wrote such an
/// object in the namespace until the watch has delivered that write (<see cref="Written"/>), the answer
/// is "unknown" and the caller reads the store.
/// </summary>
internal sealed class PolicyLister(IStore store, string keyPrefix) : IDisposable
{
    readonly Lock gate = new();
    readonly Dictionary<string, Dictionary<string, JsonObject>> byNamespace = new(StringComparer.Ordinal);
    // namespaces with a local write the watch has not delivered yet: the write's revision
    readonly Dictionary<string, long> pending = new(StringComparer.Ordinal);
    readonly CancellationTokenSource stop = new();
    Task? running;
    bool synced, stopped;
    long seen;

    /// <summary>
    /// The namespace's objects (shared: do not mutate), an empty list when it has none, or null when the
    /// lister cannot say (not in sync, or a local write in flight): then the store is the answer.
    /// </summary>
    public IReadOnlyCollection<JsonObject>? In(string ns)
    {
        if (running is null) Start();
        lock (gate)
        {
            if (!synced || pending.ContainsKey(ns)) return null;
            return byNamespace.TryGetValue(ns, out var m) ? [.. m.Values] : [];
        }
    }

    /// <summary>This server wrote an object of the kind in <paramref name="ns"/> at <paramref name="revision"/>.</summary>
    public void Written(string ns, long revision)
    {
        lock (gate)
            if (!stopped && revision > seen && (!pending.TryGetValue(ns, out var r) || r < revision)) pending[ns] = revision;
    }

    void Start()
    {
        lock (gate)
        {
            if (running is not null) return;
            running = Task.Run(RunAsync);
        }
    }

    async Task RunAsync()
    {
        var ct = stop.Token;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var list = await store.ListAsync(keyPrefix, ct: ct).ConfigureAwait(false);
                lock (gate)
                {
                    if (stopped) break;
                    byNamespace.Clear();
                    foreach (var e in list.Items) Put(e);
                    Seen(list.Revision);
                    synced = true;
                }
                using var watch = await store.WatchAsync(keyPrefix, list.Revision, ct).ConfigureAwait(false);
                await foreach (var ev in watch.Events.ReadAllAsync(ct).ConfigureAwait(false))
                {
                    lock (gate)
                    {
                        if (stopped) break;
                        if (ev.Type == StoreEventType.Delete)
                        {
                            var (ns, name) = Split(ev.Entry.Key);
                            if (byNamespace.TryGetValue(ns, out var m) && m.Remove(name) && m.Count == 0) byNamespace.Remove(ns);
                        }
                        else Put(ev.Entry);
                        Seen(ev.Revision);
                    }
                }
                break; // the store ended its watches: it is closing
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { break; }
            catch (Exception e) when (e is StoreWatchLaggedException or StoreCompactedException)
            {
                lock (gate) synced = false; // relist
            }
            catch (Exception) { break; } // the store failed or is gone: every lookup reads the store from now on
        }
        lock (gate)
        {
            synced = false;
            stopped = true;
            byNamespace.Clear();
        }
    }

    (string Ns, string Name) Split(string key)
    {
        var rest = key[keyPrefix.Length..];
        var slash = rest.IndexOf('/');
        return slash < 0 ? ("", rest) : (rest[..slash], rest[(slash + 1)..]);
    }

    void Put(StoreEntry e)
    {
        var (ns, name) = Split(e.Key);
        if (!byNamespace.TryGetValue(ns, out var m)) byNamespace[ns] = m = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        m[name] = ApiHandler.Decode(e);
    }

    void Seen(long revision)
    {
        if (revision > seen) seen = revision;
        if (pending.Count == 0) return;
        foreach (var (ns, r) in pending.ToList())
            if (r <= seen) pending.Remove(ns);
    }

    public void Dispose()
    {
        lock (gate)
        {
            stopped = true;
            synced = false;
            byNamespace.Clear();
        }
        stop.Cancel();
    }
}
