using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Berth.Cluster.Storage;
using Microsoft.AspNetCore.Http;

namespace Berth.Cluster.Api;

/// <summary>Limits that keep one client from exhausting the server.</summary>
public sealed record ApiLimits
{
    public long MaxRequestBytes { get; init; } = 3 * 1024 * 1024;
    public int MaxWatches { get; init; } = 10_000;
    public TimeSpan BookmarkInterval { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// The Kubernetes REST API over the store, generic over <see cref="ResourceType"/>: parses the path,
/// negotiates JSON/Table/YAML, and runs get/list/watch/create/update/patch/delete/deletecollection
/// plus the status, scale, binding, eviction and finalize subresources.
/// </summary>
public sealed partial class ApiHandler(IStore store, ResourceRegistry registry, Discovery discovery, ApiLimits limits)
{
    int watchCount;
    readonly SemaphoreSlim allocGate = new(1, 1);

    internal IStore Store => store;
    internal ResourceRegistry Registry => registry;

    /// <summary>What a request addresses: a kind, and optionally a namespace, a name and a subresource.</summary>
    internal sealed record Target(ResourceType Type, string? Namespace, string? Name, string? Subresource);

    public async Task HandleAsync(HttpContext ctx)
    {
        var ct = ctx.RequestAborted;
        try
        {
            await DispatchAsync(ctx, ct);
        }
        catch (ApiException e) { await WriteStatusAsync(ctx, e); }
        catch (StoreCompactedException e) { await WriteStatusAsync(ctx, ApiException.Expired($"too old resource version: {e.Requested} ({e.Compacted})")); }
        catch (StoreFutureRevisionException e) { await WriteStatusAsync(ctx, new ApiException(504, "Timeout", $"Too large resource version: {e.Message}")); }
        catch (StoreUnavailableException e) { await WriteStatusAsync(ctx, new ApiException(503, "ServiceUnavailable", e.Message)); }
        catch (JsonException e) { await WriteStatusAsync(ctx, ApiException.BadRequest($"the object could not be decoded: {e.Message}")); }
        catch (BadHttpRequestException e)
        {
            await WriteStatusAsync(ctx, new ApiException(e.StatusCode, e.StatusCode == 413 ? "RequestEntityTooLarge" : "BadRequest", e.Message));
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A bug, not bad input: answer 500 with a Status and keep serving.
            Console.Error.WriteLine($"berth server: {ctx.Request.Method} {ctx.Request.Path}: {e}");
            await WriteStatusAsync(ctx, new ApiException(500, "InternalError", $"Internal error occurred: {e.Message}"));
        }
    }

    static async Task WriteStatusAsync(HttpContext ctx, ApiException e)
    {
        if (ctx.Response.HasStarted) return;
        // a Status that says when to retry says it in the header too, as the API server's error writer does
        if (e.Details?["retryAfterSeconds"] is JsonValue ra && ra.TryGetValue<int>(out var after) && after > 0)
            ctx.Response.Headers.RetryAfter = after.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await WriteJsonAsync(ctx, e.Code, e.ToStatus());
    }

    internal static async Task WriteJsonAsync(HttpContext ctx, int code, JsonNode node, string contentType = "application/json")
    {
        ctx.Response.StatusCode = code;
        ctx.Response.ContentType = contentType;
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(2048);
        using (var w = new Utf8JsonWriter(buffer)) node.WriteTo(w);
        ctx.Response.ContentLength = buffer.WrittenCount;
        await ctx.Response.Body.WriteAsync(buffer.WrittenMemory, ctx.RequestAborted);
    }

    async Task DispatchAsync(HttpContext ctx, CancellationToken ct)
    {
        var path = ctx.Request.Path.Value ?? "/";
        var method = ctx.Request.Method;
        var seg = path.Trim('/').Split('/', StringSplitOptions.RemoveEmptyEntries);
        var accept = ctx.Request.Headers.Accept.ToString();

        switch (path.TrimEnd('/'))
        {
            case "/version": await WriteJsonAsync(ctx, 200, discovery.Version()); return;
            case "/healthz" or "/livez" or "/readyz":
                ctx.Response.ContentType = "text/plain; charset=utf-8";
                await ctx.Response.WriteAsync("ok", ct);
                return;
            case "/api":
                if (accept.Contains("as=APIGroupDiscoveryList", StringComparison.Ordinal) && accept.Contains("v=v2", StringComparison.Ordinal) && !accept.Contains("v=v2beta1;as=APIGroupDiscoveryList", StringComparison.Ordinal) || AcceptsV2(accept))
                    await WriteJsonAsync(ctx, 200, discovery.Aggregated(legacy: true), Discovery.AggregatedV2);
                else await WriteJsonAsync(ctx, 200, discovery.ApiVersions());
                return;
            case "/apis":
                if (AcceptsV2(accept)) await WriteJsonAsync(ctx, 200, discovery.Aggregated(legacy: false), Discovery.AggregatedV2);
                else await WriteJsonAsync(ctx, 200, discovery.ApiGroupList());
                return;
            case "/openapi/v2":
                if (accept.Contains("protobuf", StringComparison.Ordinal))
                {
                    ctx.Response.ContentType = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
                    await ctx.Response.Body.WriteAsync(Discovery.OpenApiV2Protobuf(), ct);
                }
                else await WriteBytesAsync(ctx, discovery.OpenApi.V2Json(), ct);
                return;
            case "/openapi/v3": await WriteBytesAsync(ctx, discovery.OpenApi.V3Index(), ct); return;
        }
        if (path.StartsWith("/openapi/v3/", StringComparison.Ordinal))
        {
            var (doc, hash) = discovery.OpenApi.V3(path["/openapi/v3/".Length..].TrimEnd('/')) ?? throw ApiException.NotFoundPath(path);
            // a URL with the current hash never changes content: clients may cache it (as Kubernetes lets them)
            if (ctx.Request.Query["hash"].ToString() == hash) ctx.Response.Headers.CacheControl = "public, immutable";
            ctx.Response.Headers.ETag = $"\"{hash}\"";
            await WriteBytesAsync(ctx, doc, ct);
            return;
        }

        string group, version; int rest;
        if (seg.Length >= 2 && seg[0] == "api") { group = ""; version = seg[1]; rest = 2; }
        else if (seg.Length >= 2 && seg[0] == "apis")
        {
            if (seg.Length == 2)
            {
                await WriteJsonAsync(ctx, 200, discovery.ApiGroup(seg[1]) ?? throw ApiException.NotFoundPath(path));
                return;
            }
            group = seg[1]; version = seg[2]; rest = 3;
        }
        else throw ApiException.NotFoundPath(path);

        var r = seg[rest..];
        if (r.Length == 0)
        {
            await WriteJsonAsync(ctx, 200, discovery.ResourceList(group, version) ?? throw ApiException.NotFoundPath(path));
            return;
        }
        var target = AtStorage(ctx, Resolve(group, version, r) ?? throw ApiException.NotFoundPath(path));
        var q = ctx.Request.Query;
        var dryRun = q["dryRun"].ToString() == "All";
        var fieldValidation = FieldValidation.Parse(q["fieldValidation"].ToString());
        if (target.Type.CreateOnly)
        {
            if (method != "POST" || target.Name is not null) throw ApiException.MethodNotAllowed($"the server does not allow this method on the requested resource ({method} {path})");
            await ReviewAsync(ctx, target, ct);
            return;
        }
        if (target.Subresource is { } sub && KubeletSubresources.Contains(sub))
        {
            await KubeletStreamAsync(ctx, target, ct);
            return;
        }
        switch (method)
        {
            case "GET" when target.Name is null:
                if (IsTrue(q["watch"].ToString())) await WatchAsync(ctx, target, ct);
                else await ListAsync(ctx, target, ct);
                return;
            case "GET":
                await GetAsync(ctx, target, ct);
                return;
            case "POST" when target.Name is null:
                var created = await ReadObjectAsync(ctx, ct);
                CheckFields(ctx, target.Type, created, fieldValidation);
                created = In(ctx, created);
                var (obj, stored) = await CreateStoredAsync(target, created, dryRun, ct);
                await RespondStoredAsync(ctx, 201, obj, stored, target.Type);
                return;
            case "POST" when target.Subresource is "binding":
                await BindAsync(ctx, target, await ReadObjectAsync(ctx, ct), dryRun, ct);
                return;
            case "POST" when target.Subresource is "token":
                await TokenRequestAsync(ctx, target, await ReadObjectAsync(ctx, ct), ct);
                return;
            case "POST" when target.Subresource is "eviction":
                await EvictAsync(ctx, target, await ReadObjectAsync(ctx, ct), dryRun, ct);
                return;
            case "PUT" when target.Name is not null:
                var replacement = await ReadObjectAsync(ctx, ct);
                if (target.Subresource is null) CheckFields(ctx, target.Type, replacement, fieldValidation);
                replacement = In(ctx, replacement);
                await UpdateAsync(ctx, target, replacement, dryRun, ct);
                return;
            case "PATCH" when target.Name is not null:
                await PatchAsync(ctx, target, fieldValidation, dryRun, ct);
                return;
            case "DELETE" when target.Name is null && target.Type.CanDeleteCollection:
                await DeleteCollectionAsync(ctx, target, dryRun, ct);
                return;
            case "DELETE" when target.Name is not null && target.Subresource is null:
                await DeleteAsync(ctx, target, dryRun, ct);
                return;
        }
        throw ApiException.MethodNotAllowed($"the server does not allow this method on the requested resource ({method} {path})");
    }

    static bool AcceptsV2(string accept)
    {
        foreach (var part in accept.Split(','))
        {
            var p = part.Replace(" ", "");
            if (p.Contains("as=APIGroupDiscoveryList", StringComparison.Ordinal) && p.Contains("v=v2;", StringComparison.Ordinal) || p.EndsWith("v=v2", StringComparison.Ordinal) && p.Contains("as=APIGroupDiscoveryList", StringComparison.Ordinal))
                return true;
        }
        return false;
    }

    static bool IsTrue(string s) => s is "true" or "1" or "True";

    Target? Resolve(string group, string version, string[] r)
    {
        ResourceType? t;
        if (r[0] == "namespaces" && r.Length >= 3 && (t = registry.Find(group, version, r[2])) is { Namespaced: true })
        {
            if (r.Length > 5 && r[4] != "proxy") return null; // pods/NAME/proxy/PATH
            var nsSub = r.Length > 4 ? r[4] : null;
            if (nsSub is not null && !t.Subresources.Contains(nsSub)) return null;
            return new Target(t, r[1], r.Length > 3 ? r[3] : null, nsSub);
        }
        t = registry.Find(group, version, r[0]);
        if (t is null || r.Length > 3) return null;
        var sub = r.Length > 2 ? r[2] : null;
        if (sub is not null && !t.Subresources.Contains(sub)) return null;
        return new Target(t, null, r.Length > 1 ? r[1] : null, sub);
    }

    // ---- encoding ----

    const string DuplicatesKey = "berth.duplicate-fields";

    async Task<JsonObject> ReadObjectAsync(HttpContext ctx, CancellationToken ct)
    {
        var (bytes, type) = await ReadBytesAsync(ctx, ct);
        if (type == Protobuf.MediaType) return Protobuf.Decode(bytes);
        JsonNode? node;
        if (type.Contains("yaml", StringComparison.Ordinal)) node = Yaml.ToJson(Encoding.UTF8.GetString(bytes));
        else
        {
            // the body is kept for fieldValidation (CheckFields: repeated keys and the fields'
            // document order); with repeated keys the last value wins
            ctx.Items[DuplicatesKey] = bytes;
            node = FieldValidation.HasDuplicateFields(bytes) ? FieldValidation.ParseLastWins(bytes) : ParseJson(bytes);
        }
        return node as JsonObject ?? throw ApiException.BadRequest("the request body must be a JSON or YAML object");
    }

    /// <summary>Parses a JSON body from its bytes (no string); invalid UTF-8 is read as U+FFFD, as Kubernetes' decoder does.</summary>
    static JsonNode? ParseJson(byte[] utf8)
    {
        try { return JsonNode.Parse(utf8, documentOptions: new JsonDocumentOptions { MaxDepth = 100 }); }
        catch (JsonException) when (!System.Text.Unicode.Utf8.IsValid(utf8)) { return ParseJson(Encoding.UTF8.GetString(utf8)); }
        catch (JsonException e) { throw ApiException.BadRequest($"the body of the request was in an unknown format - accepted media types include: application/json, application/yaml ({e.Message})"); }
    }

    static JsonNode? ParseJson(string text)
    {
        try { return JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { MaxDepth = 100 }); }
        catch (JsonException e) { throw ApiException.BadRequest($"the body of the request was in an unknown format - accepted media types include: application/json, application/yaml ({e.Message})"); }
    }

    async Task<(string Text, string ContentType)> ReadBodyAsync(HttpContext ctx, CancellationToken ct)
    {
        var (bytes, type) = await ReadBytesAsync(ctx, ct);
        if (type.Contains("protobuf", StringComparison.Ordinal))
            throw ApiException.UnsupportedMediaType($"the body of the request was in an unknown format - accepted media types include: application/json, application/yaml ({type} is not supported here)");
        return (Encoding.UTF8.GetString(bytes), type);
    }

    async Task<(byte[] Bytes, string ContentType)> ReadBytesAsync(HttpContext ctx, CancellationToken ct)
    {
        int n0;
        var type = MediaType(ctx.Request.ContentType);
        if (ctx.Request.ContentLength is { } length && length <= limits.MaxRequestBytes)
        {
            // the usual case: a declared length within the limit is read straight into its array
            var body = new byte[length];
            var got = 0;
            while (got < body.Length && (n0 = await ctx.Request.Body.ReadAsync(body.AsMemory(got), ct)) > 0) got += n0;
            if (got == body.Length) return (body, type);
            throw ApiException.BadRequest($"the request body ended after {got} of its {length} bytes");
        }
        using var ms = new MemoryStream();
        var buffer = new byte[16384];
        int n;
        long total = 0;
        // Past the limit the rest is read and dropped (up to Kestrel's hard cap), so the client
        // receives the 413 Status instead of a reset connection; memory stays bounded either way.
        while ((n = await ctx.Request.Body.ReadAsync(buffer, ct)) > 0)
        {
            total += n;
            if (total <= limits.MaxRequestBytes) ms.Write(buffer, 0, n);
        }
        if (total > limits.MaxRequestBytes) throw ApiException.TooLarge($"Request entity too large: limit is {limits.MaxRequestBytes}");
        return (ms.ToArray(), type);
    }

    /// <summary>The media type of a Content-Type header, lower case, without parameters ("application/json" when absent).</summary>
    static string MediaType(string? contentType)
    {
        if (contentType is null or "application/json") return "application/json";
        var semi = contentType.IndexOf(';');
        return (semi < 0 ? contentType : contentType[..semi]).Trim().ToLowerInvariant();
    }

    enum Shape { Object, Table, Metadata }

    static (Shape Shape, string TableVersion) Negotiate(HttpContext ctx)
    {
        var accept = ctx.Request.Headers.Accept.ToString();
        if (accept.Length == 0) return (Shape.Object, "");
        var jsonOk = false;
        foreach (var part in accept.Split(','))
        {
            var p = part.Replace(" ", "");
            var mt = p.Split(';')[0];
            if (p.Contains("as=Table", StringComparison.Ordinal) && p.Contains("g=meta.k8s.io", StringComparison.Ordinal) && mt == "application/json")
                return (Shape.Table, p.Contains("v=v1beta1", StringComparison.Ordinal) ? "v1beta1" : "v1");
            if (p.Contains("as=PartialObjectMetadata", StringComparison.Ordinal) && mt == "application/json")
                return (Shape.Metadata, p.Contains("v=v1beta1", StringComparison.Ordinal) ? "v1beta1" : "v1");
            if (!p.Contains("as=", StringComparison.Ordinal) && mt is "application/json" or "*/*" or "application/*" or "application/yaml" or "application/json-seq") jsonOk = true;
        }
        if (!jsonOk) throw ApiException.NotAcceptable("only the following media types are accepted: application/json, application/yaml, application/json;as=Table;v=v1;g=meta.k8s.io");
        return (Shape.Object, "");
    }

    async Task RespondObjectAsync(HttpContext ctx, int code, JsonObject obj, ResourceType type)
    {
        var (shape, tv) = Negotiate(ctx);
        JsonNode body = shape switch
        {
            Shape.Table => Tables.Build(type, [obj], tv, obj.Str("metadata.resourceVersion") ?? "", null, IncludeObject(ctx), headers: true),
            Shape.Metadata => PartialMetadata(obj, tv),
            _ => Out(ctx, obj),
        };
        await WriteJsonAsync(ctx, code, body);
    }

    /// <summary>
    /// <see cref="RespondObjectAsync"/> for an object just written: the plain JSON shape is the store's
    /// bytes with the resourceVersion spliced in (<see cref="StoredJson"/>), not a second serialisation.
    /// </summary>
    async Task RespondStoredAsync(HttpContext ctx, int code, JsonObject obj, StoreEntry? stored, ResourceType type)
    {
        if (stored is null || Served(ctx) is not null || Negotiate(ctx).Shape != Shape.Object || StoredJson.MetadataStart(stored.Value) is not (>= 0 and var at))
        {
            await RespondObjectAsync(ctx, code, obj, type);
            return;
        }
        ctx.Response.StatusCode = code;
        ctx.Response.ContentType = "application/json";
        // built in this thread's scratch buffer and copied into the response's pipe before any await
        var buffer = Scratch();
        StoredJson.Write(buffer, stored.Value, at, stored.ModRevision);
        ctx.Response.ContentLength = buffer.WrittenCount;
        ctx.Response.BodyWriter.Write(buffer.WrittenSpan);
        buffer.ResetWrittenCount();
        await ctx.Response.BodyWriter.FlushAsync(ctx.RequestAborted);
    }

    [ThreadStatic] static System.Buffers.ArrayBufferWriter<byte>? scratch;
    [ThreadStatic] static Utf8JsonWriter? scratchWriter;

    /// <summary>
    /// This thread's reusable output buffer (emptied), for bytes that are copied out before the caller's next
    /// await: a create's stored form and its 201 answer would otherwise each grow a fresh buffer per request.
    /// </summary>
    static System.Buffers.ArrayBufferWriter<byte> Scratch()
    {
        var b = scratch ??= new System.Buffers.ArrayBufferWriter<byte>(4096);
        b.ResetWrittenCount();
        return b;
    }

    static string IncludeObject(HttpContext ctx) => ctx.Request.Query["includeObject"].ToString() is { Length: > 0 } s ? s : "Metadata";

    internal static JsonObject PartialMetadata(JsonObject obj, string version) => new()
    {
        ["kind"] = "PartialObjectMetadata",
        ["apiVersion"] = $"meta.k8s.io/{(version.Length == 0 ? "v1" : version)}",
        ["metadata"] = obj["metadata"]?.DeepClone(),
    };

    /// <summary>Decodes a stored value and stamps the store's revision as its resourceVersion.</summary>
    internal static JsonObject Decode(StoreEntry e)
    {
        var o = JsonNode.Parse(e.Value)!.AsObject();
        o.Meta()["resourceVersion"] = e.ModRevision.ToString();
        return o;
    }

    /// <summary>The stored form: the object without resourceVersion (the entry's revision is). No copy: the field is taken out and put back.</summary>
    internal static byte[] Encode(JsonObject o)
    {
        var meta = o["metadata"] as JsonObject;
        JsonNode? rv = null;
        var had = meta is not null && meta.Remove("resourceVersion", out rv);
        try
        {
            var buffer = Scratch();
            var w = scratchWriter;
            if (w is null) scratchWriter = w = new Utf8JsonWriter(buffer);
            else w.Reset(buffer);
            try
            {
                o.WriteTo(w);
                w.Flush();
                return buffer.WrittenSpan.ToArray();
            }
            finally
            {
                w.Reset(); // drops its reference to the buffer's state; the next Encode resets it onto the buffer again
                buffer.ResetWrittenCount();
            }
        }
        finally { if (had) meta!["resourceVersion"] = rv; }
    }

    static long ParseRv(string? rv, string what)
    {
        if (string.IsNullOrEmpty(rv)) return 0;
        if (!long.TryParse(rv, out var v) || v < 0) throw ApiException.BadRequest($"invalid {what}: \"{rv}\"");
        return v;
    }

    // ---- get / list ----

    async Task<JsonObject> ReadAsync(Target t, CancellationToken ct)
    {
        var e = await store.GetAsync(t.Type.Key(t.Namespace, t.Name!), ct) ?? throw ApiException.NotFound(t.Type.Group, t.Type.Plural, t.Name!);
        return Decode(e);
    }

    async Task GetAsync(HttpContext ctx, Target t, CancellationToken ct)
    {
        var obj = await ReadAsync(t, ct);
        if (t.Subresource == "scale")
        {
            await WriteJsonAsync(ctx, 200, ToScale(t.Type, obj));
            return;
        }
        await RespondObjectAsync(ctx, 200, obj, t.Type);
    }

    sealed record Continue(long Rv, string Start);

    static string EncodeContinue(long rv, string start) =>
        Convert.ToBase64String(Encoding.UTF8.GetBytes(new JsonObject { ["v"] = "meta.k8s.io/v1", ["rv"] = rv, ["start"] = start }.ToJsonString()));

    static Continue DecodeContinue(string token)
    {
        try
        {
            var o = JsonNode.Parse(Convert.FromBase64String(token))!.AsObject();
            return new Continue(o.Long("rv") ?? 0, o.Str("start") ?? "");
        }
        catch (Exception e) when (e is FormatException or JsonException or InvalidOperationException)
        {
            throw ApiException.BadRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)");
        }
    }

