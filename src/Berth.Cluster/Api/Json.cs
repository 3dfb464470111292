using System.Globalization;
using System.Text.Json.Nodes;

namespace Berth.Cluster.Api;

/// <summary>Small helpers over System.Text.Json.Nodes (the API works on objects as JSON trees).</summary>
public static class Json
{
    public static JsonNode? At(this JsonNode? node, string path)
    {
        if (!path.Contains('.')) return node is JsonObject o1 ? o1[path] : null;
        foreach (var part in Parts(path))
        {
            if (node is not JsonObject o) return null;
            node = o[part];
        }
        return node;
    }

    // the dotted paths are mostly literals of this code: split once each (bounded, for paths built at run time)
    static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string[]> parts = new(StringComparer.Ordinal);

    static string[] Parts(string path)
    {
        if (parts.TryGetValue(path, out var p)) return p;
        p = path.Split('.');
        if (parts.Count < 4096) parts.TryAdd(path, p);
        return p;
    }

    public static string? Str(this JsonNode? node, string path) =>
        node.At(path) is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    public static long? Long(this JsonNode? node, string path)
    {
        if (node.At(path) is not JsonValue v) return null;
        if (v.TryGetValue<long>(out var l)) return l;
        if (v.TryGetValue<int>(out var i)) return i;
        if (v.TryGetValue<double>(out var d)) return (long)d;
        if (v.TryGetValue<System.Text.Json.JsonElement>(out var e) && e.ValueKind == System.Text.Json.JsonValueKind.Number && e.TryGetInt64(out var x)) return x;
        return null;
    }

    public static bool? Bool(this JsonNode? node, string path) =>
        node.At(path) is JsonValue v && v.TryGetValue<bool>(out var b) ? b : null;

    public static JsonObject Obj(this JsonObject o, string key)
    {
        if (o[key] is JsonObject existing) return existing;
        var created = new JsonObject();
        o[key] = created;
        return created;
    }

    public static JsonArray Arr(this JsonNode? node, string path) => node.At(path) as JsonArray ?? [];

    public static IEnumerable<JsonObject> Objects(this JsonNode? node, string path) => node.Arr(path).OfType<JsonObject>();

    public static void Default(this JsonObject o, string key, JsonNode value)
    {
        if (o[key] is null) o[key] = value;
    }

    public static JsonObject Meta(this JsonObject o) => o.Obj("metadata");

    /// <summary>The current time as Kubernetes writes timestamps (whole seconds, UTC); formatted once per second.</summary>
    public static string Now()
    {
        var now = DateTimeOffset.UtcNow;
        var second = now.ToUnixTimeSeconds();
        var last = lastNow;
        if (last.Second == second) return last.Text;
        var text = now.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        lastNow = new(second, text);
        return text;
    }

    /// <summary><see cref="Now"/> as a UTC DateTime (whole seconds: serialized as "…:ssZ" like Now's text).</summary>
    public static DateTime NowSeconds()
    {
        var t = DateTime.UtcNow;
        return new DateTime(t.Ticks - t.Ticks % TimeSpan.TicksPerSecond, DateTimeKind.Utc);
    }

    sealed record NowText(long Second, string Text);
    static NowText lastNow = new(-1, "");

    /// <summary>
    /// A new random (version 4) UUID for metadata.uid, as <see cref="Guid.NewGuid"/> makes them but from
    /// a buffer of random bytes refilled 256 UUIDs at a time (NewGuid asks the kernel for 16 bytes on
    /// every call: a syscall per created object).
    /// </summary>
    public static string NewUid()
    {
        Span<byte> b = stackalloc byte[16];
        lock (uidGate)
        {
            if (uidAt == uidPool.Length) { System.Security.Cryptography.RandomNumberGenerator.Fill(uidPool); uidAt = 0; }
            uidPool.AsSpan(uidAt, 16).CopyTo(b);
            uidAt += 16;
        }
        b[6] = (byte)(b[6] & 0x0F | 0x40); // version 4
        b[8] = (byte)(b[8] & 0x3F | 0x80); // RFC 4122 variant
        return new Guid(b, bigEndian: true).ToString();
    }

    static readonly Lock uidGate = new();
    static readonly byte[] uidPool = new byte[16 * 256];
    static int uidAt = 16 * 256;

    public static string Time(DateTimeOffset t) => t.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    public static DateTimeOffset? ParseTime(string? s) =>
        s is not null && DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t : null;

    /// <summary>Kubernetes' HumanDuration (apimachinery/pkg/util/duration), as kubectl's AGE shows it.</summary>
    public static string HumanDuration(TimeSpan d)
    {
        var seconds = (long)d.TotalSeconds;
        if (seconds < -1) return "<invalid>";
        if (seconds < 0) return "0s";
        if (seconds < 60 * 2) return $"{seconds}s";
        var minutes = seconds / 60;
        if (minutes < 10) { var s = seconds % 60; return s == 0 ? $"{minutes}m" : $"{minutes}m{s}s"; }
        if (minutes < 60 * 3) return $"{minutes}m";
        var hours = minutes / 60;
        if (hours < 8) { var m = minutes % 60; return m == 0 ? $"{hours}h" : $"{hours}h{m}m"; }
        if (hours < 48) return $"{hours}h";
        if (hours < 24 * 8) { var h = hours % 24; return h == 0 ? $"{hours / 24}d" : $"{hours / 24}d{h}h"; }
        if (hours < 24 * 365 * 2) return $"{hours / 24}d";
        if (hours < 24 * 365 * 8) { var dy = hours / 24 % 365; return dy == 0 ? $"{hours / 24 / 365}y" : $"{hours / 24 / 365}y{dy}d"; }
        return $"{hours / 24 / 365}y";
    }

    public static string Age(JsonObject o, DateTimeOffset now) =>
        ParseTime(o.Str("metadata.creationTimestamp")) is { } t ? HumanDuration(now - t) : "<unknown>";
}
