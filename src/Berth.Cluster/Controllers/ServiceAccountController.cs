using Berth.Cluster.Client;
using Berth.Cluster.Controllers.Runtime;
using k8s.Models;

namespace Berth.Cluster.Controllers;

/// <summary>
/// kube-controller-manager's serviceaccount controller: every active namespace has a ServiceAccount
/// named "default" (made again when deleted). Pods get serviceAccountName "default" at admission; no
/// token is minted or mounted (nothing here runs containers yet).
/// </summary>
public sealed class ServiceAccountController : Controller
{
    public const string DefaultName = "default";
    readonly IClusterClient _client;
    readonly Informer<V1Namespace> _ns;
    readonly Informer<V1ServiceAccount> _sas;
    public override string Name => "serviceaccount-controller";

    public ServiceAccountController(InformerFactory f)
    {
        _client = f.Client;
        _ns = f.For<V1Namespace>();
        _sas = f.For<V1ServiceAccount>();
        _ns.AddHandler(new InformerHandler<V1Namespace>(n => Enqueue(n.Metadata.Name), (_, n) => Enqueue(n.Metadata.Name)));
        _sas.AddHandler(new InformerHandler<V1ServiceAccount>(delete: sa =>
        {
            if (sa.Metadata.Name == DefaultName && sa.Metadata.NamespaceProperty is { } ns) Enqueue(ns);
        }));
    }

    protected override async Task ReconcileAsync(string key, CancellationToken ct)
    {
        var ns = _ns.Get(key);
        if (ns is null || ns.Metadata.DeletionTimestamp is not null || ns.Status?.Phase == "Terminating") return;
        if (_sas.Get(key, DefaultName) is not null) return;
        try
        {
            await _client.CreateAsync(new V1ServiceAccount { Metadata = new V1ObjectMeta { Name = DefaultName, NamespaceProperty = key } }, ct).ConfigureAwait(false);
        }
        // already there (the cache lags), or the namespace started terminating meanwhile
        catch (ClusterException e) when (e.Kind is ClusterErrorKind.AlreadyExists or ClusterErrorKind.Forbidden or ClusterErrorKind.NotFound) { }
    }
}
