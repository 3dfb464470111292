using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Berth.Cluster.Api;

/// <summary>
/// A value whose JSON type its field's schema does not allow: what Kubernetes' typed decoding refuses
/// (a string for spec.replicas, an object for an image). The first one in document order, as Go's
/// decoder reports it.
/// </summary>
/// <param name="Path">the field's JSON names from the root, without list indexes or map keys ("spec.template.spec.containers.image")</param>
/// <param name="Struct">the Go struct that has the field ("Container")</param>
/// <param name="GoType">the field's Go type ("int32", "[]v1.Container", "v1.PodSpec")</param>
/// <param name="Value">the JSON value's kind as Go names it ("string", "number", "number 1.5", "bool", "array", "object")</param>
/// <param name="Special">the message of a type with its own decoder (quantities), instead of Go's</param>
/// <param name="ConvertText">runtime.DefaultUnstructuredConverter's message for the same value (what a strategic merge patch reports)</param>
internal sealed record TypeMismatch(string Path, string Struct, string GoType, string Value, string? Special, string ConvertText)
{
    /// <summary>The JSON codec's message (create, update, JSON and merge patches).</summary>
    public string DecodeText => Special ?? $"json: cannot unmarshal {Value} into Go struct field {Struct}.{Path} of type {GoType}";
}

internal static partial class TypeCheck
{
    internal const string QuantityError = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
    const string QuantityDef = "io.k8s.apimachinery.pkg.api.resource.Quantity";
    const string IntOrStringDef = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";

    [GeneratedRegex(@"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")]
    private static partial Regex QuantityPattern();

    /// <summary>"io.k8s.api.apps.v1.DeploymentSpec" → "v1.DeploymentSpec", as Go prints a type.</summary>
    static string GoName(string def)
    {
        var parts = def.Split('.');
        return parts.Length >= 2 ? parts[^2] + "." + parts[^1] : def;
    }

    /// <summary>The Go type of a field whose schema is <paramref name="schema"/> ("int32", "[]v1.Container", "v1.PodSpec").</summary>
    internal static string GoType(JsonObject definitions, JsonNode? schema)
    {
        var (s, def) = SchemaNode.Resolve(definitions, schema);
        if (def == QuantityDef) return "resource.Quantity";
        if (def == IntOrStringDef) return "intstr.IntOrString";
        if (s is null) return "interface {}";
        if (s["properties"] is JsonObject && def is not null) return GoName(def);
        switch (s.Str("type"))
        {
            case "integer": return s.Str("format") == "int32" ? "int32" : "int64";
            case "number": return "float64";
            case "boolean": return "bool";
            case "string": return "string";
            case "array": return "[]" + GoType(definitions, s["items"]);
            case "object" when s["additionalProperties"] is JsonObject v: return "map[string]" + GoType(definitions, v);
            case "object" when def is not null: return GoName(def);
            default: return "interface {}";
        }
    }

    /// <summary>A JSON number that is a whole number in int64's range (however the node holds it).</summary>
    internal static bool IsInteger(JsonNode n, out long value)
    {
        if (n is JsonValue v)
        {
            if (v.TryGetValue<long>(out value)) return true;
            if (v.TryGetValue<int>(out var i)) { value = i; return true; }
            if (v.TryGetValue<JsonElement>(out var e) && e.ValueKind == JsonValueKind.Number) return e.TryGetInt64(out value);
        }
        return long.TryParse(n.ToJsonString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);
    }

    /// <summary>A quantity is a number or a string in the quantity syntax.</summary>
    internal static bool IsQuantity(JsonNode value, JsonValueKind kind) =>
        kind == JsonValueKind.Number || kind == JsonValueKind.String && QuantityPattern().IsMatch(value.GetValue<string>());

    /// <summary>An int-or-string is a string or a whole number in int32's range.</summary>
    internal static bool IsIntOrString(JsonNode value, JsonValueKind kind) =>
        kind == JsonValueKind.String || kind == JsonValueKind.Number && IsInteger(value, out var i) && i is >= int.MinValue and <= int.MaxValue;

    /// <summary>What Go says when a value does not decode into an int-or-string.</summary>
    internal static string IntOrStringConvertText(JsonNode value) =>
        $"json: cannot unmarshal {(value.GetValueKind() == JsonValueKind.Number ? "number " + value.ToJsonString() : Kind(value))} into Go value of type int32";

    internal static string Kind(JsonNode n) => n.GetValueKind() switch
    {
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "bool",
        JsonValueKind.Array => "array",
        _ => "object",
    };

    /// <summary>The Go kind a value has in an unstructured map (int64 for whole numbers, float64 otherwise).</summary>
    static string UnstructuredKind(JsonNode n) => n.GetValueKind() switch
    {
        JsonValueKind.String => "string",
        JsonValueKind.Number => IsInteger(n, out _) ? "int64" : "float64",
        JsonValueKind.True or JsonValueKind.False => "bool",
        JsonValueKind.Array => "slice",
        _ => "map",
    };

    /// <summary>What runtime.DefaultUnstructuredConverter says when it cannot put <paramref name="value"/> into a <paramref name="goType"/>.</summary>
    internal static string ConvertText(string goType, JsonNode value)
    {
        var src = UnstructuredKind(value);
        if (goType.StartsWith("[]", StringComparison.Ordinal)) return $"cannot restore slice from {src}";
        if (goType.StartsWith("map[", StringComparison.Ordinal)) return $"cannot restore map from {src}";
        if (goType.Contains('.')) return $"cannot restore struct from: {src}";
        // Go can convert integers to any number or to a string, and floats to numbers: those fail on the value
        bool convertible = src == "int64" && goType is "int32" or "int64" or "float64" or "string"
            || src == "float64" && goType is "int32" or "int64" or "float64";
        return convertible ? $"cannot convert {src} to {goType}" : $"unrecognized type: {goType}";
    }

    /// <summary>A JSON value as Go's fmt prints the decoded map[string]interface{} ("map[spec:map[replicas:two]]").</summary>
    public static string GoFormat(JsonNode? n)
    {
        var sb = new StringBuilder();
        Format(n, sb);
        return sb.ToString();
    }

    static void Format(JsonNode? n, StringBuilder sb)
    {
        switch (n)
        {
            case null: sb.Append("<nil>"); break;
            case JsonObject o:
                sb.Append("map[");
                var first = true;
                foreach (var (k, v) in o.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    if (!first) sb.Append(' ');
                    first = false;
                    sb.Append(k).Append(':');
                    Format(v, sb);
                }
                sb.Append(']');
                break;
            case JsonArray a:
                sb.Append('[');
                for (var i = 0; i < a.Count; i++)
                {
                    if (i > 0) sb.Append(' ');
                    Format(a[i], sb);
                }
                sb.Append(']');
                break;
            default:
                var v2 = n.AsValue();
                switch (n.GetValueKind())
                {
                    case JsonValueKind.String: sb.Append(v2.GetValue<string>()); break;
                    case JsonValueKind.True: sb.Append("true"); break;
                    case JsonValueKind.False: sb.Append("false"); break;
                    default:
                        if (IsInteger(n, out var l)) sb.Append(l.ToString(CultureInfo.InvariantCulture));
                        else sb.Append(double.Parse(n.ToJsonString(), CultureInfo.InvariantCulture).ToString("R", CultureInfo.InvariantCulture));
                        break;
                }
                break;
        }
    }
}
