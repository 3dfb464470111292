using System.Text.Json.Nodes;

namespace Berth.Cluster.Api.Admission;

/// <summary>
/// kube-apiserver's LimitRanger admission plugin over a namespace's LimitRanges: on a pod's create it fills
/// each container's missing requests and limits from the Container items' defaultRequest and default (and
/// records what it set in the kubernetes.io/limit-ranger annotation), then checks min, max and
/// maxLimitRequestRatio per Container, per Pod (the pod's sums) and per PersistentVolumeClaim (storage),
/// with kube's messages.
/// </summary>
public static class LimitRanger
{
    public const string Annotation = "kubernetes.io/limit-ranger";

    /// <summary>Whether the plugin looks at writes of this kind (pods only on create, claims on create and update).</summary>
    public static bool Handles(ResourceType type, bool isCreate) =>
        type.Group.Length == 0 && (type.Plural == "pods" && isCreate || type.Plural == "persistentvolumeclaims");

    /// <summary>Fills the Container defaults of each LimitRange (in name order) into a new pod.</summary>
    public static void Default(IEnumerable<JsonObject> limitRanges, JsonObject pod)
    {
        foreach (var lr in limitRanges.OrderBy(l => l.Str("metadata.name"), StringComparer.Ordinal))
        {
            var requests = new JsonObject();
            var limits = new JsonObject();
            foreach (var item in lr.Objects("spec.limits"))
            {
                if (item.Str("type") != "Container") continue;
                if (item["defaultRequest"] is JsonObject dr) foreach (var (k, v) in dr) requests[k] = v?.DeepClone();
                if (item["default"] is JsonObject d) foreach (var (k, v) in d) limits[k] = v?.DeepClone();
            }
            if (requests.Count == 0 && limits.Count == 0) continue;
            var notes = new List<string>();
            foreach (var c in pod.Objects("spec.containers")) Merge(c, requests, limits, "container", notes);
            foreach (var c in pod.Objects("spec.initContainers")) Merge(c, requests, limits, "init container", notes);
            if (notes.Count > 0) pod.Meta().Obj("annotations")[Annotation] = "LimitRanger plugin set: " + string.Join("; ", notes);
        }
    }

    static void Merge(JsonObject c, JsonObject requests, JsonObject limits, string what, List<string> notes)
    {
        var res = c.Obj("resources");
        var setLimits = Fill(res, "limits", limits);
        var setRequests = Fill(res, "requests", requests);
        if (setRequests.Count > 0) notes.Add($"{string.Join(", ", setRequests.Order(StringComparer.Ordinal))} request for {what} {c.Str("name")}");
        if (setLimits.Count > 0) notes.Add($"{string.Join(", ", setLimits.Order(StringComparer.Ordinal))} limit for {what} {c.Str("name")}");
    }

    static List<string> Fill(JsonObject res, string part, JsonObject defaults)
    {
        var set = new List<string>();
        if (defaults.Count == 0) return set;
        var have = res.Obj(part);
        foreach (var (k, v) in defaults)
            if (!have.ContainsKey(k)) { have[k] = v?.DeepClone(); set.Add(k); }
        return set;
    }

    /// <summary>The violations of every LimitRange, kube's aggregate text ("a" or "[a, b]"), or null.</summary>
    public static string? Check(IEnumerable<JsonObject> limitRanges, string plural, JsonObject obj)
    {
        var errors = new List<string>();
        foreach (var lr in limitRanges.OrderBy(l => l.Str("metadata.name"), StringComparer.Ordinal))
            foreach (var item in lr.Objects("spec.limits"))
            {
                var type = item.Str("type") ?? "";
                if (plural == "pods" && type == "Container")
                {
                    foreach (var list in new[] { "spec.containers", "spec.initContainers" })
                        foreach (var c in obj.Objects(list))
                            Constraints(item, type, Parse(c["resources"]?["requests"] as JsonObject), Parse(c["resources"]?["limits"] as JsonObject), errors);
                }
                else if (plural == "pods" && type == "Pod")
                {
                    var (requests, limits) = PodTotals(obj);
                    Constraints(item, type, requests, limits, errors);
                }
                else if (plural == "persistentvolumeclaims" && type == "PersistentVolumeClaim")
                    Constraints(item, type, Parse(obj["spec"]?["resources"]?["requests"] as JsonObject), Parse(obj["spec"]?["resources"]?["limits"] as JsonObject), errors);
            }
        var distinct = errors.Distinct().ToList();
        return distinct.Count switch { 0 => null, 1 => distinct[0], _ => "[" + string.Join(", ", distinct) + "]" };
    }

