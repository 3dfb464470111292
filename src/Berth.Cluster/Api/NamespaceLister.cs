using Berth.Cluster.Storage;

namespace Berth.Cluster.Api;

/// <summary>
/// The NamespaceLifecycle admission check's lister, as kube-apiserver's admission plugin has one: namespaces
/// by name (active or terminating) from a list and a watch of the store, so a create in an active namespace
/// costs no store read. Only a known-active namespace is answered from here; a namespace it does not know
/// or knows as terminating is read from the store (kube's live lookup on a lister miss). This server's own
/// writes to a namespace mark it unknown until the watch has delivered them (<see cref="Written"/>), so
/// after a namespace's delete is acknowledged no create here is admitted on its old state; another
/// server's writes (several servers on one etcd) are seen when the watch delivers them, as with kube's informer.
/// </summary>
internal sealed class NamespaceLister(IStore store, string keyPrefix) : IDisposable
{
    readonly Lock gate = new();
    // by name: the revision the state is from, and whether it is terminating (null: unknown, ask the store)
    readonly Dictionary<string, (long Revision, bool? Terminating)> byName = new(StringComparer.Ordinal);
    readonly CancellationTokenSource stop = new();
    Task? running;
    bool stopped;

    /// <summary>Whether <paramref name="ns"/> is known to exist and not be terminating; false means "ask the store".</summary>
    public bool IsKnownActive(string ns)
    {
        if (running is null) Start();
        lock (gate) return byName.TryGetValue(ns, out var s) && s.Terminating == false;
    }

    /// <summary>This server wrote the namespace at <paramref name="revision"/>: unknown until the watch delivers that write.</summary>
    public void Written(string ns, long revision)
    {
        lock (gate)
            if (!stopped && (!byName.TryGetValue(ns, out var s) || s.Revision < revision)) byName[ns] = (revision, null);
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
                    var listed = new HashSet<string>(StringComparer.Ordinal);
                    foreach (var e in list.Items)
                    {
                        var name = e.Key[keyPrefix.Length..];
                        listed.Add(name);
                        Set(name, e.ModRevision, Terminating(e));
                    }
                    // gone by the list's revision (a newer local write stays marked unknown)
                    foreach (var (name, s) in byName.ToList())
                        if (!listed.Contains(name) && s.Revision <= list.Revision) byName.Remove(name);
                }
                using var watch = await store.WatchAsync(keyPrefix, list.Revision, ct).ConfigureAwait(false);
                await foreach (var ev in watch.Events.ReadAllAsync(ct).ConfigureAwait(false))
                {
                    var name = ev.Entry.Key[keyPrefix.Length..];
                    lock (gate)
                    {
                        if (stopped) break;
                        if (ev.Type == StoreEventType.Delete)
                        {
                            if (!byName.TryGetValue(name, out var s) || s.Revision <= ev.Revision) byName.Remove(name);
                        }
                        else Set(name, ev.Revision, Terminating(ev.Entry));
                    }
                }
                break; // the store ended its watches: it is closing
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { break; }
            catch (Exception e) when (e is StoreWatchLaggedException or StoreCompactedException)
            {
                // the watch fell behind or its history was compacted: forget and relist
                lock (gate) byName.Clear();
            }
            catch (Exception) { break; } // the store failed or is gone: every check reads the store from now on
        }
        lock (gate)
        {
            byName.Clear();
            stopped = true;
        }
    }

    void Set(string name, long revision, bool terminating)
    {
        if (!byName.TryGetValue(name, out var s) || s.Revision <= revision) byName[name] = (revision, terminating);
    }

    static bool Terminating(StoreEntry e) => ApiHandler.Decode(e).Str("metadata.deletionTimestamp") is not null;

    public void Dispose()
    {
        lock (gate)
        {
            stopped = true;
            byName.Clear();
        }
        stop.Cancel();
    }
}
