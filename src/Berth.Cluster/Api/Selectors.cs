using System.Text.Json.Nodes;

namespace Berth.Cluster.Api;

/// <summary>
/// A label selector: the string syntax of <c>?labelSelector=</c> (equality- and set-based:
/// <c>a=b, a==b, a!=b, a in (x,y), a notin (x), a, !a, a&gt;1, a&lt;1</c>) and metav1.LabelSelector JSON.
/// </summary>
public sealed class LabelSelector
{
    public enum Op { Equals, NotEquals, In, NotIn, Exists, DoesNotExist, Gt, Lt }
    public sealed record Requirement(string Key, Op Op, IReadOnlyList<string> Values);

    public IReadOnlyList<Requirement> Requirements { get; }
    public bool MatchesNothing { get; init; }
    public bool IsEmpty => Requirements.Count == 0 && !MatchesNothing;

    LabelSelector(IReadOnlyList<Requirement> r) { Requirements = r; }

    public static readonly LabelSelector Everything = new([]);

    public static LabelSelector Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return Everything;
        var reqs = new List<Requirement>();
        foreach (var part in SplitTopLevel(text))
        {
            var p = part.Trim();
            if (p.Length == 0) throw ApiException.BadRequest($"unable to parse requirement: found '', expected: identifier in selector \"{text}\"");
            reqs.Add(ParseRequirement(p, text));
        }
        return new LabelSelector(reqs);
    }

    static IEnumerable<string> SplitTopLevel(string s)
    {
        var depth = 0; var start = 0;
        for (var i = 0; i < s.Length; i++)
        {
            if (s[i] == '(') depth++;
            else if (s[i] == ')') depth--;
            else if (s[i] == ',' && depth == 0) { yield return s[start..i]; start = i + 1; }
        }
        yield return s[start..];
    }

    static Requirement ParseRequirement(string p, string whole)
    {
        Requirement Check(Requirement r)
        {
            if (Validation.CheckQualifiedName(r.Key) is { } why) throw ApiException.BadRequest($"unable to parse requirement: invalid label key \"{r.Key}\": {why}");
            foreach (var v in r.Values)
                if (r.Op is not (Op.Gt or Op.Lt) && Validation.CheckLabelValue(v) is { } vw) throw ApiException.BadRequest($"unable to parse requirement: invalid label value: \"{v}\": {vw}");
            return r;
        }
        if (p.StartsWith('!')) return Check(new(p[1..].Trim(), Op.DoesNotExist, []));
        foreach (var (word, op) in new[] { (" notin ", Op.NotIn), (" in ", Op.In) })
        {
            var i = p.IndexOf(word, StringComparison.Ordinal);
            if (i > 0)
            {
                var rest = p[(i + word.Length)..].Trim();
                if (!rest.StartsWith('(') || !rest.EndsWith(')')) throw ApiException.BadRequest($"unable to parse requirement: found '{rest}', expected: '(' in selector \"{whole}\"");
                var values = rest[1..^1].Split(',').Select(v => v.Trim()).Where(v => v.Length > 0).ToList();
                return Check(new(p[..i].Trim(), op, values));
            }
        }
        foreach (var (tok, op) in new[] { ("!=", Op.NotEquals), ("==", Op.Equals), ("=", Op.Equals), (">", Op.Gt), ("<", Op.Lt) })
        {
            var i = p.IndexOf(tok, StringComparison.Ordinal);
            if (i > 0)
            {
                var value = p[(i + tok.Length)..].Trim();
                if (op is Op.Gt or Op.Lt && !long.TryParse(value, out _)) throw ApiException.BadRequest($"unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer in selector \"{whole}\"");
                return Check(new(p[..i].Trim(), op, [value]));
            }
        }
        if (p.Contains(' ')) throw ApiException.BadRequest($"unable to parse requirement: found '{p}', expected: in, notin, =, ==, !=, gt, lt in selector \"{whole}\"");
        return Check(new(p, Op.Exists, []));
    }

    /// <summary>metav1.LabelSelector: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist).</summary>
    public static LabelSelector FromJson(JsonObject? s)
    {
        if (s is null) return new LabelSelector([]) { MatchesNothing = true };
        var reqs = new List<Requirement>();
        if (s["matchLabels"] is JsonObject ml)
            foreach (var (k, v) in ml) reqs.Add(new(k, Op.Equals, [v?.GetValue<string>() ?? ""]));
        foreach (var e in s.Objects("matchExpressions"))
        {
            var op = e.Str("operator") switch
            {
                "In" => Op.In, "NotIn" => Op.NotIn, "Exists" => Op.Exists, "DoesNotExist" => Op.DoesNotExist,
                var x => throw ApiException.BadRequest($"\"{x}\" is not a valid label selector operator"),
            };
            reqs.Add(new(e.Str("key") ?? "", op, e.Arr("values").Select(v => v?.GetValue<string>() ?? "").ToList()));
        }
        return new LabelSelector(reqs);
    }

    public bool Matches(JsonObject? labels)
    {
        if (MatchesNothing) return false;
        foreach (var r in Requirements)
        {
            string? value = labels?[r.Key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
            var ok = r.Op switch
            {
                Op.Equals => value == r.Values[0],
                Op.NotEquals => value != r.Values[0],
                Op.In => value is not null && r.Values.Contains(value),
                Op.NotIn => value is null || !r.Values.Contains(value),
                Op.Exists => value is not null,
                Op.DoesNotExist => value is null,
                Op.Gt => long.TryParse(value, out var g) && g > long.Parse(r.Values[0]),
                Op.Lt => long.TryParse(value, out var l) && l < long.Parse(r.Values[0]),
                _ => false,
            };
            if (!ok) return false;
        }
        return true;
    }

    public override string ToString() => string.Join(",", Requirements.Select(r => r.Op switch
    {
        Op.Equals => $"{r.Key}={r.Values[0]}",
        Op.NotEquals => $"{r.Key}!={r.Values[0]}",
        Op.In => $"{r.Key} in ({string.Join(",", r.Values)})",
        Op.NotIn => $"{r.Key} notin ({string.Join(",", r.Values)})",
        Op.Exists => r.Key,
        Op.DoesNotExist => "!" + r.Key,
        Op.Gt => $"{r.Key}>{r.Values[0]}",
        _ => $"{r.Key}<{r.Values[0]}",
    }));
}

