using System.Text.Json.Nodes;

namespace Berth.Cluster.Api.Admission;

/// <summary>
/// core/v1 ResourceQuota and LimitRange as the API server defaults, validates (pkg/apis/core/validation,
/// with its messages) and prints them (kubectl's REQUEST/LIMIT and CREATED AT columns).
/// </summary>
public static class PolicyTypes
{
    static readonly string[] StandardQuotaNames =
        ["pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps", "persistentvolumeclaims",
         "services.nodeports", "services.loadbalancers", "cpu", "memory", "ephemeral-storage", "requests.storage"];

    static bool IsStandardQuotaName(string r) =>
        StandardQuotaNames.Contains(r) || r.StartsWith("requests.", StringComparison.Ordinal) || r.StartsWith("limits.", StringComparison.Ordinal)
        || r.StartsWith("hugepages-", StringComparison.Ordinal) || r.StartsWith("count/", StringComparison.Ordinal);

    /// <summary>Quantities stored in canonical form (0.5 cpu is 500m), as the API server's decoding leaves them.</summary>
    static void Canonical(JsonObject? list)
    {
        if (list is null) return;
        foreach (var (k, v) in list.ToList())
            if (Quantity.TryParse(v?.ToString()) is { } q) list[k] = q.ToString();
    }

    public static void DefaultQuota(JsonObject o)
    {
        Canonical(o["spec"]?["hard"] as JsonObject);
        Canonical(o["status"]?["hard"] as JsonObject);
        Canonical(o["status"]?["used"] as JsonObject);
    }

    public static void ValidateQuota(JsonObject o, JsonObject? old, List<FieldError> e)
    {
        foreach (var part in new[] { "spec.hard", "status.hard", "status.used" })
            if (o.At(part) is JsonObject list)
                foreach (var (k, v) in list)
                {
                    var path = $"{part}[{k}]";
                    if (k.Contains('/') ? Validation.CheckQualifiedName(k) is not null : !IsStandardQuotaName(k))
                        e.Add(FieldError.Invalid(path, k, "must be a standard resource for quota"));
                    if (Quantity.TryParse(v?.ToString()) is not { } q) { e.Add(FieldError.Invalid(path, v?.ToString(), TypeCheck.QuantityError)); continue; }
                    if (q.Value < 0) e.Add(FieldError.Invalid(path, q.ToString(), "must be greater than or equal to 0"));
                    else if (QuotaUsage.IsInteger(k) && q.Value != decimal.Truncate(q.Value)) e.Add(FieldError.Invalid(path, q.ToString(), "must be an integer"));
                }
        var scopes = o.Arr("spec.scopes").Select(s => s?.GetValue<string>() ?? "").ToList();
        foreach (var s in scopes)
            if (!QuotaUsage.Scopes.Contains(s)) e.Add(FieldError.NotSupported("spec.scopes", s, QuotaUsage.Scopes));
        var selector = o.Objects("spec.scopeSelector.matchExpressions").ToList();
        for (var i = 0; i < selector.Count; i++)
        {
            var path = $"spec.scopeSelector.matchExpressions[{i}]";
            var name = selector[i].Str("scopeName") ?? "";
            if (!QuotaUsage.Scopes.Contains(name)) e.Add(FieldError.NotSupported(path + ".scopeName", name, QuotaUsage.Scopes));
            var op = selector[i].Str("operator") ?? "";
            if (op is not ("In" or "NotIn" or "Exists" or "DoesNotExist")) e.Add(FieldError.NotSupported(path + ".operator", op, ["DoesNotExist", "Exists", "In", "NotIn"]));
            else if (op is "In" or "NotIn" && selector[i].Arr("values").Count == 0) e.Add(FieldError.Required(path + ".values", "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector"));
            scopes.Add(name);
        }
        var goList = "[]core.ResourceQuotaScope{" + string.Join(", ", o.Arr("spec.scopes").Select(s => $"\"{s}\"")) + "}";
        if (scopes.Contains("BestEffort") && scopes.Contains("NotBestEffort") || scopes.Contains("Terminating") && scopes.Contains("NotTerminating"))
            e.Add(new FieldError("spec.scopes", "FieldValueInvalid", $"Invalid value: {goList}: conflicting scopes"));
        if (scopes.Contains("BestEffort") && o["spec"]?["hard"] is JsonObject hard)
            foreach (var (k, _) in hard)
                if (k is not ("pods" or "count/pods"))
                    e.Add(FieldError.Invalid("spec.hard", k, "unsupported scope applied to resource"));
    }

    /// <summary>The REQUEST or LIMIT cell: "pods: 1/10, requests.cpu: 100m/1" over spec.hard's names in order, from status.</summary>
    public static string QuotaCell(JsonObject o, bool limits)
    {
        var names = (o["spec"]?["hard"] as JsonObject)?.Select(kv => kv.Key).Order(StringComparer.Ordinal) ?? Enumerable.Empty<string>();
        var parts = new List<string>();
        foreach (var r in names)
        {
            var isLimit = r.Split('.') is { Length: > 1 } p && p[0] == "limits";
            if (isLimit != limits) continue;
            var used = o.At($"status.used") is JsonObject u && u[r] is { } uv ? uv.ToString() : "0";
            var hard = o.At($"status.hard") is JsonObject h && h[r] is { } hv ? hv.ToString() : "0";
            parts.Add($"{r}: {used}/{hard}");
        }
        return string.Join(", ", parts);
    }

    static readonly string[] LimitTypes = ["Pod", "Container", "PersistentVolumeClaim"];

