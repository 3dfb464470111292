using Berth.Cluster.Client;
using Berth.Cluster.Controllers.Runtime;
using k8s;
using k8s.Models;

namespace Berth.Cluster.Controllers;

/// <summary>
/// Empties namespaces that are being deleted, as kube's namespace controller does: the API server
/// puts a deleted namespace in phase Terminating (it keeps spec.finalizers ["kubernetes"]) and
/// refuses new content in it; this controller deletes every namespaced object in it (background
/// propagation; pods on nodes go through graceful deletion and their kubelets remove them), checks
/// again until nothing is left, and then removes the "kubernetes" finalizer through
/// namespaces/{name}/finalize, which lets the namespace go.
/// </summary>
public sealed class NamespaceController : Controller
{
    public const string Finalizer = "kubernetes";
    readonly IClusterClient _client;
    readonly Informer<V1Namespace> _ns;
    public override string Name => "namespace-controller";
    /// <summary>How long to wait before looking again at a namespace whose content is still going.</summary>
    public TimeSpan RecheckDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Every namespaced kind this server serves (one line per kind).</summary>
    static readonly Func<IClusterClient, string, CancellationToken, Task<int>>[] Purges =
    [
        PurgeAsync<V1Deployment>, PurgeAsync<V1StatefulSet>, PurgeAsync<V1DaemonSet>, PurgeAsync<V1CronJob>, PurgeAsync<V1Job>,
        PurgeAsync<V1ReplicaSet>, PurgeAsync<V1Pod>, PurgeAsync<V1Service>, PurgeAsync<V1Endpoints>, PurgeAsync<V1EndpointSlice>,
        PurgeAsync<V1ConfigMap>, PurgeAsync<V1Secret>, PurgeAsync<V1ServiceAccount>, PurgeAsync<V1Lease>, PurgeAsync<Corev1Event>,
    ];

    public NamespaceController(InformerFactory f)
    {
        _client = f.Client;
        _ns = f.For<V1Namespace>();
        _ns.AddHandler(new InformerHandler<V1Namespace>(Changed, (_, n) => Changed(n)));
    }

    void Changed(V1Namespace n)
    {
        if (n.Metadata.DeletionTimestamp is not null) Enqueue(n.Metadata);
    }

    protected override async Task ReconcileAsync(string key, CancellationToken ct)
    {
        var ns = _ns.Get(key);
        if (ns?.Metadata.DeletionTimestamp is null || ns.Spec?.Finalizers?.Contains(Finalizer) != true) return;
        var name = ns.Metadata.Name;
        var remaining = 0;
        foreach (var purge in Purges) remaining += await purge(_client, name, ct).ConfigureAwait(false);
        if (remaining > 0)
        {
            EnqueueAfter(key, RecheckDelay);
            return;
        }
        var done = Kinds.Clone(ns);
        done.Spec.Finalizers = [.. ns.Spec.Finalizers.Where(f => f != Finalizer)];
        await _client.FinalizeNamespaceAsync(done, ct).ConfigureAwait(false);
    }

    /// <summary>Deletes what is not yet being deleted; returns how many objects of this kind are still there.</summary>
    static async Task<int> PurgeAsync<T>(IClusterClient client, string ns, CancellationToken ct) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var list = await client.ListAsync<T>(ns, ct).ConfigureAwait(false);
        foreach (var o in list.Items)
        {
            if (o.Metadata.DeletionTimestamp is not null) continue;
            try { await client.DeleteAsync<T>(ns, o.Metadata.Name, new DeleteOptions(PropagationPolicy.Background, o.Metadata.Uid), ct).ConfigureAwait(false); }
            catch (ClusterException e) when (e.Kind is ClusterErrorKind.NotFound or ClusterErrorKind.Conflict) { }
        }
        return list.Items.Count;
    }
}
