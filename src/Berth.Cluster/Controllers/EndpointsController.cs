using System.Text;
using Berth.Cluster.Client;
using Berth.Cluster.Controllers.Runtime;
using k8s.Models;

namespace Berth.Cluster.Controllers;

/// <summary>
/// Endpoints and an EndpointSlice (IPv4) for every Service with a selector, from the pods that match
/// it and have an IP: ready pods as addresses, others as notReadyAddresses (all as addresses with
/// publishNotReadyAddresses); target ports resolved by number or by container port name. Services
/// without a selector are left to their owners.
/// </summary>
public sealed class EndpointsController : Controller
{
    public const string ServiceNameLabel = "kubernetes.io/service-name";
    public const string ManagedByLabel = "endpointslice.kubernetes.io/managed-by";
    public const string ManagedBy = "endpointslice-controller.k8s.io";
    readonly IClusterClient _client;
    readonly Informer<V1Service> _svcs;
    readonly Informer<V1Pod> _pods;
    readonly Informer<V1Endpoints> _eps;
    readonly Informer<V1EndpointSlice> _slices;
    public override string Name => "endpoints-controller";

    public EndpointsController(InformerFactory f)
    {
        _client = f.Client;
        _svcs = f.For<V1Service>();
        _pods = f.For<V1Pod>();
        _eps = f.For<V1Endpoints>();
        _slices = f.For<V1EndpointSlice>();
        _svcs.AddHandler(new InformerHandler<V1Service>(s => Enqueue(s.Metadata), (_, s) => Enqueue(s.Metadata), s => Enqueue(s.Metadata)));
        _pods.AddHandler(new InformerHandler<V1Pod>(PodChanged, (o, n) => { PodChanged(o); PodChanged(n); }, PodChanged));
    }

    void PodChanged(V1Pod p)
    {
        foreach (var s in _svcs.ByIndex(InformerFactory.NamespaceIndex, p.Metadata.NamespaceProperty ?? ""))
            if (Selects(s, p)) Enqueue(s.Metadata);
    }

    static bool Selects(V1Service s, V1Pod p)
    {
        if (s.Spec?.Selector is not { Count: > 0 } sel) return false;
        foreach (var (k, v) in sel)
            if (p.Metadata.Labels is null || !p.Metadata.Labels.TryGetValue(k, out var pv) || pv != v) return false;
        return true;
    }

    static int? ResolvePort(V1ServicePort sp, V1Pod p)
    {
        var t = sp.TargetPort?.Value;
        if (string.IsNullOrEmpty(t)) return sp.Port;
        if (int.TryParse(t, out var n)) return n;
        foreach (var c in p.Spec?.Containers ?? [])
            foreach (var cp in c.Ports ?? [])
                if (cp.Name == t && (cp.Protocol ?? "TCP") == (sp.Protocol ?? "TCP")) return cp.ContainerPort;
        return null;
    }

    protected override async Task ReconcileAsync(string key, CancellationToken ct)
    {
        var (ns, name) = Kinds.SplitKey(key);
        var svc = _svcs.Get(key);
        if (svc is null || svc.Spec?.Selector is not { Count: > 0 })
        {
            if (svc is null)
            {
                if (_eps.Get(key) is not null) await DeleteQuietly<V1Endpoints>(ns, name, ct).ConfigureAwait(false);
                foreach (var sl in OwnedSlices(ns, name)) await DeleteQuietly<V1EndpointSlice>(ns, sl.Metadata.Name, ct).ConfigureAwait(false);
            }
            return;
        }
        bool publishAll = svc.Spec.PublishNotReadyAddresses == true;
        var subsets = new Dictionary<string, V1EndpointSubset>();
        var sliceEndpoints = new List<V1Endpoint>();
        List<Discoveryv1EndpointPort>? slicePorts = null;
        var pods = _pods.ByIndex(InformerFactory.NamespaceIndex, ns ?? "").Where(p => Selects(svc, p)).OrderBy(p => p.Metadata.Name, StringComparer.Ordinal);
        foreach (var p in pods)
        {
            if (string.IsNullOrEmpty(p.Status?.PodIP) || p.Status.Phase is "Succeeded" or "Failed") continue;
            bool terminating = p.Metadata.DeletionTimestamp is not null;
            bool ready = PodConditionsReady(p) && !terminating;
            var ports = new List<Corev1EndpointPort>();
            foreach (var sp in svc.Spec.Ports ?? [])
                if (ResolvePort(sp, p) is { } port) ports.Add(new Corev1EndpointPort { Name = sp.Name, Port = port, Protocol = sp.Protocol ?? "TCP", AppProtocol = sp.AppProtocol });
            var target = new V1ObjectReference { Kind = "Pod", NamespaceProperty = ns, Name = p.Metadata.Name, Uid = p.Metadata.Uid };
            if (!terminating || publishAll)
            {
                var sig = string.Join(",", ports.Select(x => $"{x.Name}:{x.Port}/{x.Protocol}"));
                if (!subsets.TryGetValue(sig, out var ss)) subsets[sig] = ss = new V1EndpointSubset { Ports = ports };
                var addr = new V1EndpointAddress { Ip = p.Status.PodIP, NodeName = p.Spec?.NodeName, TargetRef = target };
                if (ready || publishAll) (ss.Addresses ??= []).Add(addr); else (ss.NotReadyAddresses ??= []).Add(addr);
            }
            // an unnamed port has name "" in a slice (the EndpointSlice controller sets it; kubectl describe service dereferences it)
            slicePorts ??= ports.Select(x => new Discoveryv1EndpointPort { Name = x.Name ?? "", Port = x.Port, Protocol = x.Protocol, AppProtocol = x.AppProtocol }).ToList();
            sliceEndpoints.Add(new V1Endpoint
            {
                Addresses = [p.Status.PodIP], NodeName = p.Spec?.NodeName, TargetRef = target,
                Conditions = new V1EndpointConditions { Ready = ready || (publishAll && !terminating), Serving = PodConditionsReady(p), Terminating = terminating },
            });
        }

        // RepackSubsets: addresses ordered by IP (as bytes) then target uid, as kube's endpoints controller stores them
        foreach (var ss in subsets.Values)
        {
            if (ss.Addresses is { } a) ss.Addresses = [.. a.Order(Comparer<V1EndpointAddress>.Create(ByIpAndUid))];
            if (ss.NotReadyAddresses is { } n) ss.NotReadyAddresses = [.. n.Order(Comparer<V1EndpointAddress>.Create(ByIpAndUid))];
        }
        var desired = new V1Endpoints
        {
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns, Labels = svc.Metadata.Labels is null ? null : new Dictionary<string, string>(svc.Metadata.Labels) },
            Subsets = subsets.Count == 0 ? null : subsets.Values.ToList(),
        };
        var cur = _eps.Get(key);
        if (cur is null) await CreateOrConflict(desired, ct).ConfigureAwait(false);
        else if (Json(cur.Subsets) != Json(desired.Subsets))
        {
            var u = Kinds.Clone(cur);
            u.Subsets = desired.Subsets;
            u.Metadata.ResourceVersion = null;
            await _client.UpdateAsync(u, ct).ConfigureAwait(false);
        }

