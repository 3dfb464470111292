using System.Text.Json.Nodes;

namespace Berth.Cluster.Api;

/// <summary>RFC 6902 JSON patch (application/json-patch+json).</summary>
public static class JsonPatch
{
    public static JsonNode? Apply(JsonNode? doc, JsonArray ops)
    {
        foreach (var opNode in ops)
        {
            if (opNode is not JsonObject op) throw ApiException.BadRequest("json patch: each operation must be an object");
            var kind = op.Str("op") ?? throw ApiException.BadRequest("json patch: operation has no \"op\"");
            var path = op.Str("path") ?? throw ApiException.BadRequest($"json patch: {kind} operation has no \"path\"");
            switch (kind)
            {
                case "add": doc = Add(doc, path, Value(op)); break;
                case "remove": doc = Remove(doc, path, out _); break;
                case "replace": doc = Remove(doc, path, out _); doc = Add(doc, path, Value(op)); break;
                case "move":
                    {
                        var from = op.Str("from") ?? throw ApiException.BadRequest("json patch: move operation has no \"from\"");
                        doc = Remove(doc, from, out var v);
                        doc = Add(doc, path, v);
                        break;
                    }
                case "copy":
                    {
                        var from = op.Str("from") ?? throw ApiException.BadRequest("json patch: copy operation has no \"from\"");
                        doc = Add(doc, path, Get(doc, from)?.DeepClone());
                        break;
                    }
                case "test":
                    if (!JsonNode.DeepEquals(Get(doc, path), op["value"]))
                        throw new ApiException(422, "Invalid", $"json patch: test operation for path \"{path}\" failed: value does not match");
                    break;
                default: throw ApiException.BadRequest($"json patch: unknown operation \"{kind}\"");
            }
        }
        return doc;
    }

    static JsonNode? Value(JsonObject op) =>
        op.ContainsKey("value") ? op["value"]?.DeepClone() : throw ApiException.BadRequest($"json patch: {op.Str("op")} operation has no \"value\"");

    static string[] Split(string path)
    {
        if (path.Length == 0) return [];
        if (path[0] != '/') throw ApiException.BadRequest($"json patch: path \"{path}\" must start with '/'");
        return path[1..].Split('/').Select(p => p.Replace("~1", "/").Replace("~0", "~")).ToArray();
    }

    static JsonNode? Get(JsonNode? doc, string path)
    {
        var node = doc;
        foreach (var p in Split(path))
            node = node switch
            {
                JsonObject o when o.TryGetPropertyValue(p, out var c) => c,
                JsonArray a when int.TryParse(p, out var i) && i >= 0 && i < a.Count => a[i],
                _ => throw ApiException.BadRequest($"json patch: path \"{path}\" does not exist"),
            };
        return node;
    }

    static JsonNode? Add(JsonNode? doc, string path, JsonNode? value)
    {
        var parts = Split(path);
        if (parts.Length == 0) return value;
        var parent = parts.Length == 1 ? doc : Get(doc, "/" + string.Join('/', parts[..^1].Select(Escape)));
        var last = parts[^1];
        switch (parent)
        {
            case JsonObject o: o[last] = value; break;
            case JsonArray a:
                if (last == "-") a.Add(value);
                else if (int.TryParse(last, out var i) && i >= 0 && i <= a.Count) a.Insert(i, value);
                else throw ApiException.BadRequest($"json patch: index \"{last}\" out of range in \"{path}\"");
                break;
            default: throw ApiException.BadRequest($"json patch: parent of \"{path}\" does not exist");
        }
        return doc;
    }

    static JsonNode? Remove(JsonNode? doc, string path, out JsonNode? removed)
    {
        var parts = Split(path);
        if (parts.Length == 0) throw ApiException.BadRequest("json patch: cannot remove the whole document");
        var parent = parts.Length == 1 ? doc : Get(doc, "/" + string.Join('/', parts[..^1].Select(Escape)));
        var last = parts[^1];
        switch (parent)
        {
            case JsonObject o when o.TryGetPropertyValue(last, out var v):
                removed = v; o.Remove(last); break;
            case JsonArray a when int.TryParse(last, out var i) && i >= 0 && i < a.Count:
                removed = a[i]; a.RemoveAt(i); break;
            default: throw ApiException.BadRequest($"json patch: path \"{path}\" does not exist");
        }
        return doc;
    }