    /// <summary>SetDefaults_LimitRangeItem: a Container item's default is its max, its defaultRequest its default or else its min.</summary>
    public static void DefaultLimitRange(JsonObject o)
    {
        foreach (var item in o.Objects("spec.limits"))
        {
            foreach (var part in new[] { "max", "min", "default", "defaultRequest", "maxLimitRequestRatio" }) Canonical(item[part] as JsonObject);
            if (item.Str("type") != "Container") continue;
            var def = item["default"] as JsonObject ?? new JsonObject();
            var defReq = item["defaultRequest"] as JsonObject ?? new JsonObject();
            if (item["max"] is JsonObject max) foreach (var (k, v) in max) if (!def.ContainsKey(k)) def[k] = v?.DeepClone();
            foreach (var (k, v) in def) if (!defReq.ContainsKey(k)) defReq[k] = v?.DeepClone();
            if (item["min"] is JsonObject min) foreach (var (k, v) in min) if (!defReq.ContainsKey(k)) defReq[k] = v?.DeepClone();
            if (def.Count > 0) item["default"] = def;
            if (defReq.Count > 0) item["defaultRequest"] = defReq;
        }
    }

    public static void ValidateLimitRange(JsonObject o, JsonObject? old, List<FieldError> e)
    {
        var items = o.Objects("spec.limits").ToList();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < items.Count; i++)
        {
            var item = items[i];
            var path = $"spec.limits[{i}]";
            var type = item.Str("type") ?? "";
            if (type.Length == 0) e.Add(FieldError.Required(path + ".type"));
            else if (Validation.CheckQualifiedName(type) is { } why) e.Add(FieldError.Invalid(path + ".type", type, why));
            if (type.Length > 0 && !seen.Add(type)) e.Add(FieldError.Duplicate(path + ".type", type));
            var parts = new Dictionary<string, Dictionary<string, Quantity>>(StringComparer.Ordinal);
            foreach (var part in new[] { "max", "min", "default", "defaultRequest", "maxLimitRequestRatio" })
            {
                var d = parts[part] = new Dictionary<string, Quantity>(StringComparer.Ordinal);
                if (item[part] is not JsonObject list) continue;
                foreach (var (k, v) in list)
                {
                    if (Quantity.TryParse(v?.ToString()) is not { } q) { e.Add(FieldError.Invalid($"{path}.{part}[{k}]", v?.ToString(), TypeCheck.QuantityError)); continue; }
                    if (q.Value < 0) e.Add(FieldError.Invalid($"{path}.{part}[{k}]", q.ToString(), "must be greater than or equal to 0"));
                    d[k] = q;
                }
            }
            if (type == "Pod")
            {
                if (parts["default"].Count > 0) e.Add(FieldError.Forbidden(path + ".default", "may not be specified when `type` is 'Pod'"));
                if (parts["defaultRequest"].Count > 0) e.Add(FieldError.Forbidden(path + ".defaultRequest", "may not be specified when `type` is 'Pod'"));
            }
            if (type == "PersistentVolumeClaim" && !parts["min"].ContainsKey("storage") && !parts["max"].ContainsKey("storage"))
                e.Add(FieldError.Required(path + ".limits", "either minimum or maximum storage value is required, but neither was provided"));
            var keys = parts.Where(p => p.Key != "maxLimitRequestRatio").SelectMany(p => p.Value.Keys).Distinct().Order(StringComparer.Ordinal);
            foreach (var k in keys)
            {
                var hasMin = parts["min"].TryGetValue(k, out var min);
                var hasMax = parts["max"].TryGetValue(k, out var max);
                var hasDef = parts["default"].TryGetValue(k, out var def);
                var hasReq = parts["defaultRequest"].TryGetValue(k, out var req);
                if (hasMin && hasMax && min > max) e.Add(FieldError.Invalid($"{path}.min[{k}]", min.ToString(), $"min value {min} is greater than max value {max}"));
                if (hasReq && hasMin && min > req) e.Add(FieldError.Invalid($"{path}.defaultRequest[{k}]", req.ToString(), $"min value {min} is greater than default request value {req}"));
                if (hasReq && hasMax && req > max) e.Add(FieldError.Invalid($"{path}.defaultRequest[{k}]", req.ToString(), $"default request value {req} is greater than max value {max}"));
                if (hasReq && hasDef && req > def) e.Add(FieldError.Invalid($"{path}.defaultRequest[{k}]", req.ToString(), $"default request value {req} is greater than default limit value {def}"));
                if (hasDef && hasMin && min > def) e.Add(FieldError.Invalid($"{path}.default[{k}]", min.ToString(), $"min value {min} is greater than default value {def}"));
                if (hasDef && hasMax && def > max) e.Add(FieldError.Invalid($"{path}.default[{k}]", max.ToString(), $"default value {def} is greater than max value {max}"));
            }
            foreach (var (k, ratio) in parts["maxLimitRequestRatio"])
            {
                if (ratio.Value < 1) e.Add(FieldError.Invalid($"{path}.maxLimitRequestRatio[{k}]", ratio.ToString(), $"ratio {ratio} is less than 1"));
                if (parts["max"].TryGetValue(k, out var max) && parts["min"].TryGetValue(k, out var min) && min.Value > 0 && ratio.Value > max.Value / min.Value)
                    e.Add(FieldError.Invalid($"{path}.maxLimitRequestRatio[{k}]", ratio.ToString(), $"ratio {ratio} is greater than max/min = {(max.Value / min.Value).ToString("0.000000", System.Globalization.CultureInfo.InvariantCulture)}"));
            }
        }
    }
}