        var sliceName = name + "-" + ShortHash(svc.Metadata.Uid);
        var slice = new V1EndpointSlice
        {
            Metadata = new V1ObjectMeta
            {
                Name = sliceName, NamespaceProperty = ns,
                Labels = new Dictionary<string, string> { [ServiceNameLabel] = name, [ManagedByLabel] = ManagedBy },
                OwnerReferences = [new V1OwnerReference { ApiVersion = "v1", Kind = "Service", Name = name, Uid = svc.Metadata.Uid, Controller = true, BlockOwnerDeletion = true }],
            },
            AddressType = "IPv4", Endpoints = sliceEndpoints, Ports = slicePorts,
        };
        var curSlice = _slices.Get(ns + "/" + sliceName);
        if (curSlice is null) await CreateOrConflict(slice, ct).ConfigureAwait(false);
        else if (Json(curSlice.Endpoints) != Json(slice.Endpoints) || Json(curSlice.Ports) != Json(slice.Ports))
        {
            var u = Kinds.Clone(curSlice);
            u.Endpoints = slice.Endpoints; u.Ports = slice.Ports;
            u.Metadata.ResourceVersion = null;
            await _client.UpdateAsync(u, ct).ConfigureAwait(false);
        }
    }

    static bool PodConditionsReady(V1Pod p) => PodConditions.IsReady(p);

    static int ByIpAndUid(V1EndpointAddress a, V1EndpointAddress b)
    {
        var c = string.CompareOrdinal(a.Ip, b.Ip);
        return c != 0 ? c : string.CompareOrdinal(a.TargetRef?.Uid, b.TargetRef?.Uid);
    }

    IEnumerable<V1EndpointSlice> OwnedSlices(string? ns, string svc) =>
        _slices.ByIndex(InformerFactory.NamespaceIndex, ns ?? "").Where(s => Label(s.Metadata, ServiceNameLabel) == svc && Label(s.Metadata, ManagedByLabel) == ManagedBy);

    static string? Label(V1ObjectMeta m, string k) => m.Labels is { } l && l.TryGetValue(k, out var v) ? v : null;

    async Task CreateOrConflict<T>(T obj, CancellationToken ct) where T : class, k8s.IKubernetesObject<V1ObjectMeta>
    {
        try { await _client.CreateAsync(obj, ct).ConfigureAwait(false); }
        catch (ClusterException e) when (e.Kind == ClusterErrorKind.AlreadyExists) { throw new InvalidOperationException($"{e.Message}; will retry once the cache has it"); }
    }

    async Task DeleteQuietly<T>(string? ns, string name, CancellationToken ct) where T : class, k8s.IKubernetesObject<V1ObjectMeta>
    {
        try { await _client.DeleteAsync<T>(ns, name, null, ct).ConfigureAwait(false); }
        catch (ClusterException e) when (e.Kind == ClusterErrorKind.NotFound) { }
    }

    static string Json<T>(T? v) where T : class => v is null ? "" : Encoding.UTF8.GetString(Kinds.ToJson(v));

    static string ShortHash(string s)
    {
        uint h = 2166136261;
        foreach (var c in s) { h ^= c; h *= 16777619; }
        const string alphabet = "bcdfghjklmnpqrstvwxz2456789";
        var sb = new StringBuilder();
        for (int i = 0; i < 5; i++) { sb.Append(alphabet[(int)(h % 27)]); h /= 27; }
        return sb.ToString();
    }
}
