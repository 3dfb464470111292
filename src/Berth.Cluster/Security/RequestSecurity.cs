using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using Berth.Cluster.Api;
using Berth.Cluster.Storage;
using Microsoft.AspNetCore.Http;

namespace Berth.Cluster.Security;

/// <summary>The user of the request being served (flows with the request's async calls), and this server's authorizer.</summary>
public sealed record RequestUser(UserInfo User, RbacAuthorizer Authorizer)
{
    static readonly AsyncLocal<RequestUser?> current = new();

    /// <summary>Null outside an HTTP request (the server's own controllers and bootstrap).</summary>
    public static RequestUser? Current { get => current.Value; set => current.Value = value; }
}

/// <summary>
/// Every request's way in, as kube-apiserver's filter chain: authentication (the admin token, a
/// ServiceAccount token this server signed, or a client certificate its CA issued: CN is the user, O the
/// groups), impersonation (Impersonate-User/-Group/-Uid headers, each allowed by the `impersonate`
/// verb), then authorization (system:masters at once, everyone else through RBAC). A refusal is a
/// Kubernetes Status: 401 Unauthorized, or 403 Forbidden with kube's message.
/// </summary>
public sealed class RequestSecurity(IStore store, RbacAuthorizer rbac, ServiceAccountTokens tokens, string adminToken)
{
    readonly byte[] admin = Encoding.UTF8.GetBytes(adminToken);
    readonly ConditionalWeakTable<X509Certificate2, UserInfo> certUsers = new();
    readonly ConcurrentDictionary<string, (UserInfo User, DateTimeOffset Until)> tokenUsers = new();

    public RbacAuthorizer Authorizer => rbac;
    public ServiceAccountTokens Tokens => tokens;

    /// <summary>
    /// Authenticates and authorizes: the request's user, else the Status is thrown. The caller makes it
    /// <see cref="RequestUser.Current"/> (an async method's AsyncLocal change does not reach its caller).
    /// </summary>
    public async ValueTask<RequestUser> AdmitAsync(HttpContext ctx)
    {
        var user = await AuthenticateAsync(ctx) ?? throw new ApiException(401, "Unauthorized", "Unauthorized");
        var h = ctx.Request.Headers;
        if (h.ContainsKey("Impersonate-User") || h.ContainsKey("Impersonate-Group") || h.ContainsKey("Impersonate-Uid"))
            user = await ImpersonateAsync(ctx, user);
        var admitted = ReferenceEquals(user, UserInfo.Admin) ? AdminUser : new RequestUser(user, rbac);
        if (user.IsMaster) return admitted; // the hot path: the admin's requests never reach RBAC
        var a = RequestAttributes.FromRequest(ctx.Request.Method, ctx.Request.Path.Value ?? "/", IsTrue(ctx.Request.Query["watch"].ToString()));
        var d = await rbac.AuthorizeAsync(user, a, ctx.RequestAborted);
        if (!d.Allowed) throw Forbidden(user, a, d.Reason);
        // a write of a role or binding is checked against the user's rules (escalation): those must be current
        if (a.ApiGroup == RbacAuthorizer.Group && a.Verb is "create" or "update" or "patch") await rbac.CatchUpAsync(ctx.RequestAborted);
        // a GET (WebSocket) to pods/exec, attach or portforward also needs create, as kube 1.31+ requires
        if (a is { Verb: "get", Resource: "pods", Subresource: "exec" or "attach" or "portforward" })
        {
            var create = a with { Verb = "create" };
            d = await rbac.AuthorizeAsync(user, create, ctx.RequestAborted);
            if (!d.Allowed) throw Forbidden(user, create, d.Reason);
        }
        return admitted;
    }

    RequestUser? adminUser;
    RequestUser AdminUser => adminUser ??= new RequestUser(UserInfo.Admin, rbac);

    static bool IsTrue(string s) => s is "true" or "1" or "True";

    /// <summary>kube's responsewriters.Forbidden: the Status for a denied request.</summary>
    public static ApiException Forbidden(UserInfo user, RequestAttributes a, string reason)
    {
        string msg;
        if (!a.IsResourceRequest) msg = $"User \"{user.Name}\" cannot {a.Verb} path \"{a.Path}\"";
        else if (a.Namespace.Length > 0) msg = $"User \"{user.Name}\" cannot {a.Verb} resource \"{a.CombinedResource}\" in API group \"{a.ApiGroup}\" in the namespace \"{a.Namespace}\"";
        else msg = $"User \"{user.Name}\" cannot {a.Verb} resource \"{a.CombinedResource}\" in API group \"{a.ApiGroup}\" at the cluster scope";
        if (reason.Length > 0) msg += ": " + reason;
        if (!a.IsResourceRequest || a.Resource.Length == 0) return new ApiException(403, "Forbidden", "forbidden: " + msg, new JsonObject());
        return a.Name.Length > 0
            ? ApiException.Forbidden(a.ApiGroup, a.Resource, a.Name, msg)
            : new ApiException(403, "Forbidden", $"{(a.ApiGroup.Length == 0 ? a.Resource : a.Resource + "." + a.ApiGroup)} is forbidden: {msg}", Details(a));
    }

