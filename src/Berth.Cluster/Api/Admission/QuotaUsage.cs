using System.Text.Json.Nodes;

namespace Berth.Cluster.Api.Admission;

/// <summary>
/// What an object uses of a ResourceQuota, as kube's quota evaluators (pkg/quota/v1/evaluator/core and the
/// generic object-count evaluator) compute it: shared by the admission check (on the object being written)
/// and the quota controller (over every object of a namespace).
/// </summary>
public static class QuotaUsage
{
    /// <summary>The quota resources of a pod's compute use (requests and limits) besides the counts.</summary>
    static readonly string[] PodCountNames = ["pods", "count/pods"];
    static readonly string[] ComputeNames = ["cpu", "memory", "ephemeral-storage"];

    /// <summary>The resource names a quota may hold for objects of this kind (count/plural.group, the legacy names).</summary>
    public static bool Tracks(string group, string plural, string resource)
    {
        if (resource == CountName(group, plural)) return true;
        if (group.Length != 0) return false;
        return plural switch
        {
            "pods" => resource is "pods" or "cpu" or "memory" or "ephemeral-storage" || resource.StartsWith("requests.", StringComparison.Ordinal)
                || resource.StartsWith("limits.", StringComparison.Ordinal) || resource.StartsWith("hugepages-", StringComparison.Ordinal),
            "services" => resource is "services" or "services.nodeports" or "services.loadbalancers",
            "persistentvolumeclaims" => resource is "persistentvolumeclaims" or "requests.storage"
                || resource.EndsWith(".storageclass.storage.k8s.io/requests.storage", StringComparison.Ordinal)
                || resource.EndsWith(".storageclass.storage.k8s.io/persistentvolumeclaims", StringComparison.Ordinal),
            "configmaps" => resource == "configmaps",
            "secrets" => resource == "secrets",
            "resourcequotas" => resource == "resourcequotas",
            "replicationcontrollers" => resource == "replicationcontrollers",
            _ => false,
        };
    }

    /// <summary>The object-count name: count/pods, count/deployments.apps.</summary>
    public static string CountName(string group, string plural) => group.Length == 0 ? "count/" + plural : $"count/{plural}.{group}";

    /// <summary>Whether a quota resource is counted in whole units (its quantity must be an integer).</summary>
    public static bool IsInteger(string resource) =>
        resource.StartsWith("count/", StringComparison.Ordinal) || resource is "pods" or "services" or "services.nodeports" or "services.loadbalancers"
            or "persistentvolumeclaims" or "configmaps" or "secrets" or "resourcequotas" or "replicationcontrollers"
        || resource.EndsWith("/persistentvolumeclaims", StringComparison.Ordinal)
        || resource.StartsWith("requests.", StringComparison.Ordinal) && resource.Contains('/') && !resource.Contains("kubernetes.io/", StringComparison.Ordinal);

    /// <summary>The usage of one object of the kind (every tracked name it adds to; names not in a quota are masked later).</summary>
    public static Dictionary<string, Quantity> Of(string group, string plural, JsonObject obj, DateTimeOffset now)
    {
        var one = new Quantity(1, QuantityFormat.DecimalSI);
        var u = new Dictionary<string, Quantity>(StringComparer.Ordinal) { [CountName(group, plural)] = one };
        if (group.Length != 0) return u;
        switch (plural)
        {
            case "pods":
                if (!CountsAsPod(obj, now)) return u;
                u["pods"] = one;
                var (requests, limits) = PodResources(obj);
                foreach (var (k, v) in requests)
                {
                    if (ComputeNames.Contains(k)) { u[k] = v; u["requests." + k] = v; }
                    else if (k.StartsWith("hugepages-", StringComparison.Ordinal)) { u[k] = v; u["requests." + k] = v; }
                    else if (k.Contains('/')) u["requests." + k] = v;
                }
                foreach (var (k, v) in limits)
                    if (ComputeNames.Contains(k)) u["limits." + k] = v;
                break;
            case "services":
                u["services"] = one;
                var type = obj.Str("spec.type");
                if (type == "LoadBalancer") u["services.loadbalancers"] = one;
                if (type is "NodePort" or "LoadBalancer")
                    u["services.nodeports"] = new Quantity(obj.Objects("spec.ports").Count(), QuantityFormat.DecimalSI);
                break;
            case "persistentvolumeclaims":
                u["persistentvolumeclaims"] = one;
                var storage = Quantity.TryParse(obj.Str("spec.resources.requests.storage")) ?? Quantity.Zero;
                u["requests.storage"] = storage;
                if (obj.Str("spec.storageClassName") is { Length: > 0 } sc)
                {
                    u[sc + ".storageclass.storage.k8s.io/requests.storage"] = storage;
                    u[sc + ".storageclass.storage.k8s.io/persistentvolumeclaims"] = one;
                }
                break;
            case "configmaps" or "secrets" or "resourcequotas" or "replicationcontrollers":
                u[plural] = one;
                break;
        }
        return u;
    }

