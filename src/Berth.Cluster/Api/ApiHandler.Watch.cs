using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Berth.Cluster.Storage;
using Microsoft.AspNetCore.Http;

namespace Berth.Cluster.Api;

public sealed partial class ApiHandler
{
    public int WatchCount => Volatile.Read(ref watchCount);

    /// <summary>
    /// A watch: resourceVersion unset or "0" (or sendInitialEvents=true) starts with ADDED events for
    /// the current state, otherwise with the changes after that revision; a compacted revision gets an
    /// ERROR event with a 410 Expired Status ("too old resource version"). Events are filtered by the
    /// selectors with transitions (an object that stops matching is sent as DELETED); BOOKMARKs are sent
    /// when asked for; timeoutSeconds ends the stream. At most <see cref="ApiLimits.MaxWatches"/> run at once.
    /// </summary>
    async Task WatchAsync(HttpContext ctx, Target t, CancellationToken ct)
    {
        if (Interlocked.Increment(ref watchCount) > limits.MaxWatches)
        {
            Interlocked.Decrement(ref watchCount);
            throw ApiException.TooManyRequests($"too many watches open (limit {limits.MaxWatches}); retry later");
        }
        try
        {
            await RunWatchAsync(ctx, t, ct);
        }
        finally { Interlocked.Decrement(ref watchCount); }
    }