    static async Task WriteBytesAsync(HttpContext ctx, byte[] json, CancellationToken ct)
    {
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/json";
        ctx.Response.ContentLength = json.Length;
        await ctx.Response.Body.WriteAsync(json, ct);
    }

    async Task ListAsync(HttpContext ctx, Target t, CancellationToken ct)
    {
        var q = ctx.Request.Query;
        var labels = LabelSelector.Parse(q["labelSelector"]);
        var fields = FieldSelector.Parse(q["fieldSelector"], t.Type);
        var limit = int.TryParse(q["limit"], out var l) && l > 0 ? l : 0;
        var prefix = t.Type.Prefix(t.Namespace);
        long rev = 0;
        string? startAfter = null;
        if (q["continue"].ToString() is { Length: > 0 } token)
        {
            var c = DecodeContinue(token);
            rev = c.Rv;
            startAfter = prefix + c.Start;
            if (rev <= store.CompactedRevision)
                throw ApiException.Expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.");
        }
        else if (q["resourceVersionMatch"].ToString() == "Exact")
            rev = ParseRv(q["resourceVersion"], "resourceVersion");
        var (shape, tv) = Negotiate(ctx);
        var (entries, listRev, next) = await ListEntriesAsync(prefix, startAfter, rev, limit, labels, fields, ct);
        var listMeta = new JsonObject { ["resourceVersion"] = listRev.ToString() };
        if (next is not null) listMeta["continue"] = next;
        if (shape == Shape.Object)
        {
            var served = Served(ctx);
            // Streamed from the stored bytes: no tree and no single string of the whole list.
            ctx.Response.StatusCode = 200;
            ctx.Response.ContentType = "application/json";
            var w = ctx.Response.BodyWriter;
            using (var jw = new Utf8JsonWriter(w))
            {
                jw.WriteStartObject();
                jw.WriteString("kind", t.Type.ListKind);
                jw.WriteString("apiVersion", (served ?? t.Type).ApiVersion);
                jw.WritePropertyName("metadata");
                listMeta.WriteTo(jw);
                jw.WritePropertyName("items");
                jw.WriteStartArray();
                jw.Flush();
                for (var i = 0; i < entries.Count; i++)
                {
                    if (i > 0) w.Write(","u8);
                    var e = entries[i];
                    var at = served is null ? StoredJson.MetadataStart(e.Value) : -1;
                    if (at >= 0) StoredJson.Write(w, e.Value, at, e.ModRevision);
                    else
                    {
                        using var ow = new Utf8JsonWriter(w);
                        Out(ctx, Decode(e)).WriteTo(ow);
                    }
                    entries[i] = null!; // the bytes may go once written
                    if (w.UnflushedBytes > 65536) await w.FlushAsync(ct);
                }
                w.Write("]}"u8);
            }
            await w.FlushAsync(ct);
            return;
        }
        var items = entries.Select(Decode).ToList();
        JsonNode body;
        if (shape == Shape.Table) body = Tables.Build(t.Type, items, tv, listRev.ToString(), next, IncludeObject(ctx), headers: true);
        else
        {
            var arr = new JsonArray();
            foreach (var o in items) arr.Add((JsonNode)PartialMetadata(o, tv));
            body = new JsonObject
            {
                ["kind"] = "PartialObjectMetadataList",
                ["apiVersion"] = $"meta.k8s.io/{tv}",
                ["metadata"] = listMeta,
                ["items"] = arr,
            };
        }
        await WriteJsonAsync(ctx, 200, body);
    }

