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
    const string QuantityDef = "io.k8s.apimachinery.pkg.api.resource.Quantity";
    const string IntOrStringDef = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
    const string QuantityError = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

    [GeneratedRegex(@"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")]
    private static partial Regex QuantityPattern();

    /// <summary>The first value of <paramref name="obj"/> its kind's schema (<paramref name="definition"/>) does not allow, or null.</summary>
    public static TypeMismatch? First(JsonObject definitions, string definition, JsonObject obj) =>
        Walk(definitions, new JsonObject { ["$ref"] = "#/definitions/" + definition }, obj, "", ShortName(definition));

    static string ShortName(string def) => def[(def.LastIndexOf('.') + 1)..];

    /// <summary>"io.k8s.api.apps.v1.DeploymentSpec" → "v1.DeploymentSpec", as Go prints a type.</summary>
    static string GoName(string def)
    {
        var parts = def.Split('.');
        return parts.Length >= 2 ? parts[^2] + "." + parts[^1] : def;
    }

    static (JsonObject? Schema, string? Def) Resolve(JsonObject definitions, JsonNode? schema)
    {
        string? def = null;
        for (var i = 0; i < 8 && schema is JsonObject s; i++)
        {
            if (s["$ref"] is JsonValue r) { def = r.GetValue<string>()["#/definitions/".Length..]; schema = definitions[def]; }
            else if (s["allOf"] is JsonArray { Count: > 0 } all) schema = all[0];
            else return (s, def);
        }
        return (schema as JsonObject, def);
    }

    static string GoType(JsonObject definitions, JsonNode? schema)
    {
        var (s, def) = Resolve(definitions, schema);
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
    static bool IsInteger(JsonNode n, out long value) =>
        long.TryParse(n.ToJsonString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);

    static string Kind(JsonNode n) => n.GetValueKind() switch
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

    static TypeMismatch? Walk(JsonObject definitions, JsonNode? schemaNode, JsonNode? value, string path, string parent)
    {
        if (value is null) return null; // null is every type's zero value
        var (schema, def) = Resolve(definitions, schemaNode);
        if (schema is null) return null;
        TypeMismatch Mismatch(string valueText, string? special = null, string? convert = null)
        {
            var goType = GoType(definitions, schemaNode);
            convert ??= ConvertText(goType, value);
            return new TypeMismatch(path, parent, goType, valueText, special, convert);
        }
        var kind = value.GetValueKind();
        if (def == QuantityDef)
        {
            var ok = kind == JsonValueKind.Number || kind == JsonValueKind.String && QuantityPattern().IsMatch(value.GetValue<string>());
            return ok ? null : Mismatch(Kind(value), QuantityError, QuantityError);
        }
        if (def == IntOrStringDef || schema.Str("format") == "int-or-string")
        {
            if (kind == JsonValueKind.String || kind == JsonValueKind.Number && IsInteger(value, out var i) && i is >= int.MinValue and <= int.MaxValue) return null;
            var text = $"json: cannot unmarshal {(kind == JsonValueKind.Number ? "number " + value.ToJsonString() : Kind(value))} into Go value of type int32";
            return Mismatch(Kind(value), null, text) with { Special = null, GoType = "int32" };
        }
        if (schema["properties"] is JsonObject props)
        {
            if (value is not JsonObject o) return Mismatch(Kind(value));
            var name = def is null ? parent : ShortName(def);
            foreach (var (k, v) in o)
                if (props[k] is { } field && Walk(definitions, field, v, path.Length == 0 ? k : path + "." + k, name) is { } m) return m;
            return null;
        }
        switch (schema.Str("type"))
        {
            case "integer":
                if (kind != JsonValueKind.Number) return Mismatch(Kind(value));
                var int32 = schema.Str("format") == "int32";
                if (!IsInteger(value, out var n) || int32 && n is < int.MinValue or > int.MaxValue)
                    return Mismatch("number " + value.ToJsonString());
                return null;
            case "number":
                return kind == JsonValueKind.Number ? null : Mismatch(Kind(value));
            case "boolean":
                return kind is JsonValueKind.True or JsonValueKind.False ? null : Mismatch(Kind(value));
            case "string":
                return kind == JsonValueKind.String ? null : Mismatch(Kind(value));
            case "array":
                if (value is not JsonArray a) return Mismatch(Kind(value));
                foreach (var item in a)
                    if (Walk(definitions, schema["items"], item, path, parent) is { } m) return m;
                return null;
            case "object" when schema["additionalProperties"] is JsonObject values:
                if (value is not JsonObject map) return Mismatch(Kind(value));
                foreach (var (_, v) in map)
                    if (Walk(definitions, values, v, path, parent) is { } m) return m;
                return null;
            default:
                return null;
        }
    }

    /// <summary>What runtime.DefaultUnstructuredConverter says when it cannot put <paramref name="value"/> into a <paramref name="goType"/>.</summary>
    static string ConvertText(string goType, JsonNode value)
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
