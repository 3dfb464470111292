using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using Berth.Engine.Containers;
using Berth.Engine.Events;
using Berth.Images.Content;
using Microsoft.AspNetCore.Http;

namespace Berth.Engine.DockerApi;

/// <summary>GET /events (the engine's EventJournal) and GET /system/df (EngineMaintenance's sizes).</summary>
public sealed partial class DockerApiHandler
{
    // ------------------------------------------------------------------ events

    /// <summary>GET /events?since=&amp;until=&amp;filters=: the history from since, then live events
    /// until `until` passes (without until: until the client leaves), one JSON object per line.</summary>
    async Task Events(HttpContext ctx, string[] _)
    {
        var now = DateTimeOffset.UtcNow;
        long? since = Query(ctx, "since") is { Length: > 0 } s ? EventTime(s, "since") : null;
        long? until = Query(ctx, "until") is { Length: > 0 } u ? EventTime(u, "until") : null;
        if (since is { } a && until is { } b && a > b) throw ApiError.BadRequest($"`since` time ({Query(ctx, "since")}) cannot be after `until` time ({Query(ctx, "until")})");
        var filters = Filters(ctx).SelectMany(kv => kv.Value.Select(v => kv.Key + "=" + v)).ToList();
        var match = EventJournal.Filter(filters);
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/json";
        var ct = ctx.RequestAborted;
        await ctx.Response.Body.FlushAsync(ct);
        var channel = Channel.CreateUnbounded<EngineEvent>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var follow = Blocking(() =>
        {
            try { EventJournal.Follow(DataRoot, since, until, e => { if (match(e)) channel.Writer.TryWrite(e); }, stop.Token); }
            finally { channel.Writer.TryComplete(); }
        });
        try
        {
            while (await channel.Reader.WaitToReadAsync(ct))
            {
                using var ms = new MemoryStream();
                while (channel.Reader.TryRead(out var e))
                {
                    JsonSerializer.Serialize(ms, e, EventJsonContext.Default.EngineEvent);
                    ms.WriteByte((byte)'\n');
                }
                await ctx.Response.Body.WriteAsync(ms.GetBuffer().AsMemory(0, (int)ms.Length), ct);
                await ctx.Response.Body.FlushAsync(ct);
            }
        }
        finally
        {
            stop.Cancel();
            await follow;
        }
    }

    /// <summary>docker's event times: Unix seconds with an optional fraction ("1700000000.000000001",
    /// as the CLI sends them) or RFC 3339; Unix nanoseconds out.</summary>
    static long EventTime(string v, string what)
    {
        var dot = v.IndexOf('.');
        var secPart = dot < 0 ? v : v[..dot];
        var fracPart = dot < 0 ? "" : v[(dot + 1)..];
        if (long.TryParse(secPart, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var secs)
            && (fracPart.Length == 0 || (fracPart.Length <= 9 && fracPart.All(char.IsAsciiDigit))))
        {
            var nanos = fracPart.Length == 0 ? 0 : long.Parse(fracPart.PadRight(9, '0'), CultureInfo.InvariantCulture);
            return secs * 1_000_000_000 + nanos;
        }
        if (DateTimeOffset.TryParse(v, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t))
            return (t.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;
        throw ApiError.BadRequest($"invalid value for \"{what}\": \"{v}\": expected Unix seconds or RFC 3339");
    }

    // ------------------------------------------------------------------ system df

    /// <summary>GET /system/df?type=container|image|volume|build-cache: every kind when none is given.</summary>
    async Task DiskUsage(HttpContext ctx, string[] _)
    {
        var types = ctx.Request.Query.TryGetValue("type", out var tv) ? tv.Select(x => x ?? "").ToHashSet(StringComparer.Ordinal) : [];
        foreach (var t in types)
            if (t is not ("container" or "image" or "volume" or "build-cache"))
                throw ApiError.BadRequest($"unknown object type: {t}");
        bool Want(string t) => types.Count == 0 || types.Contains(t);
        var containers = await Blocking(Containers.List);
        var r = new DiskUsageResponse();
        if (Want("image"))
        {
            var store = Images;
            r.Images = [];
            var all = store.List();
            // as dockerd: an image's shared size is that of its layers another image uses too
            static IEnumerable<string> Layers(ImageRecord rec) =>
                rec.Blobs.Where(b => b != rec.Target.Digest && b != rec.Manifest.Digest && b != rec.Config.Digest);
            var users = all.SelectMany(i => Layers(i.Record).Distinct()).CountBy(b => b).ToDictionary(kv => kv.Key, kv => kv.Value);
            foreach (var img in all)
            {
                var config = await ReadConfigAsync(store, img, ctx.RequestAborted);
                var s = SummaryOf(img, config, containers);
                s.SharedSize = Layers(img.Record).Distinct().Where(b => users[b] > 1)
                    .Sum(b => Berth.Oci.Image.Digest.TryParse(b, out var d) ? store.Content.SizeOf(d) ?? 0 : 0);
                r.Images.Add(s);
            }
            r.LayersSize = r.Images.Sum(i => i.Size);
        }
        if (Want("container"))
        {
            var now = DateTime.UtcNow;
            r.Containers = await Blocking(() => containers.Select(c =>
            {
                var s = SummaryOf(c, now);
                s.SizeRw = EngineMaintenance.ContainerSize(Containers, c);
                s.SizeRootFs = s.SizeRw + (c.Image.Length > 0 ? ImageSize(c.Image) : 0);
                return s;
            }).ToList());
        }
        if (Want("volume"))
        {
            var vols = Volumes.List();
            r.Volumes = await Blocking(() =>
            {
                foreach (var v in vols)
                    v.UsageData = new Volumes.VolumeUsageData
                    {
                        Size = EngineMaintenance.DirSize(v.Mountpoint),
                        RefCount = containers.Count(c => c.Mounts.Any(m => m.Type == "volume" && m.Name == v.Name)),
                    };
                return vols;
            });
        }
        if (Want("build-cache")) r.BuildCache = [];
        await WriteJsonAsync(ctx, 200, r, DockerJson.Default.DiskUsageResponse);
    }

    long ImageSize(string imageId)
    {
        try { var rec = Images.Resolve(imageId).Record; return rec.Size - rec.Config.Size; }
        catch (Berth.Images.ImageException) { return 0; }
    }
}
