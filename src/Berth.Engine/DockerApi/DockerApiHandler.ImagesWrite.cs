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
        var images = new ImageManager(DataRoot);
        var store = images.Store;
        var result = new List<ImageDeleteItem>();
        var containers = await Blocking(Containers.List);
        using (store.LockExclusive())
        {
            var img = ResolveImage(input);
            var byName = ImageReference.TryParse(input, out var r, out _) && img.Names.Contains(r.WithDefaultTag());
            var names = byName ? [r.WithDefaultTag()] : img.Names.ToList();
            var lastName = names.Count >= img.Names.Count;
            var users = containers.Where(c => c.Image == img.Id).ToList();
            if (lastName && users.Count > 0 && !force)
                throw new ApiError(409, $"conflict: unable to remove repository reference \"{input}\" (must force) - container {users[0].ShortId} is using its referenced image {Short(img.Id)}");
            if (!byName && img.Names.Select(n => n.Name).Distinct().Count() > 1 && !force)
                throw new ApiError(409, $"conflict: unable to delete {Short(img.Id)} (must be forced) - image is referenced in multiple repositories");
            foreach (var n in names)
            {
                images.Untag(img, n);
                result.Add(new ImageDeleteItem { Untagged = n.FamiliarString });
            }
            if (img.Names.Count == 0) store.DeleteRecord(img.Record.Target.Digest);
            if (lastName && users.Count == 0)
            {
                // every name is gone (lastName): the record goes, with what only it used
                IReadOnlyList<string> chain = [];
                try { chain = ChainId.Chain((await ImageLayers.ReadAsync(store, img.Record, ctx.RequestAborted)).DiffIds); }
                catch (Exception e) when (e is ImageException or FormatException or IOException) { }
                var snapshotter = OverlaySnapshotter.Create(DataRoot);
                var before = snapshotter.Layers().ToHashSet(StringComparer.Ordinal);
                await images.DeleteAsync(img, ctx.RequestAborted);
                result.Add(new ImageDeleteItem { Deleted = img.Id });
                // then, as docker lists them, each layer that went with it (top first, by chain id)
                var after = snapshotter.Layers().ToHashSet(StringComparer.Ordinal);
                foreach (var layer in chain.Reverse())
                    if (before.Contains(layer) && !after.Contains(layer)) result.Add(new ImageDeleteItem { Deleted = layer });
            }
        }
        await WriteJsonAsync(ctx, 200, result, DockerJson.Default.ListImageDeleteItem);
    }

    static string Short(string id) => id.StartsWith("sha256:", StringComparison.Ordinal) ? id[7..19] : id[..Math.Min(12, id.Length)];

    async Task PruneImages(HttpContext ctx, string[] _)
    {
        var f = Filters(ctx);
        OnlyFilters(f, "dangling", "until", "label");
        var store = Images;
        var result = new PruneImagesResponse();
        // dangling=false (`prune -a`): every image no container uses goes, its names first
        var unusedToo = f.TryGetValue("dangling", out var dv) && dv.Any(v => v is "false" or "0");
        var used = unusedToo ? (await Blocking(Containers.List)).Select(c => c.Image).ToHashSet(StringComparer.Ordinal) : [];
        using (store.LockExclusive())
        {
            if (unusedToo)
            {
                var images = new ImageManager(DataRoot);
                foreach (var img in store.List().Where(i => !used.Contains(i.Id)).ToList())
                    foreach (var n in img.Names.ToList())
                    {
                        var gone = images.Untag(img, n);
                        result.ImagesDeleted.Add(new ImageDeleteItem { Untagged = n.FamiliarString });
                        if (gone is null) continue;
                        result.ImagesDeleted.Add(new ImageDeleteItem { Deleted = img.Id });
                        Berth.Engine.Events.ImageEvents.Emit(DataRoot, "delete", img.Id, img.Id);
                    }
            }
            var r = store.CollectGarbage(dangling: true);
            await ImageLayers.CollectAsync(store, OverlaySnapshotter.Create(DataRoot), ctx.RequestAborted);
            result.ImagesDeleted.AddRange(r.DeletedImages.Select(id => new ImageDeleteItem { Deleted = id }));
            result.SpaceReclaimed = r.BytesFreed;
            foreach (var id in r.DeletedImages) Berth.Engine.Events.ImageEvents.Emit(DataRoot, "delete", id, id);
            Berth.Engine.Events.ImageEvents.Pruned(DataRoot, r.BytesFreed);
        }
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
