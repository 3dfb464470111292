using System.Text.Json.Nodes;

namespace Berth.Cluster.Api;

/// <summary>
/// Server-side apply's ownership checks over FieldsV1 sets ("f:name" keys, "k:{…}" for keyed list
/// items, "v:…" for set values; a leaf is an empty object).
/// </summary>
internal static class ManagedFields
{
    /// <summary>
    /// The leaf fields of <paramref name="applied"/> (the applier's set) that another manager's entry in
    /// <paramref name="others"/> owns and whose value in <paramref name="appliedObj"/> differs from
    /// <paramref name="live"/>'s, each with that manager's entry.
    /// </summary>
    public static List<(string[] Path, JsonObject Owner)> Conflicts(JsonObject applied, JsonObject live, JsonObject appliedObj, List<JsonObject> others)
    {
        var result = new List<(string[], JsonObject)>();
        foreach (var path in Leaves(applied, []))
        {
            if (SameValue(ValueAt(live, path), ValueAt(appliedObj, path))) continue;
            foreach (var owner in others)
                if (owner["fieldsV1"] is JsonObject set && Contains(set, path)) result.Add((path, owner));
        }
        return result;
    }

    /// <summary>
    /// The 409 the API server answers (its getConflictMessage): one conflict on one line, several grouped
    /// under each manager ("conflicts with \"m\":" then "- .path" lines), managers in sorted order.
    /// </summary>
    public static ApiException ConflictError(ResourceType type, string name, List<(string[] Path, JsonObject Owner)> conflicts)
    {
        var causes = new JsonArray();
        foreach (var (path, owner) in conflicts)
            causes.Add((JsonNode)new JsonObject { ["reason"] = "FieldManagerConflict", ["message"] = "conflict with " + PrintManager(owner), ["field"] = Display(path) });
        var details = new JsonObject { ["name"] = name, ["kind"] = type.Plural, ["causes"] = causes };
        if (type.Group.Length > 0) details["group"] = type.Group;
        string message;
        if (conflicts.Count == 1) message = $"Apply failed with 1 conflict: conflict with {PrintManager(conflicts[0].Owner)}: {Display(conflicts[0].Path)}";
        else
        {
            var lines = new List<string>();
            foreach (var group in conflicts.GroupBy(c => PrintManager(c.Owner)).OrderBy(g => ManagerKey(g.First().Owner), StringComparer.Ordinal))
            {
                lines.Add($"conflicts with {group.Key}:");
                lines.AddRange(group.Select(c => "- " + Display(c.Path)));
            }
            message = $"Apply failed with {conflicts.Count} conflicts: " + string.Join("\n", lines);
        }
        return new ApiException(409, "Conflict", message, details);
    }

    /// <summary>A manager as the API server names it: "m", "m" with subresource "s", "m" using apps/v1 (Update).</summary>
    static string PrintManager(JsonObject owner)
    {
        var s = $"\"{owner.Str("manager")}\"";
        if (owner.Str("subresource") is { Length: > 0 } sub) s += $" with subresource \"{sub}\"";
        return owner.Str("operation") == "Update" ? s + " using " + owner.Str("apiVersion") : s;
    }

    /// <summary>The manager identifier the API server sorts by (its JSON encoding: manager, operation, apiVersion for Update).</summary>
    static string ManagerKey(JsonObject owner) =>
        $"{{\"manager\":\"{owner.Str("manager")}\",\"operation\":\"{owner.Str("operation")}\"" + (owner.Str("operation") == "Update" ? $",\"apiVersion\":\"{owner.Str("apiVersion")}\"" : "") + "}";

    /// <summary>Takes a field out of a manager's set (a forced apply takes it over), pruning emptied parents.</summary>
    public static void Release(JsonObject owner, string[] path)
    {
        if (owner["fieldsV1"] is not JsonObject set) return;
        Remove(set, path, 0);
    }

    static bool Remove(JsonObject set, string[] path, int i)
    {
        if (set[path[i]] is not JsonObject child) return false;
        if (i == path.Length - 1 || Remove(child, path, i + 1) && child.Count == 0) set.Remove(path[i]);
        return set.Count == 0;
    }

    static IEnumerable<string[]> Leaves(JsonObject set, string[] prefix)
    {
        foreach (var (k, v) in set)
        {
            if (k == ".") continue;
            string[] p = [.. prefix, k];
            if (v is JsonObject { Count: > 0 } child && child.Any(c => c.Key != ".")) foreach (var l in Leaves(child, p)) yield return l;
            else yield return p;
        }
    }

    static bool Contains(JsonObject set, string[] path)
    {
        JsonObject cur = set;
        foreach (var seg in path)
        {
            if (cur[seg] is not JsonObject next) return false;
            cur = next;
        }
        return true;
    }

    static JsonNode? ValueAt(JsonNode? node, string[] path)
    {
        foreach (var seg in path)
        {
            if (node is null) return null;
            if (seg.StartsWith("f:", StringComparison.Ordinal)) node = (node as JsonObject)?[seg[2..]];
            else if (seg.StartsWith("k:", StringComparison.Ordinal) && node is JsonArray arr && JsonNode.Parse(seg[2..]) is JsonObject key)
                node = arr.OfType<JsonObject>().FirstOrDefault(item => key.All(kv => JsonNode.DeepEquals(item[kv.Key], kv.Value)));
            else return null;
        }
        return node;
    }

    static bool SameValue(JsonNode? a, JsonNode? b) => JsonNode.DeepEquals(a, b) ||
        a is JsonValue va && b is JsonValue vb && va.ToString() == vb.ToString();

    /// <summary>A field path as structured-merge-diff prints it: .spec.containers[name="nginx"].image, [=value] for set items.</summary>
    static string Display(string[] path) => string.Concat(path.Select(s => s[..2] switch
    {
        "f:" => "." + s[2..],
        "k:" when JsonNode.Parse(s[2..]) is JsonObject key => "[" + string.Join(",", key.Select(kv => $"{kv.Key}={Scalar(kv.Value)}").Order(StringComparer.Ordinal)) + "]",
        "v:" => "[=" + Scalar(JsonNode.Parse(s[2..])) + "]",
        "i:" => "[" + s[2..] + "]",
        _ => s,
    }));

    /// <summary>A key value as structured-merge-diff's value.ToString: strings quoted, numbers and booleans bare.</summary>
    static string Scalar(JsonNode? v) => v switch
    {
        null => "null",
        JsonValue sv when sv.TryGetValue<string>(out var str) => "\"" + str.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"",
        _ => v.ToJsonString(),
    };
}
