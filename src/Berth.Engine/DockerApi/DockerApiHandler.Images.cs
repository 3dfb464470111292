using System.Net;
using System.Text.Json;
using Berth.Engine.Containers;
using Berth.Images;
using Berth.Images.Content;
using Berth.Images.Reference;
using Berth.Images.Registry;
using Berth.Oci.Image;
using Microsoft.AspNetCore.Http;

namespace Berth.Engine.DockerApi;

public sealed partial class DockerApiHandler
{
    ImageStore Images => new(DataRoot);

    /// <summary>Registry options for a request: docker treats 127.0.0.0/8 as insecure (plain HTTP
    /// allowed) by default, and so does this service; BERTH_INSECURE_REGISTRIES adds more.</summary>
    static RegistryOptions RegistryFor(string domain)
    {
        var insecure = RegistryOptions.FromEnvironment().ToHashSet(StringComparer.OrdinalIgnoreCase);
        var host = domain.Split(':')[0];
        if (host == "localhost" || (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip))) insecure.Add(domain);
        return new RegistryOptions { InsecureRegistries = insecure };
    }

    static ImageReference ParseRef(string s)
    {
        try { return ImageReference.Parse(s); }
        catch (ImageException e) { throw ApiError.BadRequest(e.Message); }
    }

    // ------------------------------------------------------------------ pull

    async Task PullImage(HttpContext ctx, string[] _)
    {
        var from = Query(ctx, "fromImage");
        if (string.IsNullOrEmpty(from))
        {
            if (Query(ctx, "fromSrc") is { Length: > 0 } src) { await ImportImage(ctx, src); return; }
            throw ApiError.BadRequest("fromImage or fromSrc is required");
        }
        var tag = Query(ctx, "tag");
        if (Query(ctx, "platform") is { Length: > 0 } plat && plat != $"linux/{Arch}")
            throw ApiError.BadRequest($"platform \"{plat}\": only linux/{Arch} is pulled");
        var input = from;
        if (!string.IsNullOrEmpty(tag)) input += tag.StartsWith("sha256:", StringComparison.Ordinal) ? "@" + tag : ":" + tag;
        var r = ParseRef(input).WithDefaultTag();
        var progress = new JsonProgress(ctx);
        var options = RegistryFor(r.Domain);
        // as dockerd: "up to date" when the name already meant the image pulled, "newer" when it is new or moved
        string? before = null;
        try { before = Images.Resolve(r.ToString()).Id; }
        catch (ImageException) { }
        try
        {
            await ContainerImages.PullAsync(DataRoot, r.ToString(), progress, ctx.RequestAborted, options);
            var after = Images.Resolve(r.ToString()).Id;
            progress.Status(progress.Transferred > 0 || before != after ? $"Status: Downloaded newer image for {r.FamiliarString}" : $"Status: Image is up to date for {r.FamiliarString}");
            await progress.FlushAsync();
        }
        catch (Exception e) when (e is EngineException or ImageException or HttpRequestException && progress.Started)
        {
            // the stream has begun: the error is its last message, as docker sends it
            progress.Error(e.Message);
            await progress.FlushAsync();
        }
        catch (Exception e) when (e is EngineException { Kind: ErrorKind.NotFound } or ImageException { Kind: ImageErrorKind.NotFound }
            && e.Message.Contains("MANIFEST_UNKNOWN", StringComparison.Ordinal))
        {
            throw ApiError.NotFound($"manifest for {r.FamiliarString} not found: manifest unknown: manifest unknown");
        }
        catch (Exception e) when (e is EngineException { Kind: ErrorKind.NotFound } or ImageException { Kind: ImageErrorKind.NotFound })
        {
            throw ApiError.NotFound($"pull access denied for {r.FamiliarName}, repository does not exist or may require 'docker login': {e.Message}");
        }
    }

    /// <summary>POST /images/create?fromSrc=-: the body is a (gzipped) tar of a root filesystem
    /// (`docker import`), with repo[:tag], message and Dockerfile changes from the query; answers
    /// docker's one progress line holding the new image's id.</summary>
    async Task ImportImage(HttpContext ctx, string src)
    {
        if (src != "-") throw ApiError.BadRequest($"importing from {src}: only the request body (fromSrc=-) is supported");
        var repo = Query(ctx, "repo") ?? "";
        if (Query(ctx, "tag") is { Length: > 0 } tag) repo += ":" + tag;
        string? reference = null;
        if (repo.Length > 0) reference = ParseRef(repo).WithDefaultTag().ToString();
        var changes = ctx.Request.Query.TryGetValue("changes", out var ch) ? ch.Where(c => !string.IsNullOrEmpty(c)).Select(c => c!).ToList() : [];
        var tmp = Path.Combine(DataRoot, "tmp");
        Directory.CreateDirectory(tmp);
        var file = Path.Combine(tmp, "import-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using (var f = File.Create(file)) await ctx.Request.Body.CopyToAsync(f, ctx.RequestAborted);
            var id = await Blocking(() =>
            {
                using var input = File.OpenRead(file);
                return ImageCommitter.Import(DataRoot, input, "-", reference, Query(ctx, "message") ?? "", changes);
            });
            var progress = new JsonProgress(ctx);
            progress.Status(id);
            await progress.FlushAsync();
        }
        finally { File.Delete(file); }
    }

    // ------------------------------------------------------------------ list / inspect / tag

    async Task ListImages(HttpContext ctx, string[] _)
    {
        QueryBool(ctx, "all"); // every image is listed (there are no intermediate images)
        QueryBool(ctx, "digests");
        var f = Filters(ctx);
        OnlyFilters(f, "dangling", "reference", "label", "before", "since");
        var store = Images;
        var result = new List<ImageSummary>();
        var containers = await Blocking(Containers.List);
        // before=/since=IMAGE: images created strictly before or after that one
        async Task<DateTimeOffset?> CreatedOf(string key)
        {
            if (!f.TryGetValue(key, out var v) || v.Count == 0) return null;
            return CreatedTime(await ReadConfigAsync(store, ResolveImage(v[0]), ctx.RequestAborted));
        }
        var beforeTime = await CreatedOf("before");
        var sinceTime = await CreatedOf("since");
        foreach (var img in store.List())
        {
            var config = await ReadConfigAsync(store, img, ctx.RequestAborted);
            if (beforeTime is { } bt && !(CreatedTime(config) < bt)) continue;
            if (sinceTime is { } st && !(CreatedTime(config) > st)) continue;
            var tags = img.Names.Where(n => n.Tag is not null && n.Digest is null).Select(n => n.FamiliarString).ToList();
            var labels = config.Config?.Labels ?? [];
            if (f.TryGetValue("dangling", out var d) && d.Count > 0 && (d[0] is "true" or "1") != (tags.Count == 0)) continue;
            if (f.TryGetValue("reference", out var refs) && !refs.Any(p => img.Names.Any(n => ReferenceMatches(n, p)))) continue;
            if (f.TryGetValue("label", out var ls) && !ls.All(l => LabelMatch(labels, l))) continue;
            var summary = SummaryOf(img, config, containers);
            // docker lists only the tags the reference filter matched
            if (refs is not null) summary.RepoTags = summary.RepoTags.Where(t => refs.Any(p => ReferenceMatches(ParseRef(t), p))).ToList();
            result.Add(summary);
        }
        result = result.OrderByDescending(i => i.Created).ToList();
        await WriteJsonAsync(ctx, 200, result, DockerJson.Default.ListImageSummary);
    }

    static ImageSummary SummaryOf(StoredImage img, ImageConfigFile config, List<ContainerRecord> containers) => new()
    {
        Id = img.Id,
        RepoTags = img.RepoTags,
        RepoDigests = img.RepoDigests,
        Created = UnixSeconds(config.Created),
        Size = img.Record.Size - img.Record.Config.Size,
        VirtualSize = img.Record.Size - img.Record.Config.Size,
        Labels = config.Config?.Labels ?? [],
        Containers = containers.Count(c => c.Image == img.Id),
    };

    static DateTimeOffset CreatedTime(ImageConfigFile config) =>
        config.Created is { } cr && DateTimeOffset.TryParse(cr, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var t) ? t : DateTimeOffset.MinValue;

    static long UnixSeconds(string? rfc3339) =>
        rfc3339 is { } cr && DateTimeOffset.TryParse(cr, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var t) ? t.ToUnixTimeSeconds() : 0;

    /// <summary>docker's reference filter: a familiar name or name:tag, '*' matching within a path component.</summary>
    static bool ReferenceMatches(ImageReference n, string pattern)
    {
        var target = pattern.Contains(':') && !pattern.Contains('/') || pattern.LastIndexOf(':') > pattern.LastIndexOf('/') ? n.FamiliarString : n.FamiliarName;
        var rx = "^" + System.Text.RegularExpressions.Regex.Escape(pattern).Replace("\\*", "[^/]*") + "$";
        return System.Text.RegularExpressions.Regex.IsMatch(target, rx);
    }

    static async Task<ImageConfigFile> ReadConfigAsync(ImageStore store, StoredImage img, CancellationToken ct) =>
        ImageJson.ParseConfig(await store.Content.ReadBlobAsync(Digest.Parse(img.Id), ct), $"image config {img.Id}");

    StoredImage ResolveImage(string name)
    {
        try { return Images.Resolve(name); }
        catch (ImageException e) when (e.Kind == ImageErrorKind.NotFound) { throw ApiError.NotFound($"No such image: {name}"); }
    }

    async Task InspectImage(HttpContext ctx, string[] a)
    {
        var store = Images;
        var img = ResolveImage(a[0]);
        var config = await ReadConfigAsync(store, img, ctx.RequestAborted);
        var cc = config.Config;
        var r = new ImageInspect
        {
            Id = img.Id,
            RepoTags = img.RepoTags,
            RepoDigests = img.RepoDigests,
            Comment = config.History?.LastOrDefault()?.Comment ?? "",
            Parent = ImageParents.Get(DataRoot, img.Record) ?? "",
            Created = config.Created ?? "",
            Author = config.Author ?? "",
            Config = new ImageInspectConfig
            {
                User = cc?.User ?? "",
                Env = cc?.Env,
                Cmd = cc?.Cmd,
                WorkingDir = cc?.WorkingDir ?? "",
                Entrypoint = cc?.Entrypoint,
                Labels = cc?.Labels,
                StopSignal = cc?.StopSignal,
            },
            Architecture = config.Architecture,
            Variant = config.Variant,
            Os = config.Os,
            Size = img.Record.Size - img.Record.Config.Size,
            VirtualSize = img.Record.Size - img.Record.Config.Size,
            GraphDriver = { Name = "overlay2" },
            RootFS = { Type = config.RootFs.Type, Layers = [.. config.RootFs.DiffIds] },
            Metadata = { LastTagTime = img.Record.Stored },
        };
        await WriteJsonAsync(ctx, 200, r, DockerJson.Default.ImageInspect);
    }

    async Task TagImage(HttpContext ctx, string[] a)
    {
        var repo = Query(ctx, "repo");
        if (string.IsNullOrEmpty(repo)) throw ApiError.BadRequest("repository name (repo) is required");
        var tag = Query(ctx, "tag");
        var t = ParseRef(string.IsNullOrEmpty(tag) ? repo : repo + ":" + tag);
        if (t.Digest is not null) throw ApiError.BadRequest("refusing to create a tag with a digest reference");
        var store = Images;
        using (store.LockShared())
            new ImageManager(DataRoot).Tag(ResolveImage(a[0]), t);
        await NoContent(ctx, 201);
    }

    /// <summary>docker's JSON progress stream: one JSON message per line, begun lazily so an error
    /// before any progress can still be an HTTP status.</summary>
    /// <param name="push">a push's stream: its layers start as "Preparing" (a pull's as "Pulling fs layer")</param>
    sealed class JsonProgress(HttpContext ctx, bool push = false) : ITransferProgress
    {
        readonly object _gate = new();
        readonly List<ProgressMessage> _queue = [];
        readonly Dictionary<string, long> _sizes = [];
        public bool Started { get; private set; }
        public int Transferred { get; private set; }
        Task _writing = Task.CompletedTask;

        static string Short(Descriptor d) => d.Digest.ToString() is var s && s.StartsWith("sha256:", StringComparison.Ordinal) ? s[7..19] : s;

        /// <summary>"Pulling from NAME", held until the manifest was found (the next message): a pull
        /// of a missing image then fails with an HTTP error, before any stream, as docker's does.</summary>
        ProgressMessage? _pending;

        void Send(ProgressMessage m)
        {
            lock (_gate)
            {
                if (_pending is { } p) { _pending = null; _queue.Add(p); }
                _queue.Add(m);
                if (!Started)
                {
                    Started = true;
                    ctx.Response.StatusCode = 200;
                    ctx.Response.ContentType = "application/json";
                }
                _writing = _writing.ContinueWith(_ => DrainAsync(), TaskScheduler.Default).Unwrap();
            }
        }

        async Task DrainAsync()
        {
            List<ProgressMessage> batch;
            lock (_gate) { batch = [.. _queue]; _queue.Clear(); }
            if (batch.Count == 0) return;
            try
            {
                using var ms = new MemoryStream();
                foreach (var m in batch)
                {
                    JsonSerializer.Serialize(ms, m, DockerJson.Default.ProgressMessage);
                    ms.WriteByte((byte)'\n');
                }
                await ctx.Response.Body.WriteAsync(ms.ToArray(), ctx.RequestAborted);
                await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException) { }
        }

        public async Task FlushAsync()
        {
            lock (_gate) if (_pending is { } p) { _pending = null; Send(p); }
            Task t;
            lock (_gate) t = _writing;
            await t;
        }

        public void Status(string line)
        {
            // "REF: Pulling from NAME" → {"status":"Pulling from NAME","id":"TAG"}
            var i = line.IndexOf(": Pulling from ", StringComparison.Ordinal);
            if (i > 0)
            {
                // "TAG: Pulling from NAME" or "DIGEST: Pulling from NAME" (the puller's words)
                var id = line[..i];
                var status = line[(i + 2)..];
                // as dockerd: "TAG: Pulling from PATH" (the repository without its registry), "NAME@DIGEST: …" by digest
                if (ImageReference.TryParse(line[(i + ": Pulling from ".Length)..], out var pulled, out _))
                {
                    status = "Pulling from " + pulled.Path;
                    if (id.StartsWith("sha256:", StringComparison.Ordinal)) id = pulled.FamiliarName + "@" + id;
                }
                lock (_gate) _pending = new ProgressMessage { status = status, id = id };
            }
            else Send(new ProgressMessage { status = line });
        }

        /// <summary>A pull fetched the image's config (it reports the config before any layer): without
        /// it the image was stored already, and dockerd then names no layer at all.</summary>
        bool _configFetched;

        public void BlobStarted(Descriptor blob, string kind)
        {
            if (kind == "config") lock (_gate) _configFetched = true;
            if (kind != "layer") return;
            lock (_gate) _sizes[Short(blob)] = blob.Size;
            Send(new ProgressMessage { status = push ? "Preparing" : "Pulling fs layer", progressDetail = new(), id = Short(blob) });
        }

        public void BlobProgress(Descriptor blob, long done)
        {
            lock (_gate) if (!_sizes.ContainsKey(Short(blob))) return;
            var total = blob.Size;
            var width = 50;
            var filled = total > 0 ? (int)(width * Math.Min(done, total) / total) : 0;
            var bar = "[" + new string('=', Math.Max(0, filled - 1)) + (filled > 0 ? ">" : "") + new string(' ', width - filled) + "]";
            Send(new ProgressMessage { status = "Downloading", progressDetail = new ProgressDetail { current = done, total = total }, progress = $"{bar} {done}/{total}", id = Short(blob) });
        }

        public void BlobDone(Descriptor blob, string outcome)
        {
            bool layer;
            lock (_gate) layer = _sizes.ContainsKey(Short(blob)) || outcome == "Already exists" && (push || _configFetched);
            if (!layer) return;
            if (outcome == "Download complete")
            {
                Transferred++;
                Send(new ProgressMessage { status = "Download complete", progressDetail = new(), id = Short(blob) });
                Send(new ProgressMessage { status = "Pull complete", progressDetail = new(), id = Short(blob) });
            }
            else Send(new ProgressMessage { status = outcome, progressDetail = new(), id = Short(blob) });
        }

        public void Error(string message) => Send(new ProgressMessage { error = message, errorDetail = new ErrorDetail { message = message } });
    }
}
