using System.Text.Json.Nodes;

namespace Berth.Cluster.Api;

/// <summary>
/// core/v1 Event's table as kube-apiserver prints it (printEvent): LAST SEEN TYPE REASON OBJECT MESSAGE,
/// and with -o wide SUBOBJECT, SOURCE, FIRST SEEN, COUNT and NAME. Events written through
/// events.k8s.io (eventTime, series) read as the legacy ones do.
/// </summary>
public static class EventColumns
{
    public static IReadOnlyList<TableColumn> All { get; } =
    [
        new("Last Seen", "string", "The time at which the most recent occurrence of this event was recorded.", (o, now) => LastSeen(o, now)),
        new("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future", (o, _) => o.Str("type")),
        new("Reason", "string", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.", (o, _) => o.Str("reason")),
        new("Object", "string", "The object that this event is about.", (o, _) => Target(o)),
        new("Subobject", "string", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement.", (o, _) => o.Str("involvedObject.fieldPath") ?? "", 1),
        new("Source", "string", "The component reporting this event. Should be a short machine understandable string.", (o, _) => Source(o), 1),
        new("Message", "string", "A human-readable description of the status of this operation.", (o, _) => (o.Str("message") ?? "").Trim()),
        new("First Seen", "string", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)", (o, now) => FirstSeen(o, now), 1),
        new("Count", "string", "The number of times this event has occurred.", (o, _) => Count(o), 1),
        new("Name", "string", "Name must be unique within a namespace.", (o, _) => o.Str("metadata.name"), 1, "name"),
    ];

    static string Since(string? time, DateTimeOffset now) => Json.ParseTime(time) is { } t ? Json.HumanDuration(now - t) : "<unknown>";

    static string FirstSeen(JsonObject o, DateTimeOffset now) => o.Str("firstTimestamp") is { Length: > 0 } f ? Since(f, now) : Since(o.Str("eventTime"), now);

    static string LastSeen(JsonObject o, DateTimeOffset now)
    {
        if (o.Str("series.lastObservedTime") is { Length: > 0 } s) return Since(s, now);
        return o.Str("lastTimestamp") is { Length: > 0 } l ? Since(l, now) : FirstSeen(o, now);
    }

    static long Count(JsonObject o)
    {
        if (o["series"] is JsonObject && o.Long("series.count") is { } sc) return sc;
        return o.Long("count") is { } c and not 0 ? c : 1;
    }

    static string Target(JsonObject o)
    {
        var kind = o.Str("involvedObject.kind")?.ToLowerInvariant() ?? "";
        return o.Str("involvedObject.name") is { Length: > 0 } name ? $"{kind}/{name}" : kind;
    }

    static string Source(JsonObject o)
    {
        var component = First(o.Str("source.component"), o.Str("reportingComponent"));
        var instance = First(o.Str("source.host"), o.Str("reportingInstance"));
        return instance.Length == 0 ? component : component + ", " + instance;
    }

    static string First(string? a, string? b) => !string.IsNullOrEmpty(a) ? a : b ?? "";
}