    /// <summary>
    /// A pod that ended (Succeeded, Failed) or whose graceful deletion is past its grace period no longer
    /// uses compute quota (kube's QuotaV1Pod); its object count still counts.
    /// </summary>
    public static bool CountsAsPod(JsonObject pod, DateTimeOffset now)
    {
        if (pod.Str("status.phase") is "Succeeded" or "Failed") return false;
        if (Json.ParseTime(pod.Str("metadata.deletionTimestamp")) is { } at && pod.Long("metadata.deletionGracePeriodSeconds") is { } grace
            && now > at.AddSeconds(grace)) return false;
        return true;
    }

    /// <summary>The pod's requests and limits as the scheduler sees them: the containers' sum, at least each init container's, plus overhead.</summary>
    public static (Dictionary<string, Quantity> Requests, Dictionary<string, Quantity> Limits) PodResources(JsonObject pod)
    {
        var requests = new Dictionary<string, Quantity>(StringComparer.Ordinal);
        var limits = new Dictionary<string, Quantity>(StringComparer.Ordinal);
        foreach (var c in pod.Objects("spec.containers"))
        {
            AddAll(requests, c["resources"]?["requests"] as JsonObject);
            AddAll(limits, c["resources"]?["limits"] as JsonObject);
        }
        foreach (var c in pod.Objects("spec.initContainers"))
        {
            MaxAll(requests, c["resources"]?["requests"] as JsonObject);
            MaxAll(limits, c["resources"]?["limits"] as JsonObject);
        }
        if (pod["spec"]?["overhead"] is JsonObject overhead)
        {
            AddAll(requests, overhead);
            // overhead adds to limits only where the pod has a limit
            foreach (var (k, v) in overhead)
                if (limits.ContainsKey(k) && Quantity.TryParse(v?.ToString()) is { } q) limits[k] = limits[k].Add(q);
        }
        return (requests, limits);
    }

    static void AddAll(Dictionary<string, Quantity> sum, JsonObject? list)
    {
        if (list is null) return;
        foreach (var (k, v) in list)
            if (Quantity.TryParse(v?.ToString()) is { } q) sum[k] = sum.TryGetValue(k, out var have) ? have.Add(q) : q;
    }

    static void MaxAll(Dictionary<string, Quantity> max, JsonObject? list)
    {
        if (list is null) return;
        foreach (var (k, v) in list)
            if (Quantity.TryParse(v?.ToString()) is { } q && (!max.TryGetValue(k, out var have) || q > have)) max[k] = q;
    }

    /// <summary>The pod's QoS class is BestEffort: no container asks for or limits cpu or memory.</summary>
    public static bool IsBestEffort(JsonObject pod)
    {
        foreach (var list in new[] { "spec.containers", "spec.initContainers" })
            foreach (var c in pod.Objects(list))
                foreach (var part in new[] { "requests", "limits" })
                    if (c["resources"]?[part] is JsonObject m && m.Any(kv => kv.Key is "cpu" or "memory" && Quantity.TryParse(kv.Value?.ToString()) is { Value: not 0 }))
                        return false;
        return true;
    }

    /// <summary>The scopes a quota may name (spec.scopes and scopeSelector's scopeName).</summary>
    public static readonly string[] Scopes = ["Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass", "CrossNamespacePodAffinity"];

