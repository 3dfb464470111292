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
/// certificate, authentication by bearer token or a client certificate issued by the server's CA;
/// anonymous requests get a 401 Status.
/// </summary>
public sealed class ApiServer : IAsyncDisposable
{
    readonly WebApplication app;
    public ApiHandler Handler { get; }

    ApiServer(WebApplication app, ApiHandler handler) { this.app = app; Handler = handler; }

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
        var token = Encoding.UTF8.GetBytes(creds.AdminToken);
        app.Run(async ctx =>
        {
            if (!Authenticated(ctx, token))
            {
                await ApiHandler.WriteJsonAsync(ctx, 401, ApiException.Status(401, "Unauthorized", "Unauthorized", null));
                return;
            }
            await handler.HandleAsync(ctx);
        });
        return new ApiServer(app, handler);
    }

    static bool Authenticated(HttpContext ctx, byte[] token)
    {
        var auth = ctx.Request.Headers.Authorization.ToString();
        if (auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(auth[7..].Trim()), token);
        // Kestrel accepted the certificate only if our CA issued it (ClientCertificateValidation).
        return ctx.Connection.ClientCertificate is not null;
    }

    public Task StartAsync(CancellationToken ct) => app.StartAsync(ct);

    public async ValueTask DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        await app.StopAsync(cts.Token);
        await app.DisposeAsync();
    }

    /// <summary>Creates the namespaces every cluster has (default, kube-system, kube-public, kube-node-lease).</summary>
    public async Task BootstrapAsync(CancellationToken ct)
    {
        foreach (var ns in new[] { "default", "kube-system", "kube-public", "kube-node-lease" })
            await Handler.CreateIfAbsentAsync("", "v1", "namespaces", null, new JsonObject { ["metadata"] = new JsonObject { ["name"] = ns } }, ct);
    }
}
