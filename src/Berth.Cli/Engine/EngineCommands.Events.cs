using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Berth.Engine;
using Berth.Engine.Containers;
using Berth.Engine.Events;

namespace Berth.Cli.Engine;

public static partial class EngineCommands
{
    /// <summary>`events [--since T] [--until T] [--filter k=v] [--format …]`: the engine's event journal,
    /// history then live (docker: without --since only new events; with --until it ends).</summary>
    static Command EventsCommand()
    {
        var c = new Command("events", "get real time events from the engine");
        var since = new Option<string?>("--since") { Description = "show events created since a timestamp (RFC 3339, Unix seconds, or a duration like 10m)" };
        var until = new Option<string?>("--until") { Description = "stream events until this timestamp" };
        var filter = new Option<string[]>("--filter", "-f") { Description = "type=, event=, container=, image=, volume=, network=, label=" };
        var format = new Option<string?>("--format") { Description = "json | {{json .}} | a Go template ({{.Type}} {{.Action}} {{.Actor.ID}}…)" };
        foreach (var o in new Option[] { since, until, filter, format }) c.Options.Add(o);
        c.SetAction(p => Guard(() =>
        {
            var root = p.GetValue(BerthCli.DataRoot)!;
            var now = DateTimeOffset.UtcNow;
            long? s = p.GetValue(since) is { } ss ? ParseEventTime(ss, now) : null;
            long? u = p.GetValue(until) is { } us ? ParseEventTime(us, now) : null;
            var match = EventJournal.Filter(p.GetValue(filter) ?? []);
            var fmt = p.GetValue(format);
            if (fmt == "json") fmt = "{{json .}}";
            using var cts = new CancellationTokenSource();
            Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
            EventJournal.Follow(root, s, u, e =>
            {
                if (!match(e)) return;
                string line;
                if (string.IsNullOrEmpty(fmt)) line = EventJournal.Format(e);
                // the message as the API sends it (docker's JSON names: status, id, from, scope, time…)
                else if (fmt == "{{json .}}") line = System.Text.Encoding.UTF8.GetString(JsonSerializer.SerializeToUtf8Bytes(e, EventJsonContext.Default.EngineEvent));
                else line = ContainerFormat.RenderInspect(EventJournal.TemplateDocument(e), fmt);
                Console.Out.Write(line + "\n");
                Console.Out.Flush();
            }, cts.Token);
            return 0;
        }));
        return c;
    }

    /// <summary>docker's timestamps for --since/--until: RFC 3339 (date or date-time), Unix seconds
    /// (with fraction), or a Go duration before now ("10m", "1h30m", "45s").</summary>
    static long ParseEventTime(string v, DateTimeOffset now)
    {
        if (decimal.TryParse(v, NumberStyles.Number, CultureInfo.InvariantCulture, out var secs))
            return (long)(secs * 1_000_000_000m);
        if (System.Text.RegularExpressions.Regex.IsMatch(v, @"^(\d+(\.\d+)?(h|m|s|ms))+$"))
        {
            var total = TimeSpan.Zero;
            foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(v, @"(\d+(?:\.\d+)?)(ms|h|m|s)"))
            {
                var n = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                total += m.Groups[2].Value switch { "h" => TimeSpan.FromHours(n), "m" => TimeSpan.FromMinutes(n), "s" => TimeSpan.FromSeconds(n), _ => TimeSpan.FromMilliseconds(n) };
            }
            return (now - total).ToUnixTimeMilliseconds() * 1_000_000;
        }
        if (DateTimeOffset.TryParse(v, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t))
            return (t.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;
        throw EngineException.Invalid($"invalid timestamp \"{v}\": expected RFC 3339, Unix seconds or a duration (10m)");
    }
}