    async Task RunWatchAsync(HttpContext ctx, Target t, CancellationToken requestCt)
    {
        var q = ctx.Request.Query;
        var type = t.Type;
        var labels = LabelSelector.Parse(q["labelSelector"]);
        var fields = FieldSelector.Parse(q["fieldSelector"], type);
        var (shape, tv) = Negotiate(ctx);
        var rvText = q["resourceVersion"].ToString();
        var sendInitial = IsTrue(q["sendInitialEvents"].ToString());
        var bookmarks = IsTrue(q["allowWatchBookmarks"].ToString());
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(requestCt);
        if (int.TryParse(q["timeoutSeconds"], out var secs) && secs > 0) timeout.CancelAfter(TimeSpan.FromSeconds(secs));
        var ct = timeout.Token;

        var prefix = type.Prefix(t.Namespace);
        if (fields.SingleName is { } single && (!type.Namespaced || t.Namespace is not null)) prefix = type.Key(t.Namespace, single);
        var unfiltered = labels.IsEmpty && fields.Requirements.Count == 0 && fields.SingleName is null;
        bool Match(JsonObject o) => labels.Matches(o["metadata"]?["labels"] as JsonObject) && fields.Matches(o) &&
            (fields.SingleName is null || o.Str("metadata.name") == fields.SingleName);

        var initial = new List<StoreEntry>();
        long from;
        if (rvText is "" or "0" || sendInitial)
        {
            var list = await store.ListAsync(prefix, ct: ct);
            from = list.Revision;
            foreach (var e in list.Items)
            {
                if (!e.Key.StartsWith(prefix, StringComparison.Ordinal)) continue;
                if (unfiltered || Match(Decode(e))) initial.Add(e);
            }
        }
        else from = ParseRv(rvText, "resourceVersion");

        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/json";
        IStoreWatch watch;
        try { watch = await store.WatchAsync(prefix, from, ct); }
        catch (StoreCompactedException e)
        {
            await WriteEventAsync(ctx, "ERROR", ApiException.Expired($"too old resource version: {e.Requested} ({e.Compacted})").ToStatus(), ct);
            return;
        }
        using var _ = watch;
        var headers = true;
        JsonNode ShapeOf(JsonObject o)
        {
            if (shape == Shape.Table)
            {
                var table = Tables.Build(type, [o], tv, o.Str("metadata.resourceVersion") ?? "", null, IncludeObject(ctx), headers);
                headers = false;
                return table;
            }
            return shape == Shape.Metadata ? PartialMetadata(o, tv) : Out(ctx, o);
        }
        // Plain JSON watches send the stored bytes (resourceVersion spliced in), not a re-serialised tree.
        var raw = shape == Shape.Object && Served(ctx) is null;
        foreach (var e in initial)
        {
            if (!(raw && WriteStoredEvent(ctx, "ADDED", e))) WriteEvent(ctx, "ADDED", ShapeOf(Decode(e)));
            if (ctx.Response.BodyWriter.UnflushedBytes > 65536) await ctx.Response.BodyWriter.FlushAsync(ct);
        }
        initial = [];
        var lastRv = from;
        if (sendInitial && bookmarks)
            await WriteEventAsync(ctx, "BOOKMARK", Bookmark(Served(ctx) ?? type, lastRv, initialEnd: true), ct);
        else await ctx.Response.Body.FlushAsync(ct);

        var reader = watch.Events;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var waitTask = reader.WaitToReadAsync(ct).AsTask();
                if (bookmarks)
                {
                    var done = await Task.WhenAny(waitTask, Task.Delay(limits.BookmarkInterval, ct));
                    if (done != waitTask)
                    {
                        // the store's progress (etcd's progress notifications) counts once the queue is drained
                        var progress = watch.Progress;
                        if (!reader.TryPeek(out var queued)) lastRv = Math.Max(lastRv, progress);
                        await WriteEventAsync(ctx, "BOOKMARK", Bookmark(Served(ctx) ?? type, lastRv, false), ct);
                        continue;
                    }
                }
                if (!await waitTask) break;
                // Everything already queued goes out in one flush (one TLS record burst, not one per event).
                var wrote = false;
                while (reader.TryRead(out var ev))
                {
                    lastRv = ev.Revision;
                    if (raw && unfiltered && WriteStoredEvent(ctx, KindOf(ev), ev.Entry)) { wrote = true; continue; }
                    var (kind, obj) = Translate(ev, unfiltered ? null : Match);
                    if (kind is null) continue;
                    if (!(raw && WriteStoredEvent(ctx, kind, ev.Entry))) WriteEvent(ctx, kind, ShapeOf(obj!));
                    wrote = true;
                }
                if (wrote) await ctx.Response.BodyWriter.FlushAsync(ct);
            }
        }
        catch (StoreWatchLaggedException) { /* the client re-watches from its last resourceVersion */ }
        catch (StoreCompactedException e) // the store learnt only after the start (another server compacted)
        {
            await WriteEventAsync(ctx, "ERROR", ApiException.Expired($"too old resource version: {e.Requested} ({e.Compacted})").ToStatus(), ct);
        }
        catch (OperationCanceledException) { }
    }

    static string KindOf(StoreEvent ev) => ev.Type == StoreEventType.Delete ? "DELETED" : ev.Previous is null ? "ADDED" : "MODIFIED";

    /// <summary>The watch event for a store event; with no selectors (<paramref name="match"/> null) the previous value is not decoded.</summary>
    static (string? Type, JsonObject? Obj) Translate(StoreEvent ev, Func<JsonObject, bool>? match)
    {
        var obj = Decode(ev.Entry);
        if (match is null) return (KindOf(ev), obj);
        if (ev.Type == StoreEventType.Delete) return match(obj) ? ("DELETED", obj) : (null, null);
        var now = match(obj);
        if (ev.Previous is null) return now ? ("ADDED", obj) : (null, null);
        var before = match(Decode(ev.Previous));
        return (before, now) switch
        {
            (true, true) => ("MODIFIED", obj),
            (false, true) => ("ADDED", obj),
            (true, false) => ("DELETED", obj),
            _ => (null, null),
        };
    }

    static JsonObject Bookmark(ResourceType type, long rv, bool initialEnd)
    {
        var meta = new JsonObject { ["resourceVersion"] = rv.ToString() };
        if (initialEnd) meta["annotations"] = new JsonObject { ["k8s.io/initial-events-end"] = "true" };
        return new JsonObject { ["kind"] = type.Kind, ["apiVersion"] = type.ApiVersion, ["metadata"] = meta };
    }

    static async Task WriteEventAsync(HttpContext ctx, string type, JsonNode obj, CancellationToken ct)
    {
        WriteEvent(ctx, type, obj);
        await ctx.Response.BodyWriter.FlushAsync(ct);
    }

    /// <summary>Buffers one event line (the pipe writer holds it until flushed; Response.Body would flush on every write).</summary>
    static void WriteEvent(HttpContext ctx, string type, JsonNode obj)
    {
        var w = ctx.Response.BodyWriter;
        using (var jw = new Utf8JsonWriter(w))
        {
            jw.WriteStartObject();
            jw.WriteString("type", type);
            jw.WritePropertyName("object");
            obj.WriteTo(jw);
            jw.WriteEndObject();
        }
        w.Write("\n"u8);
    }

    static ReadOnlySpan<byte> EventPrefix(string type) => type switch
    {
        "ADDED" => "{\"type\":\"ADDED\",\"object\":"u8,
        "MODIFIED" => "{\"type\":\"MODIFIED\",\"object\":"u8,
        _ => "{\"type\":\"DELETED\",\"object\":"u8,
    };

    /// <summary>One event line from the stored bytes of <paramref name="e"/>; false (nothing written) when they have no metadata object.</summary>
    static bool WriteStoredEvent(HttpContext ctx, string type, StoreEntry e)
    {
        var w = ctx.Response.BodyWriter;
        var at = StoredJson.MetadataStart(e.Value);
        if (at < 0) return false;
        w.Write(EventPrefix(type));
        StoredJson.Write(w, e.Value, at, e.ModRevision);
        w.Write("}\n"u8);
        return true;
    }
}
