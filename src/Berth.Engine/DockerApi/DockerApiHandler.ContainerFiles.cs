using System.Text.Json;
using Berth.Engine.Containers;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Berth.Engine.DockerApi;

/// <summary>A container's resources and files: stats, archive (docker cp), export, changes, commit —
/// each over the engine library (ContainerStats, ContainerArchive, ContainerChanges, ImageCommitter).</summary>
public sealed partial class DockerApiHandler
{
    /// <summary>The engine's tar code reads and writes streams synchronously; it runs on its own
    /// thread (<see cref="Blocking"/>), so this request may block on its body.</summary>
    static void AllowSyncIo(HttpContext ctx)
    {
        if (ctx.Features.Get<IHttpBodyControlFeature>() is { } f) f.AllowSynchronousIO = true;
    }

    // ------------------------------------------------------------------ stats

    /// <summary>GET /containers/ID/stats: a JSON sample a second (stream=true, the default), or one
    /// sample with precpu_stats filled from a sample a second before it (stream=false), or at once
    /// without precpu (one-shot=true, with stream=false).</summary>
    async Task ContainerStatsEndpoint(HttpContext ctx, string[] a)
    {
        var stream = QueryBool(ctx, "stream", dflt: true);
        var oneShot = QueryBool(ctx, "one-shot");
        if (stream && oneShot) throw ApiError.BadRequest("cannot have stream=true and one-shot=true");
        var c = await Blocking(() => Containers.Get(a[0]));
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/json";
        var ct = ctx.RequestAborted;
        ContainerStatsSample? previous = null;
        if (!stream)
        {
            // A stopped container answers an empty sample at once (docker's rule).
            if (c.State.Running && !oneShot)
            {
                previous = await Blocking(() => ContainerStats.Sample(Containers, c, null));
                await Task.Delay(1000, ct);
                c = await Blocking(() => Containers.Get(c.Id));
            }
            var s = await Blocking(() => ContainerStats.Sample(Containers, c, previous));
            await WriteStatsAsync(ctx, s, ct);
            return;
        }
        await ctx.Response.Body.FlushAsync(ct);
        while (!ct.IsCancellationRequested)
        {
            var cur = c;
            var s = await Blocking(() => ContainerStats.Sample(Containers, cur, previous));
            previous = s;
            await WriteStatsAsync(ctx, s, ct);
            await Task.Delay(1000, ct);
            // the stream ends with the container
            try { c = await Blocking(() => Containers.Get(cur.Id)); }
            catch (EngineException e) when (e.Kind == ErrorKind.NotFound) { return; }
        }
    }

