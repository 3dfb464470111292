using System.Text;
using System.Text.Json;
using Berth.Engine.Containers;
using Berth.Images;
using Berth.Images.Content;
using Berth.Images.Reference;
using Berth.Images.Registry;
using Berth.Images.Snapshots;
using Microsoft.AspNetCore.Http;

namespace Berth.Engine.DockerApi;

public sealed partial class DockerApiHandler
{
    /// <summary>X-Registry-Auth: base64url JSON {username, password, serveraddress} (docker's AuthConfig).</summary>
    static RegistryCredentials? CredentialsOf(HttpContext ctx)
    {
        var header = ctx.Request.Headers["X-Registry-Auth"].ToString();
        if (header.Length == 0) return null;
        AuthConfig? a;
        try
        {
            var b64 = header.Replace('-', '+').Replace('_', '/');
            b64 = b64.PadRight(b64.Length + (4 - b64.Length % 4) % 4, '=');
            a = JsonSerializer.Deserialize(Convert.FromBase64String(b64), DockerJson.Default.AuthConfig);
        }
        catch (Exception e) when (e is FormatException or JsonException) { throw ApiError.BadRequest("invalid X-Registry-Auth header: " + e.Message); }
        return CredentialsOf(a);
    }

    static RegistryCredentials? CredentialsOf(AuthConfig? a)
    {
        if (a is null) return null;
        if (!string.IsNullOrEmpty(a.username)) return new RegistryCredentials(a.username, a.password ?? "");
        if (!string.IsNullOrEmpty(a.auth))
        {
            var text = Encoding.UTF8.GetString(Convert.FromBase64String(a.auth));
            var colon = text.IndexOf(':');
            if (colon > 0) return new RegistryCredentials(text[..colon], text[(colon + 1)..]);
        }
        return null;
    }

    static RegistryOptions RegistryFor(string domain, RegistryCredentials? creds)
    {
        var o = RegistryFor(domain);
        return creds is null ? o : new RegistryOptions { InsecureRegistries = o.InsecureRegistries, Credentials = creds };
    }

    async Task PushImage(HttpContext ctx, string[] a)
    {
        var tag = Query(ctx, "tag");
        var name = a[0];
        var input = string.IsNullOrEmpty(tag) ? name : name + ":" + tag;
        var target = ParseRef(input).WithDefaultTag();
        var store = Images;
        var progress = new JsonProgress(ctx, push: true);
        StoredImage img;
        try { img = store.Resolve(target.ToString()); }
        catch (ImageException e) when (e.Kind == ImageErrorKind.NotFound)
        {
            // as dockerd: a repository with no image at all is refused; a missing tag of one that has
            // images fails in the push's stream
            if (!store.ListNames().Any(n => n.Name.Name == target.Name))
                throw ApiError.NotFound($"An image does not exist locally with the tag: {target.FamiliarName}");
            progress.Status($"The push refers to repository [{target.Name}]");
            progress.Error($"tag does not exist: {target.FamiliarString}");
            await progress.FlushAsync();
            return;
        }
        try
        {
            var digest = await new ImageManager(DataRoot).PushAsync(img, target, RegistryFor(target.Domain, CredentialsOf(ctx)), progress, ctx.RequestAborted);
            await progress.FlushAsync();
        }
        catch (Exception e) when (e is ImageException or HttpRequestException && progress.Started)
        {
            progress.Error(e.Message);
            await progress.FlushAsync();
        }
    }

    async Task RemoveImage(HttpContext ctx, string[] a)
    {
        var force = QueryBool(ctx, "force");
        QueryBool(ctx, "noprune");
        var input = a[0];
        var store = Images;
        var containers = await Blocking(Containers.List);
        List<ImageDeleteStep> steps;
        using (store.LockExclusive())
        {
            ResolveImage(input);
            steps = await ImageRemoval.RemoveAsync(DataRoot, containers, input, force, ctx.RequestAborted);
        }
        var result = steps.Select(s => new ImageDeleteItem { Untagged = s.Untagged, Deleted = s.Deleted }).ToList();
        await WriteJsonAsync(ctx, 200, result, DockerJson.Default.ListImageDeleteItem);
    }

    static string Short(string id) => id.StartsWith("sha256:", StringComparison.Ordinal) ? id[7..19] : id[..Math.Min(12, id.Length)];

    async Task PruneImages(HttpContext ctx, string[] _)
    {
        var f = Filters(ctx);
        OnlyFilters(f, "dangling", "until", "label");
        // dangling=false is `image prune -a`: every image no container uses (the CLI's and the API's one engine code)
        var all = f.TryGetValue("dangling", out var d) && d.Any(v => v is "false" or "0");
        var report = await EngineMaintenance.PruneImagesAsync(Containers, all, ctx.RequestAborted);
        var result = new PruneImagesResponse
        {
            ImagesDeleted = report.Deleted.Select(line => line.StartsWith("untagged: ", StringComparison.Ordinal)
                ? new ImageDeleteItem { Untagged = line["untagged: ".Length..] } : new ImageDeleteItem { Deleted = line["deleted: ".Length..] }).ToList(),
            SpaceReclaimed = report.SpaceReclaimed,
        };
        await WriteJsonAsync(ctx, 200, result, DockerJson.Default.PruneImagesResponse);
    }

    /// <summary>POST /build/prune: Berth's builds keep no cache, so there is nothing to remove.</summary>
    static Task PruneBuildCache(HttpContext ctx, string[] _) =>
        WriteJsonAsync(ctx, 200, new PruneBuildCacheResponse(), DockerJson.Default.PruneBuildCacheResponse);

    /// <summary>POST /auth: checks the credentials against the registry (nothing is stored: docker's
    /// CLI keeps them in its own config.json).</summary>
    async Task Auth(HttpContext ctx, string[] _)
    {
        var a = await ReadJsonAsync(ctx, DockerJson.Default.AuthConfig) ?? throw ApiError.BadRequest("auth config cannot be empty");
        var server = a.serveraddress ?? "";
        if (server.Contains("://", StringComparison.Ordinal) && Uri.TryCreate(server, UriKind.Absolute, out var u)) server = u.IsDefaultPort ? u.Host : $"{u.Host}:{u.Port}";
        server = server.TrimEnd('/');
        if (server.Length == 0 || server is "index.docker.io" or "registry-1.docker.io") server = ImageReference.DockerHub;
        var creds = CredentialsOf(a) ?? throw ApiError.BadRequest("username and password are required");
        try
        {
            using var client = new RegistryClient(server, RegistryFor(server, creds));
            await client.VerifyCredentialsAsync(ctx.RequestAborted);
        }
        catch (ImageException e) when (e.Kind == ImageErrorKind.Unauthorized)
        {
            throw new ApiError(401, $"login attempt to {server} failed with status: 401 Unauthorized");
        }
        await WriteJsonAsync(ctx, 200, new AuthResponse { Status = "Login Succeeded" }, DockerJson.Default.AuthResponse);
    }
}
