using Berth.Cluster.Client;
using k8s;
using k8s.Models;

namespace Berth.Cluster.Controllers.Runtime;

/// <summary>One shared informer per kind for all controllers (client-go's SharedInformerFactory).</summary>
public sealed class InformerFactory(IClusterClient client)
{
    readonly Dictionary<Type, object> _informers = [];
    readonly List<Func<CancellationToken, Task>> _runs = [];
    readonly List<Func<CancellationToken, Task>> _syncs = [];
    readonly List<Task> _running = [];

    public IClusterClient Client => client;

    /// <summary>The cluster CA (PEM) the root-ca-cert-publisher hands out; null outside `berth server`.</summary>
    public string? RootCaPem { get; init; }

    public Informer<T> For<T>() where T : class, IKubernetesObject<V1ObjectMeta>
    {
        lock (_informers)
        {
            if (_informers.TryGetValue(typeof(T), out var o)) return (Informer<T>)o;
            var inf = new Informer<T>(client);
            inf.AddIndex(NamespaceIndex, x => x.Metadata?.NamespaceProperty ?? "");
            _informers[typeof(T)] = inf;
            _runs.Add(inf.RunAsync);
            _syncs.Add(inf.WaitForSyncAsync);
            return inf;
        }
    }

    public const string NamespaceIndex = "namespace";

    /// <summary>Starts every informer asked for so far and waits until all have listed.</summary>
    public async Task StartAsync(CancellationToken ct)
    {
        List<Func<CancellationToken, Task>> runs, syncs;
        lock (_informers) { runs = [.. _runs]; syncs = [.. _syncs]; _runs.Clear(); _syncs.Clear(); }
        foreach (var r in runs) _running.Add(Task.Run(() => r(ct), ct));
        foreach (var s in syncs) await s(ct).ConfigureAwait(false);
    }

    public Task StoppedAsync() => Task.WhenAll(_running);
}

/// <summary>
/// A level-triggered controller: informer handlers enqueue keys, workers take a key, reconcile the
/// object's whole state, and retry failures with per-key backoff.
/// </summary>
public abstract class Controller
{
    protected readonly WorkQueue<string> Queue = new();
    public abstract string Name { get; }
    protected virtual int Workers => 2;

    /// <summary>Brings the object named by <paramref name="key"/> to its desired state. Must be idempotent.</summary>
    protected abstract Task ReconcileAsync(string key, CancellationToken ct);

    public void Enqueue(string key) => Queue.Add(key);
    public void Enqueue(V1ObjectMeta m) => Queue.Add(Kinds.Key(m));
    public void EnqueueAfter(string key, TimeSpan delay) => Queue.AddAfter(key, delay);

    /// <summary>Runs the workers until cancelled (start the informers first).</summary>
    public Task RunAsync(CancellationToken ct)
    {
        ct.Register(Queue.ShutDown);
        var ws = new Task[Workers];
        for (int i = 0; i < ws.Length; i++) ws[i] = Task.Run(() => WorkAsync(ct), CancellationToken.None);
        return Task.WhenAll(ws);
    }

    async Task WorkAsync(CancellationToken ct)
    {
        while (true)
        {
            var (key, ok) = await Queue.GetAsync(ct).ConfigureAwait(false);
            if (!ok) return;
            try
            {
                await ReconcileAsync(key, ct).ConfigureAwait(false);
                Queue.Forget(key);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { Queue.Done(key); return; }
            catch (Exception ex)
            {
                LastError = $"{Name} {key}: {ex.Message}";
                Queue.AddRateLimited(key);
            }
            finally { Queue.Done(key); }
        }
    }

    /// <summary>The most recent reconcile failure (for diagnostics and tests).</summary>
    public string? LastError { get; private set; }
}

/// <summary>Owner-reference helpers shared by the controllers.</summary>
public static class Owners
{
    public static V1OwnerReference? ControllerOf(V1ObjectMeta? m)
    {
        if (m?.OwnerReferences is null) return null;
        foreach (var r in m.OwnerReferences) if (r.Controller == true) return r;
        return null;
    }

    public static V1OwnerReference ControllerRef(string apiVersion, string kind, V1ObjectMeta owner) => new()
    {
        ApiVersion = apiVersion, Kind = kind, Name = owner.Name, Uid = owner.Uid, Controller = true, BlockOwnerDeletion = true,
    };

    public static bool IsActivePod(V1Pod p) =>
        p.Status?.Phase is not ("Succeeded" or "Failed") && p.Metadata?.DeletionTimestamp is null;
}
