using k8s.Models;

namespace Berth.Cluster.Scheduling;

/// <summary>A pod affinity/anti-affinity term, compiled: which pods it selects and over which topology.</summary>
public sealed class AffinityTerm
{
    public required LabelSelectorMatcher Selector { get; init; }
    /// <summary>Namespaces the term applies to; empty with a null NamespaceSelector means the pod's own.</summary>
    public required HashSet<string> Namespaces { get; init; }
    public LabelSelectorMatcher? NamespaceSelector { get; init; }
    public required string TopologyKey { get; init; }
    public int Weight { get; init; }

    /// <summary>Does <paramref name="pod"/> match this term? (namespace labels are not known to the scheduler cache: a namespaceSelector matches all namespaces when empty and otherwise only the listed ones.)</summary>
    public bool Matches(PodInfo pod)
    {
        bool nsOk = Namespaces.Contains(pod.Namespace) || (NamespaceSelector is { Everything: true });
        return nsOk && Selector.Matches(pod.Labels);
    }

    internal static AffinityTerm From(V1PodAffinityTerm t, string podNs, int weight)
    {
        var nss = new HashSet<string>(t.Namespaces ?? []);
        var nsSel = t.NamespaceSelector is null ? null : LabelSelectorMatcher.From(t.NamespaceSelector);
        if (nss.Count == 0 && nsSel is null) nss.Add(podNs);
        return new AffinityTerm
        {
            Selector = LabelSelectorMatcher.From(t.LabelSelector), Namespaces = nss, NamespaceSelector = nsSel,
            TopologyKey = t.TopologyKey ?? "", Weight = weight,
        };
    }
}

public sealed class SpreadConstraint
{
    public required int MaxSkew { get; init; }
    public required string TopologyKey { get; init; }
    public required bool DoNotSchedule { get; init; }
    public required LabelSelectorMatcher Selector { get; init; }
    public int MinDomains { get; init; } = 1;
    /// <summary>nodeAffinityPolicy Honor (default): only nodes matching the pod's node affinity count.</summary>
    public bool HonorNodeAffinity { get; init; } = true;
    /// <summary>nodeTaintsPolicy Honor: only nodes whose taints the pod tolerates count (default Ignore).</summary>
    public bool HonorTaints { get; init; }
}

/// <summary>
/// The scheduler's view of one pod, computed once per pod version: requests as integers, compiled
/// selectors and affinity terms, tolerations. Read-only after construction.
/// </summary>
public sealed class PodInfo
{
    public V1Pod Pod { get; }
    public string Uid { get; }
    public string Namespace { get; }
    public string Name { get; }
    public string Key => Namespace + "/" + Name;
    public IDictionary<string, string>? Labels { get; }
    public string? NodeName => Pod.Spec?.NodeName;
    public int Priority { get; }
    public bool PreemptNever { get; }
    public Resource Requests;
    public long NonZeroMilliCpu { get; }
    public long NonZeroMemory { get; }
    public V1Toleration[] Tolerations { get; }
    public IDictionary<string, string>? NodeSelector { get; }
    public NodeSelectorMatcher? RequiredNodeAffinity { get; }
    public (NodeSelectorMatcher Term, int Weight)[] PreferredNodeAffinity { get; }
    public AffinityTerm[] RequiredAffinity { get; }
    public AffinityTerm[] RequiredAntiAffinity { get; }
    public AffinityTerm[] PreferredAffinity { get; }
    public AffinityTerm[] PreferredAntiAffinity { get; }
    public SpreadConstraint[] SpreadConstraints { get; }
    public (string Protocol, string Ip, int Port)[] HostPorts { get; }
    public bool HasAffinity => RequiredAffinity.Length + RequiredAntiAffinity.Length + PreferredAffinity.Length + PreferredAntiAffinity.Length > 0;

    // Defaults the scheduler assumes for scoring containers that request nothing (kube: 100m, 200Mi).
    public const long DefaultMilliCpuRequest = 100;
    public const long DefaultMemoryRequest = 200 * 1024 * 1024;

