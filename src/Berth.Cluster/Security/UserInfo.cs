namespace Berth.Cluster.Security;

/// <summary>Who a request authenticated as (user.Info): a name and groups.</summary>
public sealed record UserInfo(string Name, string[] Groups, string Uid = "")
{
    public const string Masters = "system:masters";
    public const string Authenticated = "system:authenticated";
    public const string ServiceAccountPrefix = "system:serviceaccount:";

    /// <summary>The admin kubeconfig's identity (certificate CN=admin, O=system:masters; the admin token).</summary>
    public static readonly UserInfo Admin = new("admin", [Masters, Authenticated]);

    /// <summary>In system:masters: every request is allowed before RBAC is asked, as kube-apiserver's privileged group.</summary>
    public bool IsMaster { get; } = Array.IndexOf(Groups, Masters) >= 0;

    /// <summary>The key its compiled rules are cached under (name and groups).</summary>
    public string CacheKey => cacheKey ??= Name + "\n" + string.Join('\n', Groups);
    string? cacheKey;

    /// <summary>A ServiceAccount's identity: system:serviceaccount:NS:NAME in system:serviceaccounts and system:serviceaccounts:NS.</summary>
    public static UserInfo ServiceAccount(string ns, string name, string uid = "") =>
        new($"{ServiceAccountPrefix}{ns}:{name}", ["system:serviceaccounts", $"system:serviceaccounts:{ns}", Authenticated], uid);

    /// <summary>The namespace and name of a ServiceAccount user name, or null.</summary>
    public static (string Ns, string Name)? SplitServiceAccount(string user)
    {
        if (!user.StartsWith(ServiceAccountPrefix, StringComparison.Ordinal)) return null;
        var rest = user[ServiceAccountPrefix.Length..];
        var colon = rest.IndexOf(':');
        if (colon <= 0 || colon == rest.Length - 1 || rest.IndexOf(':', colon + 1) >= 0) return null;
        return (rest[..colon], rest[(colon + 1)..]);
    }

    /// <summary>Groups as Go's %q prints a []string: ["a" "b"].</summary>
    public string GroupsQuoted => "[" + string.Join(" ", Groups.Select(g => $"\"{g}\"")) + "]";
}

/// <summary>
/// What one request asks to do, as kube-apiserver's authorizer.Attributes: a verb on a resource
/// (group, resource, subresource, namespace, name) or on a non-resource path.
/// </summary>
public sealed record RequestAttributes(string Verb, bool IsResourceRequest, string Path = "", string ApiGroup = "", string ApiVersion = "",
    string Resource = "", string Subresource = "", string Namespace = "", string Name = "")
{
    public string CombinedResource => Subresource.Length == 0 ? Resource : Resource + "/" + Subresource;

    public static RequestAttributes NonResource(string verb, string path) => new(verb, false, Path: path);

    /// <summary>
    /// The attributes of an HTTP request (kube's RequestInfoFactory): /api/V/… and /apis/G/V/… with a
    /// resource are resource requests; everything else (/api, /apis/G/V, /version, /healthz) is a path.
    /// </summary>
    public static RequestAttributes FromRequest(string method, string path, bool watchQuery)
    {
        var parts = path.Trim('/').Split('/', StringSplitOptions.RemoveEmptyEntries);
        var nonResourceVerb = method.ToLowerInvariant();
        string group = "", version;
        int at;
        if (parts.Length >= 3 && parts[0] == "api") { version = parts[1]; at = 2; }
        else if (parts.Length >= 4 && parts[0] == "apis") { group = parts[1]; version = parts[2]; at = 3; }
        else return NonResource(nonResourceVerb, path);
        var verb = method switch
        {
            "POST" => "create",
            "GET" or "HEAD" => "get",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => "",
        };
        var cur = parts[at..];
        if (cur[0] == "watch") { verb = "watch"; cur = cur[1..]; if (cur.Length == 0) return NonResource(nonResourceVerb, path); }
        var ns = "";
        if (cur[0] == "namespaces" && cur.Length >= 2)
        {
            ns = cur[1];
            // namespaces/NS/status and namespaces/NS/finalize are the namespace's own subresources
            if (cur.Length > 2 && cur[2] is not ("status" or "finalize")) cur = cur[2..];
        }
        var resource = cur[0];
        var name = cur.Length > 1 ? cur[1] : "";
        var sub = cur.Length > 2 ? cur[2] : "";
        if (name.Length == 0)
        {
            if (verb == "get") verb = watchQuery ? "watch" : "list";
            else if (verb == "delete") verb = "deletecollection";
        }
        else if (verb == "get" && watchQuery) verb = "watch";
        return new RequestAttributes(verb, true, path, group, version, resource, sub, ns, name);
    }
}
