using System.Text.Json;
using System.Text.Json.Nodes;

namespace Berth.Cluster.Api;

/// <summary>
/// A kind's OpenAPI schema compiled once into a tree of <see cref="SchemaNode"/>s ($ref and allOf resolved,
/// properties in a dictionary), and the one walk of a written object against it that does both checks the
/// API server's decoding does: the JSON type of every declared field (<see cref="TypeCheck"/>'s rules and
/// messages: the first mismatch in document order) and the fields the schema does not declare
/// (fieldValidation, <see cref="FieldValidation"/>). Paths are built only for what is reported.
/// </summary>
internal sealed class SchemaNode
{
    /// <summary>The schema as written where it is used (a $ref, an allOf or inline): what Go's type name is printed from.</summary>
    public required JsonNode? Source { get; init; }
    /// <summary>The definition the schema resolved to (the last $ref followed), or null for an inline schema.</summary>
    public string? Def { get; private set; }
    /// <summary>The struct name fields of this object are reported under ("Container"), or null for an inline schema.</summary>
    public string? StructName { get; private set; }
    public bool Resolved { get; private set; }
    public bool Quantity { get; private set; }
    public bool IntOrString { get; private set; }
    public string? Type { get; private set; }
    public bool Int32 { get; private set; }
    public Dictionary<string, SchemaNode>? Properties { get; private set; }
    public SchemaNode? Items { get; private set; }
    public SchemaNode? Values { get; private set; }

    const string QuantityDef = "io.k8s.apimachinery.pkg.api.resource.Quantity";
    const string IntOrStringDef = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";

    /// <summary>Compiles the schema of <paramref name="definition"/> and all it reaches (recursive schemas share nodes).</summary>
    public static SchemaNode Compile(JsonObject definitions, string definition)
    {
        var cache = new Dictionary<(JsonObject, string?), SchemaNode>();
        return Compile(definitions, new JsonObject { ["$ref"] = "#/definitions/" + definition }, cache);
    }

    static SchemaNode Compile(JsonObject definitions, JsonNode? source, Dictionary<(JsonObject, string?), SchemaNode> cache)
    {
        var (schema, def) = Resolve(definitions, source);
        if (schema is null) return new SchemaNode { Source = source };
        // a schema reached again (a shared definition, a recursive one) is the same node: its Go type
        // prints the same from any of its sources, since they resolve alike
        if (cache.TryGetValue((schema, def), out var known)) return known;
        var n = new SchemaNode { Source = source };
        cache[(schema, def)] = n;
        n.Fill(definitions, schema, def, cache);
        return n;
    }

    void Fill(JsonObject definitions, JsonObject schema, string? def, Dictionary<(JsonObject, string?), SchemaNode> cache)
    {
        Resolved = true;
        Def = def;
        StructName = def is null ? null : def[(def.LastIndexOf('.') + 1)..];
        Quantity = def == QuantityDef;
        IntOrString = def == IntOrStringDef || schema.Str("format") == "int-or-string";
        Type = schema.Str("type");
        Int32 = schema.Str("format") == "int32";
        if (schema["properties"] is JsonObject props)
        {
            Properties = new Dictionary<string, SchemaNode>(props.Count, StringComparer.Ordinal);
            foreach (var (k, v) in props) Properties[k] = Compile(definitions, v, cache);
        }
        if (schema["items"] is { } items) Items = Compile(definitions, items, cache);
        if (schema["additionalProperties"] is JsonObject values) Values = Compile(definitions, values, cache);
    }

    internal static (JsonObject? Schema, string? Def) Resolve(JsonObject definitions, JsonNode? schema)
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
}

/// <summary>What one walk of an object against its schema found.</summary>
internal sealed class SchemaCheckResult
{
    /// <summary>The first value of a wrong JSON type, in document order (the walk stops there).</summary>
    public TypeMismatch? Mismatch;
    /// <summary>Undeclared fields, named as strict decoding names them ("spec.containers[0].imagee"), in document order.</summary>
    public List<string> Unknown = [];
    /// <summary>Where each undeclared field is, to prune it.</summary>
    public List<(JsonObject Parent, string Key)> UnknownAt = [];

    /// <summary>Removes the undeclared fields, as decoding into Kubernetes' typed objects drops them.</summary>
    public void Prune()
    {
        foreach (var (parent, key) in UnknownAt) parent.Remove(key);
    }
}

internal static class SchemaCheck
{
    /// <summary>Walks <paramref name="obj"/> once against <paramref name="root"/>: type mismatch (first) and undeclared fields (all).</summary>
    public static SchemaCheckResult Check(JsonObject definitions, SchemaNode root, JsonObject obj)
    {
        var w = new Walker(definitions);
        w.Walk(root, obj, root.StructName ?? "", typeCheck: true);
        return w.Result;
    }