    public PodInfo(V1Pod pod)
    {
        Pod = pod;
        var m = pod.Metadata;
        Uid = m?.Uid ?? "";
        Namespace = m?.NamespaceProperty ?? "default";
        Name = m?.Name ?? "";
        Labels = m?.Labels;
        var spec = pod.Spec ?? new V1PodSpec();
        Priority = spec.Priority ?? 0;
        PreemptNever = spec.PreemptionPolicy == "Never";

        Resource sum = default;
        long nzCpu = 0, nzMem = 0;
        List<(string, string, int)>? ports = null;
        if (spec.Containers is not null)
            foreach (var c in spec.Containers)
            {
                var r = Resource.From(c.Resources?.Requests);
                sum.Add(r);
                nzCpu += r.MilliCpu == 0 ? DefaultMilliCpuRequest : r.MilliCpu;
                nzMem += r.Memory == 0 ? DefaultMemoryRequest : r.Memory;
                if (c.Ports is not null)
                    foreach (var p in c.Ports)
                        if (p.HostPort is > 0)
                            (ports ??= []).Add((p.Protocol ?? "TCP", string.IsNullOrEmpty(p.HostIP) ? "0.0.0.0" : p.HostIP, p.HostPort.Value));
            }
        if (spec.InitContainers is not null)
            foreach (var c in spec.InitContainers)
            {
                var r = Resource.From(c.Resources?.Requests);
                if (c.RestartPolicy == "Always") { sum.Add(r); continue; } // sidecars run alongside
                sum.SetMax(r);
                nzCpu = Math.Max(nzCpu, r.MilliCpu); nzMem = Math.Max(nzMem, r.Memory);
            }
        if (spec.Overhead is not null)
        {
            var o = Resource.From(spec.Overhead);
            sum.Add(o); nzCpu += o.MilliCpu; nzMem += o.Memory;
        }
        sum.Pods = 1;
        Requests = sum;
        NonZeroMilliCpu = nzCpu;
        NonZeroMemory = nzMem;
        HostPorts = ports is null ? [] : [.. ports];

        Tolerations = spec.Tolerations is null ? [] : [.. spec.Tolerations];
        NodeSelector = spec.NodeSelector is { Count: > 0 } ? spec.NodeSelector : null;
        var na = spec.Affinity?.NodeAffinity;
        RequiredNodeAffinity = NodeSelectorMatcher.From(na?.RequiredDuringSchedulingIgnoredDuringExecution);
        PreferredNodeAffinity = na?.PreferredDuringSchedulingIgnoredDuringExecution is { } pref
            ? pref.Where(p => p.Weight != 0 && p.Preference is not null).Select(p => (NodeSelectorMatcher.FromTerm(p.Preference), p.Weight)).ToArray()
            : [];
        var pa = spec.Affinity?.PodAffinity;
        var paa = spec.Affinity?.PodAntiAffinity;
        RequiredAffinity = pa?.RequiredDuringSchedulingIgnoredDuringExecution?.Select(t => AffinityTerm.From(t, Namespace, 0)).ToArray() ?? [];
        RequiredAntiAffinity = paa?.RequiredDuringSchedulingIgnoredDuringExecution?.Select(t => AffinityTerm.From(t, Namespace, 0)).ToArray() ?? [];
        PreferredAffinity = pa?.PreferredDuringSchedulingIgnoredDuringExecution?.Select(t => AffinityTerm.From(t.PodAffinityTerm, Namespace, t.Weight)).ToArray() ?? [];
        PreferredAntiAffinity = paa?.PreferredDuringSchedulingIgnoredDuringExecution?.Select(t => AffinityTerm.From(t.PodAffinityTerm, Namespace, t.Weight)).ToArray() ?? [];
        SpreadConstraints = spec.TopologySpreadConstraints?.Select(c =>
        {
            var sel = c.LabelSelector;
            // matchLabelKeys: AND the pod's own values for those keys into the selector.
            if (c.MatchLabelKeys is { Count: > 0 } && Labels is not null)
            {
                sel = new V1LabelSelector { MatchLabels = new Dictionary<string, string>(sel?.MatchLabels ?? new Dictionary<string, string>()), MatchExpressions = sel?.MatchExpressions };
                foreach (var k in c.MatchLabelKeys) if (Labels.TryGetValue(k, out var v)) sel.MatchLabels[k] = v;
            }
            return new SpreadConstraint
            {
                MaxSkew = c.MaxSkew, TopologyKey = c.TopologyKey, DoNotSchedule = c.WhenUnsatisfiable == "DoNotSchedule",
                Selector = LabelSelectorMatcher.From(sel), MinDomains = c.MinDomains ?? 1,
                HonorNodeAffinity = c.NodeAffinityPolicy != "Ignore", HonorTaints = c.NodeTaintsPolicy == "Honor",
            };
        }).ToArray() ?? [];
    }
}