    static JsonObject Details(RequestAttributes a)
    {
        var d = new JsonObject();
        if (a.ApiGroup.Length > 0) d["group"] = a.ApiGroup;
        d["kind"] = a.Resource;
        return d;
    }

    async ValueTask<UserInfo?> AuthenticateAsync(HttpContext ctx)
    {
        var auth = ctx.Request.Headers.Authorization.ToString();
        if (auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            var token = auth[7..].Trim();
            if (CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(token), admin)) return UserInfo.Admin;
            return await ServiceAccountUserAsync(token, ctx.RequestAborted);
        }
        // Kestrel accepted the certificate only if our CA issued it (ClientCertificateValidation).
        if (ctx.Connection.ClientCertificate is { } cert) return certUsers.GetValue(cert, FromCertificate);
        return null;
    }

    /// <summary>A client certificate's user: CN is the name, each O a group (kube's x509 authenticator).</summary>
    public static UserInfo FromCertificate(X509Certificate2 cert)
    {
        var cn = cert.GetNameInfo(X509NameType.SimpleName, false);
        var groups = new List<string>();
        foreach (var rdn in cert.SubjectName.EnumerateRelativeDistinguishedNames())
            if (rdn.GetSingleElementType().Value == "2.5.4.10" && rdn.GetSingleElementValue() is { } o) groups.Add(o);
        if (cn == "admin" && groups.Count == 1 && groups[0] == UserInfo.Masters) return UserInfo.Admin;
        groups.Add(UserInfo.Authenticated);
        return new UserInfo(cn, [.. groups]);
    }

    /// <summary>The ServiceAccount a token this server signed names, if it still exists with the same uid (checked at most every 10 s per token).</summary>
    async ValueTask<UserInfo?> ServiceAccountUserAsync(string token, CancellationToken ct)
    {
        var now = DateTimeOffset.UtcNow;
        if (tokenUsers.TryGetValue(token, out var cached) && cached.Until > now) return cached.User;
        if (tokens.Verify(token, now) is not { } claims) return null;
        var e = await store.GetAsync($"/registry/serviceaccounts/{claims.Namespace}/{claims.Name}", ct);
        if (e is null) return null;
        var uid = JsonNode.Parse(e.Value)?["metadata"]?["uid"]?.GetValue<string>() ?? "";
        if (claims.Uid.Length > 0 && uid != claims.Uid) return null;
        var user = UserInfo.ServiceAccount(claims.Namespace, claims.Name, uid);
        if (tokenUsers.Count > 10_000) tokenUsers.Clear();
        tokenUsers[token] = (user, now.AddSeconds(10) < claims.Expires ? now.AddSeconds(10) : claims.Expires);
        return user;
    }

    /// <summary>kube's impersonation filter: each of the asked user, groups and uid must be allowed to the requester by the `impersonate` verb.</summary>
    async ValueTask<UserInfo> ImpersonateAsync(HttpContext ctx, UserInfo requester)
    {
        var h = ctx.Request.Headers;
        var name = h["Impersonate-User"].ToString();
        var groups = h["Impersonate-Group"].Where(g => !string.IsNullOrEmpty(g)).Select(g => g!).ToList();
        var uid = h["Impersonate-Uid"].ToString();
        if (name.Length == 0)
            throw ApiException.BadRequest($"requested [{string.Join(" ", groups.Select(g => "{Group " + g + "}"))}] without impersonating a user");
        var checks = new List<RequestAttributes>();
        if (UserInfo.SplitServiceAccount(name) is { } sa)
            checks.Add(new RequestAttributes("impersonate", true, ApiVersion: "v1", Resource: "serviceaccounts", Namespace: sa.Ns, Name: sa.Name));
        else checks.Add(new RequestAttributes("impersonate", true, ApiVersion: "v1", Resource: "users", Name: name));
        foreach (var g in groups) checks.Add(new RequestAttributes("impersonate", true, ApiVersion: "v1", Resource: "groups", Name: g));
        if (uid.Length > 0) checks.Add(new RequestAttributes("impersonate", true, ApiGroup: "authentication.k8s.io", ApiVersion: "v1", Resource: "uids", Name: uid));
        foreach (var a in checks)
        {
            var d = await rbac.AuthorizeAsync(requester, a, ctx.RequestAborted);
            if (!d.Allowed) throw Forbidden(requester, a, d.Reason);
        }
        if (groups.Count == 0 && UserInfo.SplitServiceAccount(name) is { } s)
            return UserInfo.ServiceAccount(s.Ns, s.Name, uid);
        if (name != "system:anonymous" && !groups.Contains(UserInfo.Authenticated)) groups.Add(UserInfo.Authenticated);
        return new UserInfo(name, [.. groups], uid);
    }
}
