using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Berth.Cluster.Security;
using Berth.Cluster.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Logging;

namespace Berth.Cluster.Api;

/// <summary>
/// The HTTPS front of the API: Kestrel (slim builder, no reflection), TLS with the server's
/// certificate, then <see cref="RequestSecurity"/> (authentication by bearer token, ServiceAccount
/// token or a client certificate issued by the server's CA; impersonation; RBAC authorization):
/// anonymous requests get a 401 Status, denied ones a 403.
/// </summary>
public sealed class ApiServer : IAsyncDisposable
{
    readonly WebApplication app;
    public ApiHandler Handler { get; }

    readonly IPEndPoint endpoint;

    /// <summary>RBAC over the store: started with the server, it keeps the roles and bindings in memory.</summary>
    public RbacAuthorizer Authorizer { get; }

    ApiServer(WebApplication app, ApiHandler handler, IPEndPoint endpoint, RbacAuthorizer authorizer)
    {
        this.app = app; Handler = handler; this.endpoint = endpoint; Authorizer = authorizer;
    }

    public static ApiServer Create(IStore store, ServerCredentials creds, IPEndPoint endpoint, ApiLimits? limits = null)
    {
        var registry = BuiltinResources.Create();
        var discovery = new Discovery(registry, $"{endpoint.Address}:{endpoint.Port}");
        var handler = new ApiHandler(store, registry, discovery, limits ?? new ApiLimits());
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = 4 * (limits ?? new ApiLimits()).MaxRequestBytes;
            k.Limits.MaxRequestHeadersTotalSize = 64 * 1024;
            k.Listen(endpoint, lo => lo.UseHttps(new HttpsConnectionAdapterOptions
            {
                ServerCertificate = creds.Serving,
                ClientCertificateMode = ClientCertificateMode.AllowCertificate,
                ClientCertificateValidation = (cert, _, _) => Pki.IsIssuedBy(cert, creds.Ca),
            }));
        });
        var app = builder.Build();
        var authorizer = new RbacAuthorizer(store);
        var tokens = new ServiceAccountTokens(creds.Ca);
        handler.Tokens = tokens;
        var security = new RequestSecurity(store, authorizer, tokens, creds.AdminToken);
        app.Run(async ctx =>
        {
            try { RequestUser.Current = await security.AdmitAsync(ctx); }
            catch (ApiException e)
            {
                await ApiHandler.WriteJsonAsync(ctx, e.Code, e.ToStatus());
                return;
            }
            catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested) { return; }
            await handler.HandleAsync(ctx);
        });
        return new ApiServer(app, handler, endpoint, authorizer);
    }

    /// <summary>Loads the RBAC state, then serves.</summary>
    public async Task StartAsync(CancellationToken ct)
    {
        await Authorizer.StartAsync(ct);
        await app.StartAsync(ct);
    }

    public async ValueTask DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        await app.StopAsync(cts.Token);
        await app.DisposeAsync();
        Handler.StopBackground();
        await Authorizer.DisposeAsync();
    }

    /// <summary>The first address of the service range: the "kubernetes" Service's cluster IP (k3s's).</summary>
    public const string KubernetesServiceIp = "10.43.0.1";

    /// <summary>
    /// Creates what every cluster has: the namespaces default, kube-system, kube-public and kube-node-lease,
    /// the default ClusterRoles and ClusterRoleBindings (<see cref="BootstrapPolicy"/>),
    /// and the "kubernetes" Service in default (cluster IP 10.43.0.1, port 443) with Endpoints and an
    /// EndpointSlice naming this server's address, as the API server maintains them.
    /// </summary>
    public async Task BootstrapAsync(CancellationToken ct)
    {
        foreach (var ns in new[] { "default", "kube-system", "kube-public", "kube-node-lease" })
            await Handler.CreateIfAbsentAsync("", "v1", "namespaces", null, new JsonObject { ["metadata"] = new JsonObject { ["name"] = ns } }, ct);
        foreach (var role in BootstrapPolicy.ClusterRoles())
            await Handler.CreateIfAbsentAsync(RbacAuthorizer.Group, "v1", "clusterroles", null, role, ct);
        foreach (var binding in BootstrapPolicy.ClusterRoleBindings())
            await Handler.CreateIfAbsentAsync(RbacAuthorizer.Group, "v1", "clusterrolebindings", null, binding, ct);
        var labels = new JsonObject { ["component"] = "apiserver", ["provider"] = "kubernetes" };
        await Handler.CreateIfAbsentAsync("", "v1", "services", "default", new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = "kubernetes", ["namespace"] = "default", ["labels"] = labels.DeepClone() },
            ["spec"] = new JsonObject
            {
                ["clusterIP"] = KubernetesServiceIp,
                ["ports"] = new JsonArray(new JsonObject { ["name"] = "https", ["port"] = 443, ["protocol"] = "TCP", ["targetPort"] = endpoint.Port }),
            },
        }, ct);
        var address = endpoint.Address.Equals(IPAddress.Any) ? IPAddress.Loopback.ToString() : endpoint.Address.ToString();
        await Handler.CreateIfAbsentAsync("", "v1", "endpoints", "default", new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = "kubernetes", ["namespace"] = "default", ["labels"] = new JsonObject { ["endpointslice.kubernetes.io/skip-mirror"] = "true" } },
            ["subsets"] = new JsonArray(new JsonObject
            {
                ["addresses"] = new JsonArray(new JsonObject { ["ip"] = address }),
                ["ports"] = new JsonArray(new JsonObject { ["name"] = "https", ["port"] = endpoint.Port, ["protocol"] = "TCP" }),
            }),
        }, ct);
        await Handler.CreateIfAbsentAsync("discovery.k8s.io", "v1", "endpointslices", "default", new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = "kubernetes", ["namespace"] = "default", ["labels"] = new JsonObject { ["kubernetes.io/service-name"] = "kubernetes" } },
            ["addressType"] = endpoint.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? "IPv6" : "IPv4",
            ["endpoints"] = new JsonArray(new JsonObject { ["addresses"] = new JsonArray(address), ["conditions"] = new JsonObject { ["ready"] = true } }),
            ["ports"] = new JsonArray(new JsonObject { ["name"] = "https", ["port"] = endpoint.Port, ["protocol"] = "TCP" }),
        }, ct);
    }
}