    static async Task WriteStatsAsync(HttpContext ctx, ContainerStatsSample s, CancellationToken ct)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(s, StatsJsonContext.Default.ContainerStatsSample);
        await ctx.Response.Body.WriteAsync(bytes, ct);
        await ctx.Response.Body.WriteAsync("\n"u8.ToArray(), ct);
        await ctx.Response.Body.FlushAsync(ct);
    }

    // ------------------------------------------------------------------ archive

    static string ArchivePath(HttpContext ctx) =>
        Query(ctx, "path") is { Length: > 0 } p ? p : throw ApiError.BadRequest("path cannot be empty");

    const string PathStatHeader = "X-Docker-Container-Path-Stat";

    /// <summary>HEAD /containers/ID/archive: the path's stat in the X-Docker-Container-Path-Stat header.</summary>
    async Task StatArchive(HttpContext ctx, string[] a)
    {
        var path = ArchivePath(ctx);
        var stat = await Blocking(() => ContainerArchive.Stat(Containers, a[0], path));
        ctx.Response.Headers[PathStatHeader] = stat.ToHeader();
        ctx.Response.StatusCode = 200;
    }

    /// <summary>GET /containers/ID/archive: the path as a tar, its stat in the header.</summary>
    async Task GetArchive(HttpContext ctx, string[] a)
    {
        var path = ArchivePath(ctx);
        // stat first: a missing container or path is a 404 before any byte of the tar
        var c = await Blocking(() => Containers.Get(a[0]));
        var stat = await Blocking(() => ContainerArchive.Stat(Containers, c.Id, path));
        ctx.Response.Headers[PathStatHeader] = stat.ToHeader();
        await StreamTarAsync(ctx, body => ContainerArchive.Get(Containers, c.Id, path, body));
    }

    /// <summary>A tar written by engine code (synchronously, on its own thread) as the response body.</summary>
    static async Task StreamTarAsync(HttpContext ctx, Action<Stream> write)
    {
        AllowSyncIo(ctx);
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/x-tar";
        await Blocking(() =>
        {
            using var buffered = new BufferedStream(ctx.Response.Body, 1 << 16);
            write(buffered);
            buffered.Flush();
        });
    }

    /// <summary>PUT /containers/ID/archive: a tar extracted into the directory at path (which must
    /// exist); noOverwriteDirNonDir refuses to replace a directory by a non-directory or the reverse.</summary>
    async Task PutArchive(HttpContext ctx, string[] a)
    {
        var path = ArchivePath(ctx);
        var noOverwrite = QueryBool(ctx, "noOverwriteDirNonDir");
        var copyUidGid = QueryBool(ctx, "copyUIDGID");
        var c = await Blocking(() => Containers.Get(a[0]));
        AllowSyncIo(ctx);
        await Blocking(() =>
        {
            Stream input = ctx.Request.Body;
            string? spool = null;
            try
            {
                if (noOverwrite)
                {
                    // The entries are checked against the container before anything is written.
                    spool = Path.Combine(Path.GetTempPath(), $"berth-put-{Guid.NewGuid():N}.tar");
                    using (var f = File.Create(spool)) input.CopyTo(f);
                    using (var check = File.OpenRead(spool)) CheckNoOverwrite(c, path, check);
                    input = File.OpenRead(spool);
                }
                try { ContainerArchive.Put(Containers, c.Id, path, input, copyUidGid); }
                catch (EngineException e) when (e.Kind == ErrorKind.FailedPrecondition && e.Message.StartsWith("container rootfs is marked read-only", StringComparison.Ordinal))
                {
                    throw new ApiError(403, e.Message);
                }
            }
            finally
            {
                if (spool is not null) { input.Dispose(); File.Delete(spool); }
            }
        });
        ctx.Response.StatusCode = 200;
    }

    /// <summary>docker's noOverwriteDirNonDir: an entry whose kind (directory or not) differs from
    /// what exists at its place in the container is an error.</summary>
    void CheckNoOverwrite(ContainerRecord c, string dir, Stream tar)
    {
        using var reader = new System.Formats.Tar.TarReader(tar);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (reader.GetNextEntry() is { } e)
        {
            var name = e.Name.TrimEnd('/');
            if (name is "" or "." || !seen.Add(name)) continue;
            var target = dir.TrimEnd('/') + "/" + name;
            PathStat existing;
            try { existing = ContainerArchive.Stat(Containers, c.Id, target); }
            catch (EngineException ex) when (ex.Kind is ErrorKind.NotFound or ErrorKind.InvalidArgument) { continue; }
            var entryDir = e.EntryType == System.Formats.Tar.TarEntryType.Directory;
            if (existing.IsDir && !entryDir)
                throw ApiError.BadRequest($"cannot overwrite directory \"{RootfsClean(target)}\" with non-directory \"{name}\"");
            if (!existing.IsDir && entryDir)
                throw ApiError.BadRequest($"cannot overwrite non-directory \"{RootfsClean(target)}\" with directory \"{name}\"");
        }
    }

    static string RootfsClean(string p) => Berth.Linux.RootfsPath.CleanInRoot("/" + p);

    // ------------------------------------------------------------------ export / changes / commit

    /// <summary>GET /containers/ID/export: the container's filesystem as a tar.</summary>
    async Task ExportContainer(HttpContext ctx, string[] a)
    {
        var c = await Blocking(() => Containers.Get(a[0]));
        await StreamTarAsync(ctx, body => ContainerArchive.Export(Containers, c.Id, body));
    }

    /// <summary>GET /containers/ID/changes: [{Path, Kind}] with Kind 0 modified, 1 added, 2 deleted.</summary>
    async Task ContainerChangesEndpoint(HttpContext ctx, string[] a)
    {
        var list = await Blocking(() =>
        {
            var c = Containers.Get(a[0]);
            return ContainerChanges.Compute(Containers, c);
        });
        var items = list.Select(ch => new ChangeItem { Path = ch.Path, Kind = ch.ApiKind }).ToList();
        await WriteJsonAsync(ctx, 200, items, DockerJson.Default.ListChangeItem);
    }

    /// <summary>POST /commit?container=&amp;repo=&amp;tag=&amp;comment=&amp;author=&amp;pause=&amp;changes=:
    /// an image of the container's changes; a ContainerConfig body (Cmd, Entrypoint, Env, Labels,
    /// WorkingDir, User, ExposedPorts, StopSignal) applies as the matching Dockerfile instructions.</summary>
    async Task CommitContainer(HttpContext ctx, string[] _)
    {
        var container = Query(ctx, "container");
        if (string.IsNullOrEmpty(container)) throw ApiError.BadRequest("container is required (query parameter container)");
        var repo = Query(ctx, "repo") ?? "";
        var tag = Query(ctx, "tag") ?? "";
        string? reference = null;
        if (repo.Length > 0)
        {
            reference = tag.Length > 0 ? repo + ":" + tag : repo;
            var r = ParseRef(reference);
            if (r.Digest is not null) throw ApiError.BadRequest("refusing to create a tag with a digest reference");
            reference = r.WithDefaultTag().ToString();
        }
        else if (tag.Length > 0) throw ApiError.BadRequest("tag is given without repo");
        var comment = Query(ctx, "comment") ?? "";
        var author = Query(ctx, "author") ?? "";
        var pause = QueryBool(ctx, "pause", dflt: true);
        var changes = ctx.Request.Query.TryGetValue("changes", out var cv)
            ? cv.Where(x => !string.IsNullOrEmpty(x)).SelectMany(x => x!.Split('\n', StringSplitOptions.RemoveEmptyEntries)).ToList()
            : [];
        var body = await ReadJsonAsync(ctx, DockerJson.Default.CommitConfig);
        if (body is not null) changes.AddRange(ConfigAsChanges(body));
        var c = await Blocking(() => Containers.Get(container));
        if (c.ImageLayer is null) throw new ApiError(409, $"container {c.BareName} has no image (--rootfs): it cannot be committed");
        string id;
        try { id = await Blocking(() => ImageCommitter.Commit(Containers, c.Id, reference, author, comment, changes, pause)); }
        catch (EngineException e) when (e.Kind == ErrorKind.InvalidArgument) { throw ApiError.BadRequest(e.Message); }
        await WriteJsonAsync(ctx, 201, new IdResponse { Id = id }, DockerJson.Default.IdResponse);
    }

    /// <summary>A commit body's config as Dockerfile instructions (JSON forms, so nothing is re-split).</summary>
    static IEnumerable<string> ConfigAsChanges(CommitConfig b)
    {
        static string Json(List<string> l) => JsonSerializer.Serialize(l, DockerJson.Default.ListString);
        if (b.Cmd is { } cmd) yield return "CMD " + Json(cmd);
        if (b.Entrypoint is { } ep) yield return "ENTRYPOINT " + Json(ep);
        // KEY=VALUE, or KEY VALUE when the value has spaces (the instruction's two forms)
        static string Pair(string k, string v) => v.Contains(' ') && !v.Contains('=') ? $"{k} {v}" : $"{k}={v}";
        foreach (var e in b.Env ?? [])
            if (e.IndexOf('=') is var i and > 0) yield return "ENV " + Pair(e[..i], e[(i + 1)..]);
        foreach (var (k, v) in b.Labels ?? []) yield return "LABEL " + Pair(k, v);
        if (!string.IsNullOrEmpty(b.WorkingDir)) yield return "WORKDIR " + b.WorkingDir;
        if (!string.IsNullOrEmpty(b.User)) yield return "USER " + b.User;
        if (!string.IsNullOrEmpty(b.StopSignal)) yield return "STOPSIGNAL " + b.StopSignal;
        foreach (var p in b.ExposedPorts?.Keys ?? (IEnumerable<string>)[]) yield return "EXPOSE " + p;
    }
}