    static string Escape(string p) => p.Replace("~", "~0").Replace("/", "~1");
}

/// <summary>RFC 7386 JSON merge patch (application/merge-patch+json).</summary>
public static class MergePatch
{
    public static JsonNode? Apply(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject p) return patch?.DeepClone();
        var result = target as JsonObject ?? new JsonObject();
        foreach (var (k, v) in p.ToList())
        {
            if (v is null) result.Remove(k);
            else
            {
                var merged = Apply(result[k]?.DeepClone(), v);
                result[k] = merged;
            }
        }
        return result;
    }
}

/// <summary>
/// Strategic merge patch (application/strategic-merge-patch+json) for the built-in kinds: lists that
/// Kubernetes declares with patchStrategy=merge are merged by their patchMergeKey (containers by name,
/// container ports by containerPort, service ports by port, env by name, volumes by name, volumeMounts
/// by mountPath, conditions by type, ownerReferences by uid, finalizers as a set), with the
/// directives $patch (replace/delete/merge), $retainKeys, $setElementOrder/&lt;list&gt; and
/// $deleteFromPrimitiveList/&lt;list&gt;; other lists are replaced.
/// </summary>
public static class StrategicMerge
{
    public static JsonObject Apply(JsonObject original, JsonObject patch) => (JsonObject)MergeMap(original, patch, "")!;

    /// <summary>The merge key of the list at <paramref name="path"/> ("" = merge primitives as a set; null = replace).</summary>
    internal static string? MergeKey(string path)
    {
        var field = path[(path.LastIndexOf('.') + 1)..];
        return field switch
        {
            "containers" or "initContainers" or "ephemeralContainers" => "name",
            "ports" when path.Contains("ontainers", StringComparison.Ordinal) => "containerPort",
            "ports" when path == ".spec.ports" => "port",
            "env" or "volumes" or "imagePullSecrets" or "resourceClaims" or "schedulingGates" => "name",
            "volumeMounts" => "mountPath",
            "volumeDevices" => "devicePath",
            "hostAliases" => "ip",
            "conditions" => "type",
            "addresses" when path == ".status.addresses" => "type",
            "ownerReferences" => "uid",
            "readinessGates" => "conditionType",
            "topologySpreadConstraints" => "topologyKey",
            "finalizers" when path == ".metadata.finalizers" => "",
            _ => null,
        };
    }

    static JsonNode? MergeMap(JsonObject? original, JsonObject patch, string path)
    {
        var directive = patch.Str("$patch");
        if (directive == "replace")
        {
            var replaced = (JsonObject)patch.DeepClone();
            replaced.Remove("$patch");
            return StripDirectives(replaced);
        }
        if (directive == "delete") return null;
        var result = original is null ? new JsonObject() : (JsonObject)original.DeepClone();
        JsonArray? retainKeys = null;
        foreach (var (k, v) in patch)
        {
            if (k == "$patch") continue;
            if (k == "$retainKeys") { retainKeys = v as JsonArray; continue; }
            if (k.StartsWith("$setElementOrder/", StringComparison.Ordinal) || k.StartsWith("$deleteFromPrimitiveList/", StringComparison.Ordinal)) continue;
            var childPath = path + "." + k;
            if (v is null) { result.Remove(k); continue; }
            if (v is JsonObject vo)
            {
                var merged = MergeMap(result[k] as JsonObject, vo, childPath);
                if (merged is null) result.Remove(k); else result[k] = merged;
            }
            else if (v is JsonArray va) result[k] = MergeList(result[k] as JsonArray, va, childPath);
            else result[k] = v.DeepClone();
        }
        foreach (var (k, v) in patch)
        {
            if (k.StartsWith("$deleteFromPrimitiveList/", StringComparison.Ordinal) && v is JsonArray del)
            {
                var field = k["$deleteFromPrimitiveList/".Length..];
                if (result[field] is JsonArray list)
                    foreach (var d in del)
                        for (var i = list.Count - 1; i >= 0; i--)
                            if (JsonNode.DeepEquals(list[i], d)) list.RemoveAt(i);
            }
            else if (k.StartsWith("$setElementOrder/", StringComparison.Ordinal) && v is JsonArray order)
            {
                var field = k["$setElementOrder/".Length..];
                if (result[field] is JsonArray list) result[field] = Order(list, order, MergeKey(path + "." + field));
            }
        }
        if (retainKeys is not null)
        {
            var keep = retainKeys.Select(x => x?.GetValue<string>()).ToHashSet();
            foreach (var key in result.Select(kv => kv.Key).ToList())
                if (!keep.Contains(key)) result.Remove(key);
        }
        return result;
    }