    sealed class Walker(JsonObject definitions)
    {
        public readonly SchemaCheckResult Result = new();
        // the path to the value being walked: a property (Index -1), a map key (Index -2) or a list index
        readonly List<(string? Key, int Index)> path = [];

        /// <summary>
        /// Walks one value. <paramref name="typeCheck"/>: whether the type check reaches it (it stops at
        /// quantities, int-or-strings and schemas without a type; the unknown-field walk goes on by the
        /// schema's shape). Answers true when a mismatch ends the walk.
        /// </summary>
        public bool Walk(SchemaNode n, JsonNode? value, string parent, bool typeCheck)
        {
            if (value is null || !n.Resolved) return false; // null is every type's zero value
            var kind = value.GetValueKind();
            if (typeCheck)
            {
                if (n.Quantity)
                {
                    if (!TypeCheck.IsQuantity(value, kind)) return Mismatch(n, value, parent, special: TypeCheck.QuantityError, convert: TypeCheck.QuantityError);
                    typeCheck = false;
                }
                else if (n.IntOrString)
                {
                    if (!TypeCheck.IsIntOrString(value, kind)) return Mismatch(n, value, parent, convert: TypeCheck.IntOrStringConvertText(value), goType: "int32");
                    typeCheck = false;
                }
            }
            if (n.Properties is { } props)
            {
                if (value is JsonObject o)
                {
                    var name = n.StructName ?? parent;
                    foreach (var (k, v) in o)
                    {
                        if (props.TryGetValue(k, out var field))
                        {
                            path.Add((k, -1));
                            var stop = Walk(field, v, name, typeCheck);
                            path.RemoveAt(path.Count - 1);
                            if (stop) return true;
                        }
                        else
                        {
                            Result.Unknown.Add(FieldPath(k));
                            Result.UnknownAt.Add((o, k));
                        }
                    }
                    return false;
                }
                if (typeCheck) return Mismatch(n, value, parent);
            }
            else if (typeCheck)
            {
                switch (n.Type)
                {
                    case "integer":
                        if (kind != JsonValueKind.Number) return Mismatch(n, value, parent);
                        if (!TypeCheck.IsInteger(value, out var i) || n.Int32 && i is < int.MinValue or > int.MaxValue)
                            return Mismatch(n, value, parent, valueText: "number " + value.ToJsonString());
                        return false;
                    case "number":
                        return kind != JsonValueKind.Number && Mismatch(n, value, parent);
                    case "boolean":
                        return kind is not (JsonValueKind.True or JsonValueKind.False) && Mismatch(n, value, parent);
                    case "string":
                        return kind != JsonValueKind.String && Mismatch(n, value, parent);
                    case "array":
                        if (value is not JsonArray) return Mismatch(n, value, parent);
                        break;
                    case "object" when n.Values is not null:
                        if (value is not JsonObject) return Mismatch(n, value, parent);
                        break;
                    default:
                        typeCheck = false;
                        break;
                }
            }
            if (n.Items is { } items && value is JsonArray a)
            {
                var checkItems = typeCheck && n.Type == "array";
                for (var i = 0; i < a.Count; i++)
                {
                    path.Add((null, i));
                    var stop = Walk(items, a[i], parent, checkItems);
                    path.RemoveAt(path.Count - 1);
                    if (stop) return true;
                }
            }
            else if (n.Properties is null && n.Values is { } values && value is JsonObject m)
            {
                var checkValues = typeCheck && n.Type == "object";
                foreach (var (k, v) in m)
                {
                    path.Add((k, -2));
                    var stop = Walk(values, v, parent, checkValues);
                    path.RemoveAt(path.Count - 1);
                    if (stop) return true;
                }
            }
            return false;
        }

        bool Mismatch(SchemaNode n, JsonNode value, string parent, string? valueText = null, string? special = null, string? convert = null, string? goType = null)
        {
            // the type check names fields only: no list indexes, no map keys
            var typePath = string.Join('.', path.Where(s => s.Index == -1).Select(s => s.Key));
            goType ??= TypeCheck.GoType(definitions, n.Source);
            Result.Mismatch = new TypeMismatch(typePath, parent, goType, valueText ?? TypeCheck.Kind(value), special,
                convert ?? TypeCheck.ConvertText(goType, value));
            return true;
        }

        /// <summary>The strict decoding name of a field of the value being walked: "spec.containers[0].imagee".</summary>
        string FieldPath(string key)
        {
            var sb = new System.Text.StringBuilder();
            foreach (var (k, i) in path)
            {
                if (i >= 0) sb.Append('[').Append(i).Append(']');
                else
                {
                    if (sb.Length > 0) sb.Append('.');
                    sb.Append(k);
                }
            }
            if (sb.Length > 0) sb.Append('.');
            return sb.Append(key).ToString();
        }
    }
}
