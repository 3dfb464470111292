using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Berth.Linux;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.Events;

/// <summary>An event in the Docker Engine API's shape (GET /events, EventMessage): Type, Action,
/// Actor {ID, Attributes}, scope, time, timeNano; containers and images also carry the legacy
/// status/id/from fields docker still sends.</summary>
public sealed class EngineEvent
{
    [JsonPropertyName("status"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Status { get; set; }
    [JsonPropertyName("id"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Id { get; set; }
    [JsonPropertyName("from"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? From { get; set; }
    [JsonPropertyName("Type")] public string Type { get; set; } = "";
    [JsonPropertyName("Action")] public string Action { get; set; } = "";
    [JsonPropertyName("Actor")] public EventActor Actor { get; set; } = new();
    [JsonPropertyName("scope")] public string Scope { get; set; } = "local";
    [JsonPropertyName("time")] public long Time { get; set; }
    [JsonPropertyName("timeNano")] public long TimeNano { get; set; }
}

public sealed class EventActor
{
    [JsonPropertyName("ID")] public string Id { get; set; } = "";
    [JsonPropertyName("Attributes")] public SortedDictionary<string, string> Attributes { get; set; } = new(StringComparer.Ordinal);
}

[JsonSerializable(typeof(EngineEvent))]
public sealed partial class EventJsonContext : JsonSerializerContext;

/// <summary>
/// The engine's event log, daemonless: every `berth` process (and every monitor) appends one JSON
/// line per event to ROOT/events/events.jsonl with a single O_APPEND write (lines are kept below
/// PIPE_BUF, so concurrent appends never interleave). Past 1 MiB the file is rotated to
/// events.jsonl.1 under an flock (one rotation at a time; two generations kept). Readers replay the
/// history and follow by polling the file (and notice a rotation by its inode).
/// </summary>
public static class EventJournal
{
    public const long MaxBytes = 1 << 20;
    const int MaxLine = 4000; // below PIPE_BUF (4096)

    static string Dir(string root) => Path.Combine(root, "events");
    public static string FilePath(string root) => Path.Combine(Dir(root), "events.jsonl");

    /// <summary>Appends an event. Never throws: an engine action does not fail because its event
    /// could not be written.</summary>
    public static void Emit(string root, string type, string action, string id, IReadOnlyDictionary<string, string>? attributes = null)
    {
        try
        {
            var now = DateTimeOffset.UtcNow;
            var nanos = (now.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;
            var e = new EngineEvent { Type = type, Action = action, Time = nanos / 1_000_000_000, TimeNano = nanos };
            e.Actor.Id = id;
            if (attributes is not null) foreach (var (k, v) in attributes) e.Actor.Attributes[k] = v;
            if (type is "container" or "image")
            {
                e.Status = action; e.Id = id;
                if (type == "container" && attributes?.GetValueOrDefault("image") is { } img) e.From = img;
            }
            var line = JsonSerializer.SerializeToUtf8Bytes(e, EventJsonContext.Default.EngineEvent);
            if (line.Length > MaxLine)
            {
                // Too many attributes: keep the event, drop what does not fit.
                e.Actor.Attributes = new(e.Actor.Attributes.Where(kv => kv.Key is "name" or "image" or "exitCode").ToDictionary(), StringComparer.Ordinal);
                line = JsonSerializer.SerializeToUtf8Bytes(e, EventJsonContext.Default.EngineEvent);
            }
            var bytes = new byte[line.Length + 1];
            line.CopyTo(bytes, 0);
            bytes[^1] = (byte)'\n';
            Directory.CreateDirectory(Dir(root));
            var path = FilePath(root);
            using (var fd = Sys.Open(path, O_WRONLY | O_APPEND | O_CREAT, 0x1a4))
                Sys.WriteAll(fd.Value, bytes, path);
            if (new FileInfo(path).Length > MaxBytes) Rotate(root);
        }
        catch (Exception ex) when (ex is IOException or SyscallException or UnauthorizedAccessException) { }
    }

    static void Rotate(string root)
    {
        using var l = FileAt.Lock(Path.Combine(Dir(root), "rotate.lock"));
        var path = FilePath(root);
        if (!File.Exists(path) || new FileInfo(path).Length <= MaxBytes) return; // rotated by another process
        File.Move(path, path + ".1", overwrite: true);
    }

    /// <summary>The history between <paramref name="sinceNano"/> and <paramref name="untilNano"/>
    /// (Unix nanoseconds, inclusive; null = unbounded), oldest first.</summary>
    public static List<EngineEvent> Read(string root, long? sinceNano, long? untilNano)
    {
        var list = new List<EngineEvent>();
        foreach (var file in new[] { FilePath(root) + ".1", FilePath(root) })
        {
            if (!File.Exists(file)) continue;
            try
            {
                foreach (var line in File.ReadLines(file))
                    if (Parse(line) is { } e && (sinceNano is null || e.TimeNano >= sinceNano) && (untilNano is null || e.TimeNano <= untilNano))
                        list.Add(e);
            }
            catch (FileNotFoundException) { }
        }
        return list;
    }

    static EngineEvent? Parse(string line)
    {
        if (line.Length == 0) return null;
        try { return JsonSerializer.Deserialize(line, EventJsonContext.Default.EngineEvent); }
        catch (JsonException) { return null; } // a torn line (crash mid-write)
    }

    /// <summary>Calls <paramref name="onEvent"/> for the history since <paramref name="sinceNano"/>,
    /// then for every new event until <paramref name="untilNano"/> passes or the token is cancelled.
    /// Returns when done.</summary>
    public static void Follow(string root, long? sinceNano, long? untilNano, Action<EngineEvent> onEvent, CancellationToken ct)
    {
        var path = FilePath(root);
        Directory.CreateDirectory(Dir(root));
        // Remember where the live file ends before replaying, then read on from there.
        ulong ino = 0;
        long offset = 0;
        if (FileAt.TryStat(path) is { } st0) { ino = st0.Ino; ReadRange(path, 0, st0.Size, out offset); }
        if (sinceNano is not null)
        {
            var history = new List<EngineEvent>();
            var rotated = path + ".1";
            if (File.Exists(rotated)) history.AddRange(ReadRange(rotated, 0, long.MaxValue));
            if (ino != 0) history.AddRange(ReadRange(path, 0, offset));
            foreach (var e in history)
                if (e.TimeNano >= sinceNano && (untilNano is null || e.TimeNano <= untilNano)) onEvent(e);
        }
        var pending = new StringBuilder();
        while (!ct.IsCancellationRequested)
        {
            if (untilNano is { } u && NowNano() > u) return;
            var st = FileAt.TryStat(path);
            if (st is { } s)
            {
                if (s.Ino != ino)
                {
                    // Rotated: finish the old file (now .1), then start the new one from 0.
                    if (ino != 0) foreach (var e in ReadRange(path + ".1", offset, long.MaxValue)) Deliver(e);
                    ino = s.Ino; offset = 0;
                }
                if (s.Size > offset)
                {
                    var fresh = ReadRange(path, offset, s.Size, out var used);
                    offset += used;
                    foreach (var e in fresh) Deliver(e);
                }
            }
            ct.WaitHandle.WaitOne(100);
        }

        void Deliver(EngineEvent e)
        {
            if ((sinceNano is null || e.TimeNano >= sinceNano) && (untilNano is null || e.TimeNano <= untilNano)) onEvent(e);
        }
    }

    public static long NowNano() => (DateTimeOffset.UtcNow.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;

    /// <summary>Whole lines between two offsets (a partial last line is left for the next read:
    /// the end offset is moved back to the last newline by the caller's next stat).</summary>
    static List<EngineEvent> ReadRange(string path, long from, long to) => ReadRange(path, from, to, out _);

    static List<EngineEvent> ReadRange(string path, long from, long to, out long consumed)
    {
        consumed = 0;
        var list = new List<EngineEvent>();
        try
        {
            using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            if (from > f.Length) return list;
            f.Position = from;
            var len = (int)Math.Min(to, f.Length) - (int)from;
            if (len <= 0) return list;
            var buf = new byte[len];
            f.ReadExactly(buf);
            // Only whole lines: a line still being written is read on the next poll.
            var end = Array.LastIndexOf(buf, (byte)'\n') + 1;
            consumed = end;
            foreach (var line in Encoding.UTF8.GetString(buf, 0, end).Split('\n'))
                if (Parse(line) is { } e) list.Add(e);
        }
        catch (FileNotFoundException) { }
        return list;
    }

    /// <summary>docker's --filter for events: type, event (action), container, image, volume,
    /// network, label (KEY or KEY=VALUE); values of one key are ORed, keys ANDed.</summary>
    public static Func<EngineEvent, bool> Filter(IEnumerable<string> filters)
    {
        var groups = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var f in filters)
        {
            var kv = f.Split('=', 2);
            if (kv.Length != 2 || kv[1].Length == 0) throw EngineException.Invalid($"bad format of filter (expected name=value): {f}");
            var key = kv[0];
            if (key is not ("type" or "event" or "container" or "image" or "volume" or "network" or "label" or "scope"))
                throw EngineException.Invalid($"invalid filter '{key}'");
            if (!groups.TryGetValue(key, out var l)) groups[key] = l = [];
            l.Add(kv[1]);
        }
        return e => groups.All(g => g.Value.Any(v => Matches(e, g.Key, v)));
    }

    static bool Matches(EngineEvent e, string key, string v) => key switch
    {
        "type" => e.Type == v,
        "event" => e.Action == v || e.Action.StartsWith(v + ":", StringComparison.Ordinal),
        "scope" => e.Scope == v,
        "container" => e.Type == "container" && (e.Actor.Id.StartsWith(v, StringComparison.Ordinal) || e.Actor.Attributes.GetValueOrDefault("name") == v),
        "image" => (e.Type == "image" && (e.Actor.Id == v || e.Actor.Attributes.GetValueOrDefault("name") == v || e.Actor.Id.StartsWith(v, StringComparison.Ordinal)))
            || (e.Type == "container" && e.Actor.Attributes.GetValueOrDefault("image") == v),
        "volume" => e.Type == "volume" && (e.Actor.Id == v || e.Actor.Attributes.GetValueOrDefault("name") == v),
        "network" => e.Type == "network" && (e.Actor.Id.StartsWith(v, StringComparison.Ordinal) || e.Actor.Attributes.GetValueOrDefault("name") == v),
        "label" => v.Split('=', 2) is var lv && e.Actor.Attributes.TryGetValue(lv[0], out var val) && (lv.Length == 1 || val == lv[1]),
        _ => false,
    };

    /// <summary>What `events --format` templates read: docker's Go field names (Status, ID, From, Scope, Time,
    /// TimeNano; the JSON has status, id, from…), present on every event as on docker's typed message.</summary>
    public static System.Text.Json.Nodes.JsonObject TemplateDocument(EngineEvent e)
    {
        var attrs = new System.Text.Json.Nodes.JsonObject();
        foreach (var (k, v) in e.Actor.Attributes) attrs[k] = v;
        return new()
        {
            ["Status"] = e.Status ?? "", ["ID"] = e.Id ?? "", ["From"] = e.From ?? "",
            ["Type"] = e.Type, ["Action"] = e.Action,
            ["Actor"] = new System.Text.Json.Nodes.JsonObject { ["ID"] = e.Actor.Id, ["Attributes"] = attrs },
            ["Scope"] = e.Scope, ["Time"] = e.Time, ["TimeNano"] = e.TimeNano,
        };
    }

    /// <summary>The line `docker events` prints: "TIME TYPE ACTION ID (k=v, …)", the time with
    /// nanoseconds (Go's RFC3339NanoFixed, here in UTC).</summary>
    public static string Format(EngineEvent e)
    {
        var t = DateTimeOffset.FromUnixTimeSeconds(e.TimeNano / 1_000_000_000).UtcDateTime;
        var attrs = e.Actor.Attributes.Count == 0 ? "" : " (" + string.Join(", ", e.Actor.Attributes.Select(kv => $"{kv.Key}={kv.Value}")) + ")";
        return $"{t.ToString("yyyy-MM-dd'T'HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture)}.{e.TimeNano % 1_000_000_000:D9}Z {e.Type} {e.Action} {e.Actor.Id}{attrs}";
    }
}
