using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Berth.Engine.Containers;

/// <summary>What `ps` and `inspect --format` print: docker's status texts, durations, the command
/// column; templates go through <see cref="Formatting.TemplateOutput"/>.</summary>
public static class ContainerFormat
{
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

    /// <summary>Rows of named fields through a template (<see cref="Formatting.TemplateOutput"/>);
    /// <paramref name="header"/> names the column of a field in "table" output.</summary>
    public static string Render(IReadOnlyList<Dictionary<string, string>> rows, string? format, string defaultTable, Func<string, string> header)
    {
        var objects = rows.Select(r =>
        {
            var o = new JsonObject();
            foreach (var (k, v) in r) o[k] = v;
            return o;
        }).ToList();
        try { return Formatting.TemplateOutput.Rows(objects, format, defaultTable, header); }
        catch (Formatting.TemplateException e) { throw EngineException.Invalid(e.Message); }
    }

    /// <summary>`inspect --format` over the inspect document.</summary>
    public static string RenderInspect(JsonNode doc, string format)
    {
        try { return Formatting.TemplateOutput.Document(doc, format); }
        catch (Formatting.TemplateException e) { throw EngineException.Invalid(e.Message); }
    }
}
