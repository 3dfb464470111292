using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Berth.Engine.Containers;

/// <summary>What `ps` and `inspect --format` print: docker's status texts, durations, the command
/// column, and a small Go-template subset ({{.Field}}, {{.A.B}}, {{json .}}, {{json .X}}, "table").</summary>
public static class ContainerFormat
{
    static readonly JsonSerializerOptions RelaxedOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static DateTime ParseTime(string t) =>
        DateTime.TryParse(t, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var d) ? d : DateTime.MinValue;

    public static string Status(ContainerRecord c, DateTime now)
    {
        var st = c.State;
        if (st.Restarting) return $"Restarting ({st.ExitCode}) {Berth.Images.Units.HumanDuration(now - ParseTime(st.FinishedAt))} ago";
        if (st.Running)
        {
            var up = "Up " + Berth.Images.Units.HumanDuration(now - ParseTime(st.StartedAt));
            if (st.Paused) return up + " (Paused)";
            return st.Health?.Status switch
            {
                "starting" => up + " (health: starting)",
                "healthy" or "unhealthy" => $"{up} ({st.Health.Status})",
                _ => up,
            };
        }
        if (st.Status == "exited" || (st.FinishedAt != ContainerState.ZeroTime && st.Status != "created"))
            return $"Exited ({st.ExitCode}) {Berth.Images.Units.HumanDuration(now - ParseTime(st.FinishedAt))} ago";
        return "Created";
    }

    public static string State(ContainerRecord c) => c.State.Restarting ? "restarting" : c.State.Running ? (c.State.Paused ? "paused" : "running") : c.State.Status;

    public static string Command(ContainerRecord c, bool truncate)
    {
        var cmd = string.Join(' ', c.Args.Prepend(c.Path));
        if (truncate && cmd.Length > 20) cmd = cmd[..19] + "…";
        return "\"" + cmd + "\"";
    }

