using System.Text.Json.Nodes;
using Berth.Cluster.Security;

namespace Berth.Cluster.Api;

/// <summary>
/// rbac.authorization.k8s.io/v1 Role, ClusterRole, RoleBinding and ClusterRoleBinding: validation as
/// kube's, kubectl's columns, and kube's escalation prevention — a user may only write a role granting
/// permissions they hold (unless allowed `escalate`) and a binding to a role whose permissions they hold
/// (unless allowed `bind` on it). The check runs for requests of users outside system:masters.
/// </summary>
public static class RbacResources
{
    const string G = RbacAuthorizer.Group;

    static TableColumn NameCol => new("Name", "string", "Name must be unique within a namespace.", (o, _) => o.Str("metadata.name"), 0, "name");
    static TableColumn CreatedAt => new("Created At", "date", "CreationTimestamp is a timestamp representing the server time when this object was created.", (o, _) => o.Str("metadata.creationTimestamp"));
    static TableColumn AgeCol => new("Age", "string", "CreationTimestamp is a timestamp representing the server time when this object was created.", (o, now) => Json.Age(o, now));

    static TableColumn[] BindingColumns =>
    [
        NameCol,
        new("Role", "string", "Role", (o, _) => $"{o.Str("roleRef.kind")}/{o.Str("roleRef.name")}"),
        AgeCol,
        new("Users", "string", "Users in the binding", (o, _) => SubjectNames(o, "User"), 1),
        new("Groups", "string", "Groups in the binding", (o, _) => SubjectNames(o, "Group"), 1),
        new("ServiceAccounts", "string", "ServiceAccounts in the binding", (o, _) => SubjectNames(o, "ServiceAccount"), 1),
    ];

    static string SubjectNames(JsonObject o, string kind) => string.Join(", ", o.Objects("subjects").Where(s => s.Str("kind") == kind)
        .Select(s => kind == "ServiceAccount" ? $"{s.Str("namespace")}/{s.Str("name")}" : s.Str("name")));

    public static void Add(ResourceRegistry r)
    {
        r.Add(new ResourceType
        {
            Group = G, Version = "v1", Kind = "ClusterRole", Plural = "clusterroles", Namespaced = false, NameRule = PathSegmentName,
            Fields = ["rules", "aggregationRule"], Columns = [NameCol, CreatedAt],
            Validate = (o, old, e) => { ValidateRules(o, e, namespaced: false); CheckRoleEscalation(o, "clusterroles", ""); },
        });
        r.Add(new ResourceType
        {
            Group = G, Version = "v1", Kind = "Role", Plural = "roles", NameRule = PathSegmentName,
            Fields = ["rules"], Columns = [NameCol, CreatedAt],
            Validate = (o, old, e) => { ValidateRules(o, e, namespaced: true); CheckRoleEscalation(o, "roles", o.Str("metadata.namespace") ?? ""); },
        });
        r.Add(new ResourceType
        {
            Group = G, Version = "v1", Kind = "ClusterRoleBinding", Plural = "clusterrolebindings", Namespaced = false, NameRule = PathSegmentName,
            Fields = ["subjects", "roleRef"], Columns = BindingColumns,
            Validate = (o, old, e) => { ValidateBinding(o, old, e, ["ClusterRole"], ""); CheckBindingEscalation(o, "clusterrolebindings", ""); },
        });
        r.Add(new ResourceType
        {
            Group = G, Version = "v1", Kind = "RoleBinding", Plural = "rolebindings", NameRule = PathSegmentName,
            Fields = ["subjects", "roleRef"], Columns = BindingColumns,
            Validate = (o, old, e) =>
            {
                var ns = o.Str("metadata.namespace") ?? "";
                ValidateBinding(o, old, e, ["Role", "ClusterRole"], ns);
                CheckBindingEscalation(o, "rolebindings", ns);
            },
        });
    }

    /// <summary>RBAC names are path segments (ValidatePathSegmentName): anything but "." / ".." and without "/" or "%".</summary>
    static string? PathSegmentName(string name)
    {
        if (name is "." or "..") return $"may not be '{name}'";
        if (name.Contains('/')) return "may not contain '/'";
        if (name.Contains('%')) return "may not contain '%'";
        return null;
    }

