using System.CommandLine;
using Berth.Engine;
using Berth.Engine.Containers;

namespace Berth.Cli.Engine;

public static partial class EngineCommands
{
    /// <summary>`stats [-a] [--no-stream] [--no-trunc] [--format …] [CONTAINER…]`: docker's live table
    /// (redrawn each second) or one table with --no-stream; figures as the docker CLI computes them
    /// from two samples a second apart.</summary>
    static Command StatsCommand()
    {
        var c = new Command("stats", "display a live stream of containers' resource usage");
        var all = new Option<bool>("--all", "-a") { Description = "show all containers (default: running)" };
        var noStream = new Option<bool>("--no-stream") { Description = "print one table and exit" };
        var noTrunc = new Option<bool>("--no-trunc") { Description = "do not truncate output" };
        var format = new Option<string?>("--format") { Description = "table | json | a Go template ({{.Name}} {{.CPUPerc}} {{.MemUsage}}…)" };
        var names = new Argument<string[]>("container") { Arity = ArgumentArity.ZeroOrMore, Description = "container names or ids (default: all running)" };
        foreach (var o in new Option[] { all, noStream, noTrunc, format }) c.Options.Add(o);
        c.Arguments.Add(names);
        c.SetAction(p => Guard(() =>
        {
            var mgr = Manager(p);
            var given = p.GetValue(names) ?? [];
            var trunc = !p.GetValue(noTrunc);
            var fmt = p.GetValue(format);
            // Validate the template before sampling (a bad one is one line, at once).
            ContainerFormat.Render([ContainerStats.Fields(ContainerStats.Row(new ContainerStatsSample(), false), true)], fmt, ContainerStats.DefaultTable, StatsHeader);
            var previous = new Dictionary<string, ContainerStatsSample>();
            List<ContainerRecord> Targets()
            {
                if (given.Length > 0) return given.Select(mgr.Get).ToList();
                var list = mgr.List();
                return p.GetValue(all) ? list : list.Where(x => x.State.Running).ToList();
            }
            List<ContainerStatsSample> SampleAll(List<ContainerRecord> targets)
            {
                var samples = new List<ContainerStatsSample>();
                foreach (var t in targets)
                {
                    var s = ContainerStats.Sample(mgr, t, previous.GetValueOrDefault(t.Id));
                    previous[t.Id] = s;
                    samples.Add(s);
                }
                return samples;
            }
            string Table(List<ContainerRecord> targets, List<ContainerStatsSample> samples) =>
                ContainerFormat.Render(samples.Select((s, i) => ContainerStats.Fields(ContainerStats.Row(s, targets[i].State.Running), trunc)).ToList(),
                    fmt, ContainerStats.DefaultTable, StatsHeader);

            var targets = Targets();
            SampleAll(targets);
            while (true)
            {
                Thread.Sleep(1000);
                // Containers that stopped meanwhile show "--" (refreshed state).
                targets = Targets();
                var text = Table(targets, SampleAll(targets));
                if (p.GetValue(noStream)) { Console.Out.Write(text); return 0; }
                Console.Out.Write("\u001b[2J\u001b[H" + text);
                Console.Out.Flush();
            }
        }));
        return c;
    }

    static string StatsHeader(string field) => field switch
    {
        "ID" => "CONTAINER ID",
        "Container" => "CONTAINER",
        "Name" => "NAME",
        "CPUPerc" => "CPU %",
        "MemUsage" => "MEM USAGE / LIMIT",
        "MemPerc" => "MEM %",
        "NetIO" => "NET I/O",
        "BlockIO" => "BLOCK I/O",
        "PIDs" => "PIDS",
        _ => field.ToUpperInvariant(),
    };
}
