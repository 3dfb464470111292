using k8s.Models;

namespace Berth.Cluster.Scheduling;

/// <summary>A compiled metav1.LabelSelector (matchLabels AND matchExpressions: In, NotIn, Exists, DoesNotExist).</summary>
public sealed class LabelSelectorMatcher
{
    readonly KeyValuePair<string, string>[] _equals;
    readonly (string Key, string Op, string[] Values)[] _exprs;
    /// <summary>Matches nothing (a null selector in an affinity term).</summary>
    public bool Nothing { get; private init; }
    public bool Everything => !Nothing && _equals.Length == 0 && _exprs.Length == 0;

    public static readonly LabelSelectorMatcher MatchNothing = new([], []) { Nothing = true };
    public static readonly LabelSelectorMatcher MatchEverything = new([], []);

    LabelSelectorMatcher(KeyValuePair<string, string>[] eq, (string, string, string[])[] ex) { _equals = eq; _exprs = ex; }

    /// <summary>null → matches nothing (as the scheduler treats a missing selector); empty → everything.</summary>
    public static LabelSelectorMatcher From(V1LabelSelector? s)
    {
        if (s is null) return MatchNothing;
        var eq = s.MatchLabels is null ? [] : s.MatchLabels.ToArray();
        var ex = s.MatchExpressions is null ? [] : s.MatchExpressions.Select(e => (e.Key, e.OperatorProperty, e.Values?.ToArray() ?? [])).ToArray();
        if (eq.Length == 0 && ex.Length == 0) return MatchEverything;
        return new LabelSelectorMatcher(eq, ex);
    }

    /// <summary>Validates operators; null when valid, else the error (for the API's validation and controllers).</summary>
    public static string? Validate(V1LabelSelector? s)
    {
        if (s?.MatchExpressions is null) return null;
        foreach (var e in s.MatchExpressions)
            switch (e.OperatorProperty)
            {
                case "In" or "NotIn" when e.Values is null || e.Values.Count == 0: return $"values: Required value: must be specified when `operator` is 'In' or 'NotIn'";
                case "Exists" or "DoesNotExist" when e.Values is { Count: > 0 }: return $"values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'";
                case "In" or "NotIn" or "Exists" or "DoesNotExist": break;
                default: return $"operator: Invalid value: \"{e.OperatorProperty}\": not a valid selector operator";
            }
        return null;
    }

    public bool Matches(IDictionary<string, string>? labels)
    {
        if (Nothing) return false;
        foreach (var kv in _equals)
            if (labels is null || !labels.TryGetValue(kv.Key, out var v) || v != kv.Value) return false;
        foreach (var (key, op, values) in _exprs)
        {
            string? v = null;
            bool has = labels is not null && labels.TryGetValue(key, out v);
            switch (op)
            {
                case "In": if (!has || Array.IndexOf(values, v) < 0) return false; break;
                case "NotIn": if (has && Array.IndexOf(values, v) >= 0) return false; break;
                case "Exists": if (!has) return false; break;
                case "DoesNotExist": if (has) return false; break;
                default: return false;
            }
        }
        return true;
    }
}

/// <summary>A compiled v1.NodeSelector: terms are ORed, requirements inside a term ANDed (In, NotIn, Exists, DoesNotExist, Gt, Lt; matchFields on metadata.name).</summary>
public sealed class NodeSelectorMatcher
{
    readonly Term[] _terms;
    sealed record Term(Req[] Exprs, Req[] Fields);
    sealed record Req(string Key, string Op, string[] Values, long Number);

    NodeSelectorMatcher(Term[] terms) => _terms = terms;

    public static NodeSelectorMatcher? From(V1NodeSelector? s) =>
        s?.NodeSelectorTerms is null ? null : new(s.NodeSelectorTerms.Select(CompileTerm).ToArray());

    internal static NodeSelectorMatcher FromTerm(V1NodeSelectorTerm t) => new([CompileTerm(t)]);

    static Term CompileTerm(V1NodeSelectorTerm t) => new(
        t.MatchExpressions?.Select(Compile).ToArray() ?? [],
        t.MatchFields?.Select(Compile).ToArray() ?? []);

    static Req Compile(V1NodeSelectorRequirement r)
    {
        var values = r.Values?.ToArray() ?? [];
        long n = 0;
        if (r.OperatorProperty is "Gt" or "Lt" && (values.Length != 1 || !long.TryParse(values[0], out n)))
            return new Req(r.Key, "Invalid", values, 0);
        return new Req(r.Key, r.OperatorProperty, values, n);
    }

    public bool Matches(string nodeName, IDictionary<string, string>? labels)
    {
        foreach (var t in _terms)
        {
            // An empty term matches no objects (as in Kubernetes).
            if (t.Exprs.Length == 0 && t.Fields.Length == 0) continue;
            if (TermMatches(t, nodeName, labels)) return true;
        }
        return false;
    }

    static bool TermMatches(Term t, string nodeName, IDictionary<string, string>? labels)
    {
        foreach (var r in t.Exprs)
        {
            string? v = null;
            bool has = labels is not null && labels.TryGetValue(r.Key, out v);
            if (!ReqMatches(r, has, v)) return false;
        }
        foreach (var r in t.Fields)
        {
            if (r.Key != "metadata.name") return false;
            if (!ReqMatches(r, true, nodeName)) return false;
        }
        return true;
    }

    static bool ReqMatches(Req r, bool has, string? v)
    {
        switch (r.Op)
        {
            case "In": return has && Array.IndexOf(r.Values, v) >= 0;
            case "NotIn": return !has || Array.IndexOf(r.Values, v) < 0;
            case "Exists": return has;
            case "DoesNotExist": return !has;
            case "Gt": return has && long.TryParse(v, out var g) && g > r.Number;
            case "Lt": return has && long.TryParse(v, out var l) && l < r.Number;
            default: return false;
        }
    }
}

/// <summary>Toleration and taint matching (k8s.io/api/core/v1 ToleratesTaint semantics).</summary>
public static class Taints
{
    public static bool Tolerates(V1Toleration t, V1Taint taint)
    {
        if (!string.IsNullOrEmpty(t.Effect) && t.Effect != taint.Effect) return false;
        if (!string.IsNullOrEmpty(t.Key) && t.Key != taint.Key) return false;
        return t.OperatorProperty switch
        {
            "Exists" => true,
            "Equal" or "" or null => (t.Value ?? "") == (taint.Value ?? ""),
            _ => false,
        };
    }

    public static bool Tolerated(V1Toleration[] tolerations, V1Taint taint)
    {
        foreach (var t in tolerations) if (Tolerates(t, taint)) return true;
        return false;
    }

    /// <summary>The first NoSchedule/NoExecute taint not tolerated, or null.</summary>
    public static V1Taint? FindUntolerated(V1Taint[] taints, V1Toleration[] tolerations)
    {
        foreach (var taint in taints)
        {
            if (taint.Effect is not ("NoSchedule" or "NoExecute")) continue;
            if (!Tolerated(tolerations, taint)) return taint;
        }
        return null;
    }
}