    static JsonArray MergeList(JsonArray? original, JsonArray patch, string path)
    {
        var key = MergeKey(path);
        if (key is null || original is null)
        {
            // replace; but honour directives inside elements for a merge-keyed list without an original
            var fresh = new JsonArray();
            foreach (var item in patch)
            {
                if (item is JsonObject o && o.Str("$patch") is "delete") continue;
                if (item is JsonObject o2 && o2.Str("$patch") is "replace") continue;
                fresh.Add(item is JsonObject io ? StripDirectives((JsonObject)io.DeepClone()) : item?.DeepClone());
            }
            return fresh;
        }
        if (patch.OfType<JsonObject>().Any(o => o.Str("$patch") == "replace"))
            return new JsonArray(patch.Where(i => i is not JsonObject o || o.Str("$patch") != "replace").Select(i => i?.DeepClone()).ToArray());
        var result = (JsonArray)original.DeepClone();
        if (key.Length == 0)
        {
            foreach (var item in patch)
                if (!result.Any(x => JsonNode.DeepEquals(x, item))) result.Add(item?.DeepClone());
            return result;
        }
        foreach (var item in patch)
        {
            if (item is not JsonObject po) { result.Add(item?.DeepClone()); continue; }
            var id = po[key];
            var index = -1;
            for (var i = 0; i < result.Count; i++)
                if (result[i] is JsonObject ro && JsonNode.DeepEquals(ro[key], id)) { index = i; break; }
            if (po.Str("$patch") == "delete")
            {
                if (index >= 0) result.RemoveAt(index);
                continue;
            }
            if (index >= 0) result[index] = MergeMap(result[index] as JsonObject, po, path);
            else result.Add((JsonNode)StripDirectives((JsonObject)po.DeepClone()));
        }
        return result;
    }

    static JsonArray Order(JsonArray list, JsonArray order, string? key)
    {
        JsonNode? Id(JsonNode? n) => key is { Length: > 0 } && n is JsonObject o ? o[key] : n;
        var items = list.Select(x => x?.DeepClone()).ToList();
        var ordered = new List<JsonNode?>();
        foreach (var o in order)
        {
            var want = key is { Length: > 0 } && o is JsonObject oo ? oo[key] : o;
            var i = items.FindIndex(x => JsonNode.DeepEquals(Id(x), want));
            if (i >= 0) { ordered.Add(items[i]); items.RemoveAt(i); }
        }
        ordered.AddRange(items);
        return new JsonArray(ordered.ToArray());
    }

    static JsonObject StripDirectives(JsonObject o)
    {
        foreach (var k in o.Select(kv => kv.Key).Where(k => k.StartsWith('$')).ToList()) o.Remove(k);
        foreach (var (_, v) in o.ToList())
        {
            if (v is JsonObject c) StripDirectives(c);
            else if (v is JsonArray a) foreach (var e in a.OfType<JsonObject>()) StripDirectives(e);
        }
        return o;
    }
}
