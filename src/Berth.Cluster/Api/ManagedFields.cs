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

    public static ApiException ConflictError(ResourceType type, string name, List<(string[] Path, JsonObject Owner)> conflicts)
    {
        var causes = new JsonArray();
        var lines = new List<string>();
        foreach (var (path, owner) in conflicts)
        {
            var field = Display(path);
            var msg = $"conflict with \"{owner.Str("manager")}\"" + (owner.Str("operation") == "Update" ? " using " + owner.Str("apiVersion") : "");
            causes.Add((JsonNode)new JsonObject { ["reason"] = "FieldManagerConflict", ["message"] = msg, ["field"] = field });
            lines.Add($"- {msg}: {field}");
        }
        var details = new JsonObject { ["name"] = name, ["kind"] = type.Plural, ["causes"] = causes };
        if (type.Group.Length > 0) details["group"] = type.Group;
        var header = conflicts.Count == 1 ? "Apply failed with 1 conflict" : $"Apply failed with {conflicts.Count} conflicts";
        return new ApiException(409, "Conflict", $"{header}: " + string.Join("\n", lines), details);
    }

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

    static string Display(string[] path) => string.Concat(path.Select(s => s.StartsWith("f:", StringComparison.Ordinal) ? "." + s[2..] : "[" + s[2..] + "]"));
}