    public static string Labels(ContainerRecord c) => string.Join(',', c.Config.Labels.OrderBy(k => k.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}"));

    /// <summary>The fields `ps --format` knows, by name.</summary>
    public static Dictionary<string, string> PsFields(ContainerRecord c, DateTime now, bool truncate) => new()
    {
        ["ID"] = truncate ? c.ShortId : c.Id,
        ["Image"] = c.Config.Image,
        ["Command"] = Command(c, truncate),
        ["CreatedAt"] = ParseTime(c.Created).ToString("yyyy-MM-dd HH:mm:ss +0000 'UTC'", CultureInfo.InvariantCulture),
        ["RunningFor"] = Berth.Images.Units.HumanDuration(now - ParseTime(c.Created)) + " ago",
        ["Ports"] = Networking.ContainerNetworking.PortsColumn(c.NetworkSettings),
        ["State"] = State(c),
        ["Status"] = Status(c, now),
        ["Size"] = "0B",
        ["Names"] = c.BareName,
        ["Labels"] = Labels(c),
        ["Mounts"] = string.Join(',', c.Mounts.Select(m => m.Destination)),
        ["Networks"] = c.NetworkSettings.Networks.Count > 0 ? string.Join(',', c.NetworkSettings.Networks.Keys) : c.HostConfig.NetworkMode,
        ["LocalVolumes"] = "0",
    };

    public static readonly string[] TableColumns = ["ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"];

    static string Header(string field) => field switch
    {
        "ID" => "CONTAINER ID",
        "RunningFor" => "CREATED",
        "CreatedAt" => "CREATED AT",
        "Names" => "NAMES",
        "LocalVolumes" => "LOCAL VOLUMES",
        _ => field.ToUpperInvariant(),
    };

    /// <summary>Renders rows of fields with a template; "table …" adds a header row and aligns columns
    /// as docker's tabwriter does (padding 3).</summary>
    public static string RenderPs(IReadOnlyList<Dictionary<string, string>> rows, string? format) =>
        Render(rows, format, "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}", Header);

    /// <summary>Rows of named fields through a template; <paramref name="header"/> names the column of
    /// a field in "table" output.</summary>
    public static string Render(IReadOnlyList<Dictionary<string, string>> rows, string? format, string defaultTable, Func<string, string> header)
    {
        format = string.IsNullOrEmpty(format) || format == "table" ? defaultTable : format;
        format = format.Replace("\\t", "\t").Replace("\\n", "\n");
        if (format == "json") format = "{{json .}}";
        var table = format.StartsWith("table", StringComparison.Ordinal);
        if (table) format = format[5..].TrimStart();
        var lines = new List<string>();
        if (table) lines.Add(Template(format, header, null));
        foreach (var r in rows)
            lines.Add(Template(format, f => r.TryGetValue(f, out var v) ? v : throw EngineException.Invalid($"template: can't evaluate field {f}"), r));
        if (!table) return string.Concat(lines.Select(l => l + "\n"));
        return Align(lines);
    }

    static string Template(string format, Func<string, string> field, Dictionary<string, string>? row) => Expand(format, expr =>
    {
        if (expr == "json .")
        {
            if (row is null) return "JSON";
            var o = new JsonObject();
            foreach (var (k, v) in row) o[k] = v;
            return o.ToJsonString(RelaxedOptions);
        }
        if (expr.StartsWith('.')) return field(expr[1..]);
        throw EngineException.Invalid($"template: unsupported action {{{{{expr}}}}}");
    });

    /// <summary>Copies the text of a template and replaces each {{action}} with what <paramref name="action"/> makes of it.</summary>
    static string Expand(string format, Func<string, string> action)
    {
        var sb = new StringBuilder();
        var i = 0;
        while (i < format.Length)
        {
            var open = format.IndexOf("{{", i, StringComparison.Ordinal);
            if (open < 0) { sb.Append(format, i, format.Length - i); break; }
            sb.Append(format, i, open - i);
            var close = format.IndexOf("}}", open, StringComparison.Ordinal);
            if (close < 0) throw EngineException.Invalid($"template: unclosed action in \"{format}\"");
            sb.Append(action(format[(open + 2)..close].Trim()));
            i = close + 2;
        }
        return sb.ToString();
    }

    static string Align(List<string> lines)
    {
        var cells = lines.Select(l => l.Split('\t')).ToList();
        var cols = cells.Max(c => c.Length);
        var widths = new int[cols];
        foreach (var row in cells)
            for (var i = 0; i < row.Length - 1; i++) widths[i] = Math.Max(widths[i], row[i].Length);
        var sb = new StringBuilder();
        foreach (var row in cells)
        {
            var line = new StringBuilder();
            for (var i = 0; i < row.Length; i++)
            {
                if (i < row.Length - 1) line.Append(row[i].PadRight(widths[i] + 3));
                else line.Append(row[i]);
            }
            sb.Append(line.ToString().TrimEnd()).Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>`inspect --format`: {{.A.B}} and {{json .A}} over the inspect document.</summary>
    public static string RenderInspect(JsonNode doc, string format) => Expand(format.Replace("\\t", "\t").Replace("\\n", "\n"), expr =>
    {
        var json = expr.StartsWith("json ", StringComparison.Ordinal);
        if (json) expr = expr[5..].Trim();
        if (!expr.StartsWith('.')) throw EngineException.Invalid($"template: unsupported action {{{{{expr}}}}}");
        JsonNode? node = doc;
        foreach (var part in expr[1..].Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            if (node is not JsonObject o || !o.TryGetPropertyValue(part, out node))
                throw EngineException.Invalid($"template: can't evaluate field {part}");
        }
        if (json) return node?.ToJsonString(RelaxedOptions) ?? "null";
        return Text(node);
    });

    /// <summary>A value as Go's text/template prints it: strings bare, lists as [a b], maps as map[k:v].</summary>
    static string Text(JsonNode? node) => node switch
    {
        null => "<no value>",
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>() ? "true" : "false",
        JsonArray a => "[" + string.Join(' ', a.Select(Text)) + "]",
        JsonObject ob => "map[" + string.Join(' ', ob.Select(kv => $"{kv.Key}:{Text(kv.Value)}")) + "]",
        _ => node.ToJsonString(),
    };
}