    /// <summary>
    /// The objects under <paramref name="prefix"/> at revision <paramref name="rev"/> (0 = now) that
    /// match the selectors, at most <paramref name="limit"/> (0 = all), and the continue token for the rest.
    /// </summary>
    internal async Task<(List<JsonObject> Items, long Revision, string? Continue)> ListItemsAsync(string prefix, string? startAfter, long rev, int limit,
        LabelSelector labels, FieldSelector fields, CancellationToken ct)
    {
        var (entries, listRev, next) = await ListEntriesAsync(prefix, startAfter, rev, limit, labels, fields, ct);
        return (entries.Select(Decode).ToList(), listRev, next);
    }

    /// <summary>As <see cref="ListItemsAsync"/>, the stored entries (decoded only to match selectors).</summary>
    internal async Task<(List<StoreEntry> Items, long Revision, string? Continue)> ListEntriesAsync(string prefix, string? startAfter, long rev, int limit,
        LabelSelector labels, FieldSelector fields, CancellationToken ct)
    {
        var unfiltered = labels.IsEmpty && fields.Requirements.Count == 0;
        var items = new List<StoreEntry>();
        string? next = null;
        long listRev = 0;
        while (true)
        {
            var page = await store.ListAsync(prefix, startAfter, limit == 0 ? 0 : Math.Max(limit - items.Count, 1) + (labels.IsEmpty && fields.Requirements.Count == 0 ? 0 : 50), rev, ct);
            listRev = page.Revision;
            rev = page.Revision;
            string? lastKey = null;
            foreach (var e in page.Items)
            {
                lastKey = e.Key;
                if (!unfiltered)
                {
                    // a field selector alone (a kubelet's spec.nodeName=X) is read from the stored bytes
                    if (labels.IsEmpty && fields.MatchesStored(e.Value) is { } byBytes) { if (!byBytes) continue; }
                    else
                    {
                        var o = Decode(e);
                        if (!labels.Matches(o["metadata"]?["labels"] as JsonObject) || !fields.Matches(o)) continue;
                    }
                }
                items.Add(e);
                if (limit > 0 && items.Count == limit) break;
            }
            if (limit > 0 && items.Count == limit)
            {
                var more = page.More || lastKey != page.Items[^1].Key;
                if (more) next = EncodeContinue(listRev, lastKey![prefix.Length..]);
                break;
            }
            if (!page.More || page.Items.Count == 0) break;
            startAfter = lastKey;
        }

        return (items, listRev, next);
    }
}