    /// <summary>Whether a quota with scopes applies to this object (scopes only select pods: other kinds match an unscoped quota only).</summary>
    public static bool MatchesScopes(JsonObject quota, string group, string plural, JsonObject obj)
    {
        var scopes = quota.Arr("spec.scopes").Select(s => (Scope: s?.GetValue<string>() ?? "", Op: "Exists", Values: (string[])[])).ToList();
        foreach (var e in quota.Objects("spec.scopeSelector.matchExpressions"))
            scopes.Add((e.Str("scopeName") ?? "", e.Str("operator") ?? "", e.Arr("values").Select(v => v?.GetValue<string>() ?? "").ToArray()));
        if (scopes.Count == 0) return true;
        if (group.Length != 0 || plural != "pods") return false;
        foreach (var (scope, op, values) in scopes)
        {
            bool matches = scope switch
            {
                "Terminating" => obj.Long("spec.activeDeadlineSeconds") is >= 0,
                "NotTerminating" => obj.Long("spec.activeDeadlineSeconds") is not >= 0,
                "BestEffort" => IsBestEffort(obj),
                "NotBestEffort" => !IsBestEffort(obj),
                "PriorityClass" => op switch
                {
                    "Exists" => true,
                    "In" => values.Contains(obj.Str("spec.priorityClassName") ?? ""),
                    "NotIn" => !values.Contains(obj.Str("spec.priorityClassName") ?? ""),
                    "DoesNotExist" => false,
                    _ => false,
                },
                "CrossNamespacePodAffinity" => false,
                _ => false,
            };
            if (scope is not "PriorityClass" && op is "DoesNotExist") matches = !matches;
            if (!matches) return false;
        }
        return true;
    }

    /// <summary>A BestEffort-scoped quota tracks only the pod count (its other resources are not counted).</summary>
    public static bool ScopeAllows(JsonObject quota, string resource)
    {
        var bestEffort = quota.Arr("spec.scopes").Any(s => s?.GetValue<string>() == "BestEffort")
            || quota.Objects("spec.scopeSelector.matchExpressions").Any(e => e.Str("scopeName") == "BestEffort");
        return !bestEffort || resource is "pods" or "count/pods";
    }

    /// <summary>The resources a pod must name in every container when a quota limits them (kube's compatibility rule).</summary>
    static readonly string[] MustSpecify = ["requests.cpu", "requests.memory", "limits.cpu", "limits.memory", "cpu", "memory"];

    /// <summary>"must specify requests.cpu for: web; limits.memory for: web,side" when a container does not give a quota'd compute resource.</summary>
    public static string? PodConstraints(JsonObject pod, IEnumerable<string> restricted)
    {
        var required = restricted.Where(MustSpecify.Contains).ToHashSet(StringComparer.Ordinal);
        if (required.Count == 0) return null;
        var missing = new SortedDictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        foreach (var list in new[] { "spec.containers", "spec.initContainers" })
            foreach (var c in pod.Objects(list))
            {
                var has = new HashSet<string>(StringComparer.Ordinal);
                if (c["resources"]?["requests"] is JsonObject req)
                    foreach (var (k, _) in req)
                        if (k is "cpu" or "memory") { has.Add(k); has.Add("requests." + k); }
                if (c["resources"]?["limits"] is JsonObject lim)
                    foreach (var (k, _) in lim)
                        if (k is "cpu" or "memory") has.Add("limits." + k);
                foreach (var r in required)
                    if (!has.Contains(r))
                    {
                        if (!missing.TryGetValue(r, out var names)) missing[r] = names = new SortedSet<string>(StringComparer.Ordinal);
                        names.Add(c.Str("name") ?? "");
                    }
            }
        if (missing.Count == 0) return null;
        return "must specify " + string.Join("; ", missing.Select(m => $"{m.Key} for: {string.Join(",", m.Value)}"));
    }

    /// <summary>"pods=1,requests.cpu=100m": a resource list as the quota messages print it (sorted by name).</summary>
    public static string Pretty(IEnumerable<KeyValuePair<string, Quantity>> list) =>
        string.Join(",", list.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}"));
}
