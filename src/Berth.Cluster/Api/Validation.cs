using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Berth.Cluster.Api;

/// <summary>Kubernetes' name and label rules (apimachinery/pkg/util/validation), with its messages.</summary>
public static partial class Validation
{
    const string Dns1123LabelFmt = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
    const string Dns1123SubdomainFmt = Dns1123LabelFmt + "(\\." + Dns1123LabelFmt + ")*";
    const string Dns1035LabelFmt = "[a-z]([-a-z0-9]*[a-z0-9])?";
    const string QualifiedNameFmt = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";

    [GeneratedRegex("^" + Dns1123LabelFmt + "$")] private static partial Regex Dns1123Label();
    [GeneratedRegex("^" + Dns1123SubdomainFmt + "$")] private static partial Regex Dns1123Subdomain();
    [GeneratedRegex("^" + Dns1035LabelFmt + "$")] private static partial Regex Dns1035Label();
    [GeneratedRegex("^" + QualifiedNameFmt + "$")] private static partial Regex QualifiedName();
    [GeneratedRegex("^(" + QualifiedNameFmt + ")?$")] private static partial Regex LabelValue();

    public static string? CheckDns1123Label(string v)
    {
        if (v.Length > 63) return "must be no more than 63 characters";
        return Dns1123Label().IsMatch(v) ? null :
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '" + Dns1123LabelFmt + "')";
    }

    public static string? CheckDns1123Subdomain(string v)
    {
        if (v.Length > 253) return "must be no more than 253 characters";
        return Dns1123Subdomain().IsMatch(v) ? null :
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '" + Dns1123SubdomainFmt + "')";
    }

    public static string? CheckDns1035Label(string v)
    {
        if (v.Length > 63) return "must be no more than 63 characters";
        return Dns1035Label().IsMatch(v) ? null :
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '" + Dns1035LabelFmt + "')";
    }

    /// <summary>A label or annotation key: optional DNS subdomain prefix and '/', then a qualified name.</summary>
    public static string? CheckQualifiedName(string v)
    {
        var name = v;
        var slash = v.IndexOf('/');
        if (slash >= 0)
        {
            var prefix = v[..slash];
            name = v[(slash + 1)..];
            if (prefix.Length == 0) return "prefix part must be non-empty";
            if (CheckDns1123Subdomain(prefix) is { } p) return "prefix part " + p;
        }
        if (name.Length == 0) return "name part must be non-empty";
        if (name.Length > 63) return "name part must be no more than 63 characters";
        return QualifiedName().IsMatch(name) ? null :
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '" + QualifiedNameFmt + "')";
    }

    public static string? CheckLabelValue(string v)
    {
        if (v.Length > 63) return "must be no more than 63 characters";
        return LabelValue().IsMatch(v) ? null :
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(" + QualifiedNameFmt + ")?')";
    }

    /// <summary>Validates metadata common to every object: name (by the kind's rule), labels, annotations.</summary>
    public static void ValidateObjectMeta(JsonObject meta, Func<string, string?> nameRule, List<FieldError> errors)
    {
        var name = meta["name"]?.GetValue<string>();
        if (string.IsNullOrEmpty(name))
            errors.Add(FieldError.Required("metadata.name", "name or generateName is required"));
        else if (nameRule(name) is { } why)
            errors.Add(FieldError.Invalid("metadata.name", name, why));
        if (meta["labels"] is JsonObject labels)
        {
            foreach (var (k, v) in labels)
            {
                if (CheckQualifiedName(k) is { } kw) errors.Add(FieldError.Invalid("metadata.labels", k, kw));
                var s = v is JsonValue jv && jv.TryGetValue<string>(out var str) ? str : null;
                if (s is null) errors.Add(FieldError.Invalid($"metadata.labels.{k}", v?.ToJsonString(), "label values must be strings"));
                else if (CheckLabelValue(s) is { } vw) errors.Add(FieldError.Invalid($"metadata.labels", s, vw));
            }
        }
        else if (meta["labels"] is not null) errors.Add(FieldError.Invalid("metadata.labels", meta["labels"]!.ToJsonString(), "must be a map of strings"));
        if (meta["annotations"] is JsonObject ann)
        {
            long total = 0;
            foreach (var (k, v) in ann)
            {
                if (CheckQualifiedName(k.ToLowerInvariant()) is { } kw) errors.Add(FieldError.Invalid("metadata.annotations", k, kw));
                total += k.Length + (v is JsonValue jv && jv.TryGetValue<string>(out var s) ? s.Length : 0);
            }
            if (total > 256 * 1024) errors.Add(new FieldError("metadata.annotations", "FieldValueTooLong", "Too long: must have at most 262144 bytes"));
        }
    }
}
