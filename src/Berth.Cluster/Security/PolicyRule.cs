using System.Text.Json.Nodes;

namespace Berth.Cluster.Security;

/// <summary>
/// One rbac.authorization.k8s.io/v1 PolicyRule, and how kube's RBAC matches it against a request
/// (RuleAllows) and whether a set of rules covers another (the escalation check's Covers).
/// </summary>
public sealed record PolicyRule(string[] Verbs, string[] ApiGroups, string[] Resources, string[] ResourceNames, string[] NonResourceUrls)
{
    public const string All = "*";

    public static PolicyRule FromJson(JsonNode? n) => new(Strings(n?["verbs"]), Strings(n?["apiGroups"]), Strings(n?["resources"]),
        Strings(n?["resourceNames"]), Strings(n?["nonResourceURLs"]));

    public static PolicyRule[] ListFromJson(JsonNode? rules) =>
        rules is JsonArray a ? [.. a.Where(r => r is JsonObject).Select(FromJson)] : [];

    static string[] Strings(JsonNode? n) => n is JsonArray a ? [.. a.Select(x => x is JsonValue v && v.TryGetValue<string>(out var s) ? s : "")] : [];

    public JsonObject ToJson()
    {
        var o = new JsonObject { ["verbs"] = Arr(Verbs) };
        if (NonResourceUrls.Length > 0) o["nonResourceURLs"] = Arr(NonResourceUrls);
        if (ApiGroups.Length > 0) o["apiGroups"] = Arr(ApiGroups);
        if (Resources.Length > 0) o["resources"] = Arr(Resources);
        if (ResourceNames.Length > 0) o["resourceNames"] = Arr(ResourceNames);
        return o;
    }

    static JsonArray Arr(string[] values) => new([.. values.Select(v => (JsonNode?)JsonValue.Create(v))]);

    static bool Has(string[] set, string value)
    {
        foreach (var s in set) if (s == All || s == value) return true;
        return false;
    }

    public bool Allows(RequestAttributes a)
    {
        if (!Has(Verbs, a.Verb)) return false;
        if (!a.IsResourceRequest) return NonResourceUrlMatches(a.Path);
        return Has(ApiGroups, a.ApiGroup) && ResourceMatches(a.CombinedResource, a.Subresource)
            && (ResourceNames.Length == 0 || Array.IndexOf(ResourceNames, a.Name) >= 0);
    }

    bool ResourceMatches(string combined, string subresource)
    {
        foreach (var r in Resources)
        {
            if (r == All || r == combined) return true;
            if (subresource.Length > 0 && r.Length == subresource.Length + 2 && r.StartsWith("*/", StringComparison.Ordinal) && r.EndsWith(subresource, StringComparison.Ordinal)) return true;
        }
        return false;
    }

    bool NonResourceUrlMatches(string path)
    {
        foreach (var u in NonResourceUrls)
        {
            if (u == All || u == path) return true;
            if (u.EndsWith('*') && path.StartsWith(u[..^1], StringComparison.Ordinal)) return true;
        }
        return false;
    }

    /// <summary>kube's CompactString: {APIGroups:["apps"], Resources:["deployments"], Verbs:["get"]}.</summary>
    public override string ToString()
    {
        var parts = new List<string>();
        static string Q(string[] v) => "[" + string.Join(", ", v.Select(s => $"\"{s}\"")) + "]";
        if (ApiGroups.Length > 0) parts.Add("APIGroups:" + Q(ApiGroups));
        if (Resources.Length > 0) parts.Add("Resources:" + Q(Resources));
        if (ResourceNames.Length > 0) parts.Add("ResourceNames:" + Q(ResourceNames));
        if (NonResourceUrls.Length > 0) parts.Add("NonResourceURLs:" + Q(NonResourceUrls));
        parts.Add("Verbs:" + Q(Verbs));
        return "{" + string.Join(", ", parts) + "}";
    }

    /// <summary>
    /// The rules of <paramref name="wanted"/> that <paramref name="held"/> does not cover, each broken down to
    /// one verb, group, resource (and name or URL), as kube's validation.Covers reports them.
    /// </summary>
    public static List<PolicyRule> Uncovered(IReadOnlyList<PolicyRule> held, IEnumerable<PolicyRule> wanted)
    {
        var missing = new List<PolicyRule>();
        foreach (var w in wanted)
            foreach (var atom in w.BreakDown())
                if (!held.Any(h => h.CoversAtom(atom))) missing.Add(atom);
        return missing;
    }

    /// <summary>One rule per verb × group × resource × name (or per verb × URL).</summary>
    IEnumerable<PolicyRule> BreakDown()
    {
        foreach (var verb in Verbs)
        {
            foreach (var url in NonResourceUrls) yield return new([verb], [], [], [], [url]);
            foreach (var g in ApiGroups)
                foreach (var r in Resources)
                {
                    if (ResourceNames.Length == 0) yield return new([verb], [g], [r], [], []);
                    else foreach (var n in ResourceNames) yield return new([verb], [g], [r], [n], []);
                }
        }
    }

    bool CoversAtom(PolicyRule atom)
    {
        if (!Has(Verbs, atom.Verbs[0])) return false;
        if (atom.NonResourceUrls.Length > 0)
        {
            var url = atom.NonResourceUrls[0];
            foreach (var u in NonResourceUrls)
            {
                if (u == All || u == url) return true;
                if (u.EndsWith('*') && url.StartsWith(u[..^1], StringComparison.Ordinal)) return true;
            }
            return false;
        }
        if (!Has(ApiGroups, atom.ApiGroups[0])) return false;
        var res = atom.Resources[0];
        var covered = false;
        foreach (var r in Resources)
        {
            if (r == All || r == res) { covered = true; break; }
            var slash = res.IndexOf('/');
            if (slash > 0 && (r == "*" + res[slash..] || r == res[..slash] + "/*")) { covered = true; break; }
        }
        if (!covered) return false;
        if (ResourceNames.Length == 0) return true;
        return atom.ResourceNames.Length == 1 && Array.IndexOf(ResourceNames, atom.ResourceNames[0]) >= 0;
    }
}
