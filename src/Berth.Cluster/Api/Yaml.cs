using System.Globalization;
using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Berth.Cluster.Api;

/// <summary>YAML request bodies (application/yaml, apply-patch+yaml) turned into JSON trees (YAML 1.2 core schema scalars).</summary>
public static class Yaml
{
    public static JsonNode? ToJson(string text)
    {
        var stream = new YamlStream();
        try { stream.Load(new StringReader(text)); }
        catch (YamlException e) { throw ApiException.BadRequest($"error converting YAML to JSON: yaml: line {e.Start.Line}: {e.Message}"); }
        if (stream.Documents.Count == 0) return null;
        if (stream.Documents.Count > 1) throw ApiException.BadRequest("error converting YAML to JSON: only one document is allowed");
        return Convert(stream.Documents[0].RootNode);
    }

    static JsonNode? Convert(YamlNode node)
    {
        switch (node)
        {
            case YamlMappingNode m:
                var o = new JsonObject();
                foreach (var (k, v) in m.Children)
                {
                    var key = k is YamlScalarNode ks ? ks.Value ?? "" : throw ApiException.BadRequest("error converting YAML to JSON: map keys must be scalars");
                    o[key] = Convert(v);
                }
                return o;
            case YamlSequenceNode s:
                var a = new JsonArray();
                foreach (var c in s.Children) a.Add(Convert(c));
                return a;
            case YamlScalarNode sc:
                var text = sc.Value ?? "";
                if (sc.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted or ScalarStyle.Literal or ScalarStyle.Folded) return JsonValue.Create(text);
                if (!sc.Tag.IsEmpty && sc.Tag.Value == "tag:yaml.org,2002:str") return JsonValue.Create(text);
                switch (text)
                {
                    case "" or "~" or "null" or "Null" or "NULL": return null;
                    case "true" or "True" or "TRUE": return JsonValue.Create(true);
                    case "false" or "False" or "FALSE": return JsonValue.Create(false);
                }
                if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)) return JsonValue.Create(l);
                if (text.Length > 0 && (char.IsDigit(text[0]) || text[0] is '-' or '+' or '.') &&
                    double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && !double.IsInfinity(d)) return JsonValue.Create(d);
                return JsonValue.Create(text);
            default:
                return null;
        }
    }
}