    static void ValidateRules(JsonObject o, List<FieldError> e, bool namespaced)
    {
        var i = 0;
        foreach (var rule in o.Objects("rules"))
        {
            var p = $"rules[{i++}]";
            if (rule.Arr("verbs").Count == 0) e.Add(FieldError.Required(p + ".verbs", "verbs must contain at least one value"));
            var urls = rule.Arr("nonResourceURLs");
            if (urls.Count > 0)
            {
                if (namespaced) e.Add(new FieldError(p + ".nonResourceURLs", "FieldValueInvalid", $"Invalid value: []string{{{string.Join(", ", urls.Select(u => $"\"{u}\""))}}}: namespaced rules cannot apply to non-resource URLs"));
                if (rule.Arr("apiGroups").Count > 0 || rule.Arr("resources").Count > 0)
                    e.Add(new FieldError(p + ".nonResourceURLs", "FieldValueInvalid", $"Invalid value: []string{{{string.Join(", ", urls.Select(u => $"\"{u}\""))}}}: rules cannot apply to both regular resources and non-resource URLs"));
                continue;
            }
            if (rule.Arr("apiGroups").Count == 0) e.Add(FieldError.Required(p + ".apiGroups", "resource rules must supply at least one api group"));
            if (rule.Arr("resources").Count == 0) e.Add(FieldError.Required(p + ".resources", "resource rules must supply at least one resource"));
        }
    }

    static void ValidateBinding(JsonObject o, JsonObject? old, List<FieldError> e, string[] kinds, string ns)
    {
        var kind = o.Str("roleRef.kind");
        if (o["roleRef"] is not JsonObject) e.Add(FieldError.Required("roleRef"));
        else
        {
            if (o.Str("roleRef.apiGroup") != G) e.Add(FieldError.NotSupported("roleRef.apiGroup", o.Str("roleRef.apiGroup") ?? "", [G]));
            if (kind is null || Array.IndexOf(kinds, kind) < 0) e.Add(FieldError.NotSupported("roleRef.kind", kind ?? "", kinds));
            if (string.IsNullOrEmpty(o.Str("roleRef.name"))) e.Add(FieldError.Required("roleRef.name"));
        }
        if (old is not null && old["roleRef"] is JsonObject oldRef && o["roleRef"] is JsonObject newRef && !JsonNode.DeepEquals(oldRef, newRef))
            e.Add(new FieldError("roleRef", "FieldValueInvalid", $"Invalid value: {RoleRefGo(newRef)}: cannot change roleRef"));
        var i = 0;
        foreach (var s in o.Objects("subjects"))
        {
            var p = $"subjects[{i++}]";
            if (string.IsNullOrEmpty(s.Str("name"))) e.Add(FieldError.Required(p + ".name"));
            switch (s.Str("kind"))
            {
                case "ServiceAccount":
                    if (!string.IsNullOrEmpty(s.Str("apiGroup"))) e.Add(FieldError.NotSupported(p + ".apiGroup", s.Str("apiGroup"), [""]));
                    if (ns.Length == 0 && string.IsNullOrEmpty(s.Str("namespace"))) e.Add(FieldError.Required(p + ".namespace"));
                    break;
                case "User" or "Group":
                    if (s.Str("apiGroup") != G) e.Add(FieldError.NotSupported(p + ".apiGroup", s.Str("apiGroup") ?? "", [G]));
                    break;
                default:
                    e.Add(FieldError.NotSupported(p + ".kind", s.Str("kind") ?? "", ["ServiceAccount", "User", "Group"]));
                    break;
            }
        }
    }

    static string RoleRefGo(JsonObject r) =>
        $"rbac.RoleRef{{APIGroup:\"{r.Str("apiGroup")}\", Kind:\"{r.Str("kind")}\", Name:\"{r.Str("name")}\"}}";

    static readonly PolicyRule[] FullAuthority =
        [new(["*"], ["*"], ["*"], [], []), new(["*"], [], [], [], ["*"])];

    static void CheckRoleEscalation(JsonObject o, string plural, string ns)
    {
        if (RequestUser.Current is not { User.IsMaster: false } cur) return;
        var name = o.Str("metadata.name") ?? "";
        if (cur.Authorizer.Authorize(cur.User, new RequestAttributes("escalate", true, ApiGroup: G, ApiVersion: "v1", Resource: plural, Namespace: ns, Name: name)).Allowed) return;
        var wanted = PolicyRule.ListFromJson(o["rules"]);
        if (o["aggregationRule"] is JsonObject) wanted = [.. wanted, .. FullAuthority];
        ConfirmNoEscalation(cur, plural, ns, name, wanted);
    }

    static void CheckBindingEscalation(JsonObject o, string plural, string ns)
    {
        if (RequestUser.Current is not { User.IsMaster: false } cur) return;
        var name = o.Str("metadata.name") ?? "";
        var kind = o.Str("roleRef.kind") ?? "";
        var roleName = o.Str("roleRef.name") ?? "";
        var rolePlural = kind == "Role" ? "roles" : "clusterroles";
        if (cur.Authorizer.Authorize(cur.User, new RequestAttributes("bind", true, ApiGroup: G, ApiVersion: "v1", Resource: rolePlural, Namespace: ns, Name: roleName)).Allowed) return;
        var rules = cur.Authorizer.RoleRules(kind, ns, roleName) ?? throw ApiException.NotFound(G, rolePlural, roleName);
        ConfirmNoEscalation(cur, plural, ns, name, rules);
    }

    /// <summary>kube's ConfirmNoEscalation: every rule wanted must be covered by the user's own rules in that namespace.</summary>
    static void ConfirmNoEscalation(RequestUser cur, string plural, string ns, string name, IReadOnlyList<PolicyRule> wanted)
    {
        var (held, errors) = cur.Authorizer.RulesFor(cur.User, ns);
        var missing = PolicyRule.Uncovered(held, wanted);
        if (missing.Count == 0) return;
        var msg = $"user \"{cur.User.Name}\" (groups={cur.User.GroupsQuoted}) is attempting to grant RBAC permissions not currently held:\n" +
            string.Join("\n", Compact(missing).Select(r => r.ToString()).Order(StringComparer.Ordinal));
        if (errors.Count > 0) msg += $"; resolution errors: [{string.Join(" ", errors)}]";
        throw ApiException.Forbidden(G, plural, name, msg);
    }

    /// <summary>Merges the verbs of broken-down rules that name the same group, resource and name (kube's CompactRules).</summary>
    static IEnumerable<PolicyRule> Compact(List<PolicyRule> atoms) =>
        atoms.GroupBy(a => (string.Join(",", a.ApiGroups), string.Join(",", a.Resources), string.Join(",", a.ResourceNames), string.Join(",", a.NonResourceUrls)))
            .Select(g => g.First() with { Verbs = [.. g.SelectMany(a => a.Verbs).Distinct()] });
}
