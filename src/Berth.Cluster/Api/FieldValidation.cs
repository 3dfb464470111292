using System.Text.Json;
using System.Text.Json.Nodes;

namespace Berth.Cluster.Api;

/// <summary>
/// fieldValidation against the kinds' OpenAPI schemas: the fields of an object that its schema does not
/// declare, at any depth, named as Kubernetes' strict decoding names them
/// ("spec.template.spec.containers[0].imagee"), in document order. The walk that finds them is
/// <see cref="SchemaCheck"/>'s (one walk with the type check); this class has the mode and the repeated keys.
/// </summary>
internal static class FieldValidation
{
    public enum Mode { Ignore, Warn, Strict }

    /// <summary>The query parameter's mode; unset is Warn, as the API server's default.</summary>
    public static Mode Parse(string? value) => value switch
    {
        "Strict" => Mode.Strict,
        "Ignore" => Mode.Ignore,
        "Warn" or null or "" => Mode.Warn,
        _ => throw ApiException.BadRequest($"fieldValidation must be one of Ignore, Warn or Strict, not \"{value}\""),
    };

    /// <summary>
    /// Scans a JSON body for repeated keys: <paramref name="order"/> gets every field path's first
    /// position, the result each repeat's path and position (JSON has no rule against them; Kubernetes'
    /// strict decoding refuses them, Warn and Ignore keep the last value).
    /// </summary>
    public static List<(string Path, int At)> DuplicateFields(ReadOnlySpan<byte> json, Dictionary<string, int> order)
    {
        var dups = new List<(string, int)>();
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 100 });
        var stack = new Stack<(string Path, HashSet<string>? Keys, int Index)>();
        string? pending = null;
        var at = 0;
        string Child()
        {
            if (stack.Count == 0) return "";
            var (path, keys, index) = stack.Pop();
            string p;
            if (keys is null) { p = $"{path}[{index}]"; stack.Push((path, null, index + 1)); }
            else { p = path.Length == 0 ? pending! : path + "." + pending; stack.Push((path, keys, index)); }
            return p;
        }
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.PropertyName:
                        pending = reader.GetString()!;
                        var (path, keys, _) = stack.Peek();
                        var full = path.Length == 0 ? pending : path + "." + pending;
                        at++;
                        if (!keys!.Add(pending)) dups.Add((full, at));
                        else order.TryAdd(full, at);
                        break;
                    case JsonTokenType.StartObject:
                        stack.Push((Child(), new HashSet<string>(StringComparer.Ordinal), 0));
                        break;
                    case JsonTokenType.StartArray:
                        stack.Push((Child(), null, 0));
                        break;
                    case JsonTokenType.EndObject or JsonTokenType.EndArray:
                        stack.Pop();
                        break;
                    default:
                        Child();
                        break;
                }
            }
        }
        catch (JsonException) { /* the parse that follows reports it */ }
        return dups;
    }

    /// <summary>
    /// Whether any object in a JSON body repeats a key: the cheap check every request body gets (no path
    /// strings, no sets); <see cref="DuplicateFields"/> names them when there are. Keys are compared as
    /// their raw bytes, or decoded when escaped. Malformed JSON answers false (the parse reports it).
    /// </summary>
    public static bool HasDuplicateFields(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 100 });
        Span<int> open = stackalloc int[101]; // per open container: index of its first key in `keys`, -1 for an array
        var depth = 0;
        var keys = new List<(int Start, int Length, string? Unescaped)>();
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject: open[depth++] = keys.Count; break;
                    case JsonTokenType.StartArray: open[depth++] = -1; break;
                    case JsonTokenType.EndObject:
                        keys.RemoveRange(open[--depth], keys.Count - open[depth]);
                        break;
                    case JsonTokenType.EndArray: depth--; break;
                    case JsonTokenType.PropertyName:
                        var start = (int)reader.TokenStartIndex + 1; // after the opening quote
                        var raw = reader.ValueSpan;
                        var unescaped = reader.ValueIsEscaped ? reader.GetString() : null;
                        for (var i = open[depth - 1]; i < keys.Count; i++)
                        {
                            var k = keys[i];
                            bool same = unescaped is null && k.Unescaped is null
                                ? json.Slice(k.Start, k.Length).SequenceEqual(raw)
                                : (k.Unescaped ?? System.Text.Encoding.UTF8.GetString(json.Slice(k.Start, k.Length))) == (unescaped ?? System.Text.Encoding.UTF8.GetString(raw));
                            if (same) return true;
                        }
                        keys.Add((start, raw.Length, unescaped));
                        break;
                }
            }
        }
        catch (JsonException) { }
        return false;
    }

    /// <summary>Parses JSON that has repeated keys, the last value of each winning.</summary>
    public static JsonNode? ParseLastWins(ReadOnlySpan<byte> json)
    {
        using var doc = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = 100 });
        return Convert(doc.RootElement);
    }

    static JsonNode? Convert(JsonElement e)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                var o = new JsonObject();
                foreach (var p in e.EnumerateObject()) o[p.Name] = Convert(p.Value);
                return o;
            case JsonValueKind.Array:
                var a = new JsonArray();
                foreach (var x in e.EnumerateArray()) a.Add(Convert(x));
                return a;
            case JsonValueKind.Null:
                return null;
            default:
                return JsonNode.Parse(e.GetRawText());
        }
    }
}