/// <summary>A field selector (<c>metadata.name=x,spec.nodeName!=</c>): =, == and != on the fields a kind supports.</summary>
public sealed class FieldSelector
{
    public sealed record Requirement(string Field, bool Equal, string Value)
    {
        public string[] Path { get; } = Field.Split('.');
    }
    public IReadOnlyList<Requirement> Requirements { get; }
    FieldSelector(IReadOnlyList<Requirement> r) { Requirements = r; }
    public static readonly FieldSelector Everything = new([]);

    public static FieldSelector Parse(string? text, ResourceType type)
    {
        if (string.IsNullOrWhiteSpace(text)) return Everything;
        var reqs = new List<Requirement>();
        foreach (var raw in text.Split(','))
        {
            var p = raw.Trim();
            int i; bool eq; int len;
            if ((i = p.IndexOf("!=", StringComparison.Ordinal)) > 0) { eq = false; len = 2; }
            else if ((i = p.IndexOf("==", StringComparison.Ordinal)) > 0) { eq = true; len = 2; }
            else if ((i = p.IndexOf('=')) > 0) { eq = true; len = 1; }
            else throw ApiException.BadRequest($"invalid selector: '{text}'; can't understand '{p}'");
            var field = p[..i].Trim();
            if (field is not ("metadata.name" or "metadata.namespace") && !type.FieldSelectors.Contains(field))
                throw ApiException.BadRequest($"field label not supported: {field}");
            reqs.Add(new(field, eq, p[(i + len)..].Trim()));
        }
        return new FieldSelector(reqs);
    }

    /// <summary>
    /// The same test on an object's stored bytes, without decoding it; null when a value is not a string,
    /// boolean or null (the caller decodes and uses <see cref="Matches(JsonObject)"/>).
    /// </summary>
    public bool? MatchesStored(ReadOnlySpan<byte> stored)
    {
        foreach (var r in Requirements)
        {
            if (!StoredJson.TryFieldValue(stored, r.Path, out var value)) return null;
            if ((value == r.Value) != r.Equal) return false;
        }
        return true;
    }

    public bool Matches(JsonObject o)
    {
        foreach (var r in Requirements)
        {
            var node = o.At(r.Field);
            var value = node switch
            {
                null => "",
                JsonValue v when v.TryGetValue<string>(out var s) => s,
                JsonValue v when v.TryGetValue<bool>(out var b) => b ? "true" : "false",
                _ => node.ToJsonString(),
            };
            if ((value == r.Value) != r.Equal) return false;
        }
        return true;
    }

    /// <summary>The name a selector pins down (metadata.name=x), if any: lets a watch or list read one key.</summary>
    public string? SingleName => Requirements.FirstOrDefault(r => r.Field == "metadata.name" && r.Equal)?.Value;
}
