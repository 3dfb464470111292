using Berth.Cluster.Client;
using Berth.Cluster.Controllers.Runtime;
using k8s.Models;

namespace Berth.Cluster.Controllers;

/// <summary>
/// kube-controller-manager's root-ca-cert-publisher: every active namespace has the ConfigMap
/// kube-root-ca.crt holding the cluster CA (ca.crt), made again when deleted and put back when changed.
/// </summary>
public sealed class RootCaPublisher : Controller
{
    public const string ConfigMapName = "kube-root-ca.crt";
    const string Description = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";
    readonly IClusterClient _client;
    readonly Informer<V1Namespace> _ns;
    readonly Informer<V1ConfigMap> _cms;
    readonly string _ca;
    public override string Name => "root-ca-certificate-publisher-controller";

    /// <param name="caPem">The CA to publish; null (no CA known, outside `berth server`): the controller publishes nothing.</param>
    public RootCaPublisher(InformerFactory f, string? caPem)
    {
        _client = f.Client;
        _ca = caPem ?? "";
        _ns = f.For<V1Namespace>();
        _cms = f.For<V1ConfigMap>();
        _ns.AddHandler(new InformerHandler<V1Namespace>(n => Enqueue(n.Metadata.Name), (_, n) => Enqueue(n.Metadata.Name)));
        _cms.AddHandler(new InformerHandler<V1ConfigMap>(
            update: (_, cm) => { if (cm.Metadata.Name == ConfigMapName) Enqueue(cm.Metadata.NamespaceProperty); },
            delete: cm => { if (cm.Metadata.Name == ConfigMapName) Enqueue(cm.Metadata.NamespaceProperty); }));
    }

    protected override async Task ReconcileAsync(string key, CancellationToken ct)
    {
        if (_ca.Length == 0) return;
        var ns = _ns.Get(key);
        if (ns is null || ns.Metadata.DeletionTimestamp is not null || ns.Status?.Phase == "Terminating") return;
        var cm = _cms.Get(key, ConfigMapName);
        try
        {
            if (cm is null)
            {
                await _client.CreateAsync(new V1ConfigMap
                {
                    Metadata = new V1ObjectMeta { Name = ConfigMapName, NamespaceProperty = key, Annotations = new Dictionary<string, string> { ["kubernetes.io/description"] = Description } },
                    Data = new Dictionary<string, string> { ["ca.crt"] = _ca },
                }, ct).ConfigureAwait(false);
                return;
            }
            if (cm.Data is { Count: 1 } d && d.TryGetValue("ca.crt", out var have) && have == _ca && (cm.BinaryData is null || cm.BinaryData.Count == 0)) return;
            var fixedCm = Kinds.Clone(cm);
            fixedCm.Data = new Dictionary<string, string> { ["ca.crt"] = _ca };
            fixedCm.BinaryData = null;
            await _client.UpdateAsync(fixedCm, ct).ConfigureAwait(false);
        }
        // already there (the cache lags), changed meanwhile, or the namespace started terminating
        catch (ClusterException e) when (e.Kind is ClusterErrorKind.AlreadyExists or ClusterErrorKind.Conflict) { Enqueue(key); }
        catch (ClusterException e) when (e.Kind is ClusterErrorKind.Forbidden or ClusterErrorKind.NotFound) { }
    }
}
