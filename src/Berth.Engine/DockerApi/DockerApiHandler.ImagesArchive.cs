using System.Text.Json;
using Berth.Engine.Containers;
using Berth.Images;
using Berth.Images.Archive;
using Berth.Images.Content;
using Berth.Images.Snapshots;
using Microsoft.AspNetCore.Http;

namespace Berth.Engine.DockerApi;

/// <summary>Images to and from tar archives (docker save/load, over the image library's
/// <see cref="ImageArchive"/>) and image history.</summary>
public sealed partial class DockerApiHandler
{
    /// <summary>GET /images/NAME/get and GET /images/get?names=A&amp;names=B: a docker-archive tar.
    /// Every name is resolved before the first byte, so an unknown one is a 404.</summary>
    async Task SaveImages(HttpContext ctx, string[] a)
    {
        List<string> names = a.Length > 0 ? [a[0]]
            : ctx.Request.Query.TryGetValue("names", out var nv) ? nv.Where(n => !string.IsNullOrEmpty(n)).Select(n => n!).ToList() : [];
        if (names.Count == 0) throw ApiError.BadRequest("at least one image name is required (query parameter names)");
        foreach (var n in names) ResolveImage(n);
        AllowSyncIo(ctx);
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/x-tar";
        await new ImageManager(DataRoot).SaveAsync(ctx.Response.Body, names, ArchiveFormat.DockerArchive, ctx.RequestAborted);
    }

    /// <summary>POST /images/load?quiet=: loads a docker-archive or OCI layout tar; the answer is
    /// docker's JSON message stream ({"stream":"Loaded image: …\n"}), a failure its last message
    /// (as dockerd writes it). A load that fails leaves nothing behind (ImageArchive's guarantee).</summary>
    async Task LoadImages(HttpContext ctx, string[] _)
    {
        QueryBool(ctx, "quiet");
        if (Query(ctx, "platform") is { Length: > 0 } plat && plat != $"linux/{Arch}")
            throw ApiError.BadRequest($"platform \"{plat}\": only linux/{Arch} is loaded");
        AllowSyncIo(ctx);
        var archive = new ImageManager(DataRoot);
        var messages = new List<ProgressMessage>();
        try
        {
            var loaded = await archive.LoadAsync(ctx.Request.Body, ctx.RequestAborted);
            foreach (var img in loaded)
            {
                if (img.Names.Count == 0) messages.Add(new ProgressMessage { stream = $"Loaded image ID: {img.Id}\n" });
                foreach (var n in img.Names) messages.Add(new ProgressMessage { stream = $"Loaded image: {n.FamiliarString}\n" });
            }
        }
        catch (Exception e) when (e is ImageException or InvalidDataException or FormatException or EndOfStreamException)
        {
            // the rest of a failed upload is read and dropped, so the answer reaches the client
            try { await ctx.Request.Body.CopyToAsync(Stream.Null, ctx.RequestAborted); }
            catch (Exception x) when (x is IOException or BadHttpRequestException) { }
            messages.Add(new ProgressMessage { error = e.Message, errorDetail = new ErrorDetail { message = e.Message } });
        }
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/json";
        using var ms = new MemoryStream();
        foreach (var m in messages)
        {
            JsonSerializer.Serialize(ms, m, DockerJson.Default.ProgressMessage);
            ms.WriteByte((byte)'\n');
        }
        await ctx.Response.Body.WriteAsync(ms.ToArray(), ctx.RequestAborted);
    }

    static StoredImage? TryResolve(ImageStore store, string id)
    {
        try { return store.Resolve(id); }
        catch (ImageException) { return null; }
    }

    /// <summary>GET /images/NAME/history: the config's history, newest first; entries that made a
    /// layer carry that layer's size (its blob size in the store); the newest the image ID and tags, the
    /// ones below its parents' (<see cref="ImageParents"/>).</summary>
    async Task ImageHistory(HttpContext ctx, string[] a)
    {
        var store = Images;
        var img = ResolveImage(a[0]);
        var (layers, config) = await ImageLayers.ReadWithConfigAsync(store, img.Record, ctx.RequestAborted);
        var items = new List<HistoryItem>();
        var layer = 0;
        foreach (var h in config.History ?? [])
        {
            long size = 0;
            if (h.EmptyLayer != true && layer < layers.Count) size = layers[layer++].Size;
            items.Add(new HistoryItem
            {
                Id = "<missing>",
                Created = UnixSeconds(h.Created),
                CreatedBy = h.CreatedBy ?? "",
                Size = size,
                Comment = h.Comment ?? "",
            });
        }
        items.Reverse();
        // as dockerd: the image's ID on its own line, then its parent's (and so on) on the lines below,
        // while the parents are images here; the rest are <missing>
        StoredImage? at = img;
        foreach (var item in items)
        {
            if (at is null) break;
            item.Id = at.Id;
            var tags = at.Names.Where(n => n.Tag is not null && n.Digest is null).Select(n => n.FamiliarString).ToList();
            item.Tags = tags.Count > 0 ? tags : null;
            at = ImageParents.Get(DataRoot, at.Record) is { } parent ? TryResolve(store, parent) : null;
        }
        await WriteJsonAsync(ctx, 200, items, DockerJson.Default.ListHistoryItem);
    }
}