    /// <summary>
    /// The pod's totals for a Pod item: a resource is summed over the containers only when every container
    /// names it (otherwise the pod has no total for it), then raised to any init container's value.
    /// </summary>
    static (Dictionary<string, Quantity>, Dictionary<string, Quantity>) PodTotals(JsonObject pod)
    {
        Dictionary<string, Quantity> Sum(string part)
        {
            var containers = pod.Objects("spec.containers").ToList();
            var lists = containers.Select(c => Parse(c["resources"]?[part] as JsonObject)).ToList();
            var sum = new Dictionary<string, Quantity>(StringComparer.Ordinal);
            foreach (var name in lists.SelectMany(l => l.Keys).Distinct())
                if (lists.All(l => l.ContainsKey(name)))
                    sum[name] = lists.Aggregate(Quantity.Zero, (acc, l) => acc.Add(l[name]));
            foreach (var c in pod.Objects("spec.initContainers"))
                foreach (var (k, v) in Parse(c["resources"]?[part] as JsonObject))
                    if (!sum.TryGetValue(k, out var have) || v > have) sum[k] = v;
            return sum;
        }
        return (Sum("requests"), Sum("limits"));
    }

    /// <summary>A ResourceList's quantities by name (entries that do not parse are left out: validation refused them).</summary>
    internal static Dictionary<string, Quantity> Parse(JsonObject? list)
    {
        var d = new Dictionary<string, Quantity>(StringComparer.Ordinal);
        if (list is null) return d;
        foreach (var (k, v) in list)
            if (Quantity.TryParse(v?.ToString()) is { } q) d[k] = q;
        return d;
    }

    static void Constraints(JsonObject item, string type, Dictionary<string, Quantity> requests, Dictionary<string, Quantity> limits, List<string> errors)
    {
        foreach (var (k, enforced) in Sorted(item["min"] as JsonObject))
        {
            var hasReq = requests.TryGetValue(k, out var req);
            var hasLim = limits.TryGetValue(k, out var lim);
            if (!hasReq) errors.Add($"minimum {k} usage per {type} is {enforced}.  No request is specified");
            else if (req < enforced) errors.Add($"minimum {k} usage per {type} is {enforced}, but request is {req}");
            else if (hasLim && lim < enforced) errors.Add($"minimum {k} usage per {type} is {enforced}, but limit is {lim}");
        }
        foreach (var (k, enforced) in Sorted(item["max"] as JsonObject))
        {
            var hasReq = requests.TryGetValue(k, out var req);
            var hasLim = limits.TryGetValue(k, out var lim);
            if (!hasLim) errors.Add($"maximum {k} usage per {type} is {enforced}.  No limit is specified");
            else if (lim > enforced) errors.Add($"maximum {k} usage per {type} is {enforced}, but limit is {lim}");
            else if (hasReq && req > enforced) errors.Add($"maximum {k} usage per {type} is {enforced}, but request is {req}");
        }
        foreach (var (k, enforced) in Sorted(item["maxLimitRequestRatio"] as JsonObject))
        {
            var hasReq = requests.TryGetValue(k, out var req);
            var hasLim = limits.TryGetValue(k, out var lim);
            if (!hasReq || req.MilliValue == 0) errors.Add($"{k} max limit to request ratio per {type} is {enforced}, but no request is specified or request is 0");
            else if (!hasLim || lim.MilliValue == 0) errors.Add($"{k} max limit to request ratio per {type} is {enforced}, but no limit is specified or limit is 0");
            else
            {
                var ratio = (double)lim.MilliValue / req.MilliValue;
                if (ratio * 1000 > enforced.MilliValue)
                    errors.Add($"{k} max limit to request ratio per {type} is {enforced}, but provided ratio is {ratio.ToString("F6", System.Globalization.CultureInfo.InvariantCulture)}");
            }
        }
    }

    static IEnumerable<(string, Quantity)> Sorted(JsonObject? list) =>
        list is null ? [] : list.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => (kv.Key, Quantity.TryParse(kv.Value?.ToString()))).Where(x => x.Item2 is not null).Select(x => (x.Key, x.Item2!.Value));
}
