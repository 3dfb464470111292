using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Berth.Engine;
using Berth.Engine.Containers;
using Berth.Images;

namespace Berth.Cli.Engine;

public static partial class EngineCommands
{
    /// <summary>`system info|df|prune` and `container prune`.</summary>
    static IEnumerable<Command> SystemVerbs()
    {
        var system = new Command("system", "manage Berth: info, disk usage, prune");

        var info = new Command("info", "display system-wide information");
        var infoFormat = new Option<string?>("--format", "-f") { Description = "a Go template, or json" };
        info.Options.Add(infoFormat);
        info.SetAction(p => Guard(() =>
        {
            var mgr = Manager(p);
            var doc = SystemInfo(mgr);
            var fmt = p.GetValue(infoFormat);
            if (fmt is not null) { Console.Out.Write(ContainerFormat.RenderInspect(doc, fmt == "json" ? "{{json .}}" : fmt) + "\n"); return 0; }
            string S(string k) => doc[k]?.ToString() ?? "";
            Console.Out.Write(string.Join("\n",
            [
                "Server:",
                $" Containers: {S("Containers")}", $"  Running: {S("ContainersRunning")}", $"  Paused: {S("ContainersPaused")}", $"  Stopped: {S("ContainersStopped")}",
                $" Images: {S("Images")}", $" Server Version: {S("ServerVersion")}", $" Storage Driver: {S("Driver")}", $" Logging Driver: {S("LoggingDriver")}",
                $" Cgroup Driver: {S("CgroupDriver")}", $" Cgroup Version: {S("CgroupVersion")}", $" Default Runtime: {S("DefaultRuntime")}",
                $" Kernel Version: {S("KernelVersion")}", $" Operating System: {S("OperatingSystem")}", $" OSType: {S("OSType")}", $" Architecture: {S("Architecture")}",
                $" CPUs: {S("NCPU")}", $" Total Memory: {Units.BytesSize(doc["MemTotal"]!.GetValue<long>())}", $" Name: {S("Name")}", $" Docker Root Dir: {S("DockerRootDir")}",
            ]) + "\n");
            return 0;
        }));
        system.Subcommands.Add(info);

        var df = new Command("df", "show disk usage");
        var verbose = new Option<bool>("--verbose", "-v") { Description = "show detailed information on space usage" };
        var dfFormat = new Option<string?>("--format") { Description = "table | json | a Go template ({{.Type}} {{.Size}}…)" };
        df.Options.Add(verbose); df.Options.Add(dfFormat);
        df.SetAction(p => Guard(() =>
        {
            var mgr = Manager(p);
            var rows = EngineMaintenance.DiskUsage(mgr).Select(r => new Dictionary<string, string>
            {
                ["Type"] = r.Type, ["TotalCount"] = r.Total.ToString(CultureInfo.InvariantCulture), ["Active"] = r.Active.ToString(CultureInfo.InvariantCulture),
                ["Size"] = Units.HumanSize(r.Size),
                ["Reclaimable"] = r.Size > 0 && r.Type != "Build Cache" ? $"{Units.HumanSize(r.Reclaimable)} ({r.Reclaimable * 100 / r.Size}%)" : Units.HumanSize(r.Reclaimable),
            }).ToList();
            Console.Out.Write(ContainerFormat.Render(rows, p.GetValue(dfFormat), "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
                f => f switch { "TotalCount" => "TOTAL", _ => f.ToUpperInvariant() }));
            if (p.GetValue(verbose))
            {
                var now = DateTime.UtcNow;
                var containers = mgr.List();
                Console.Out.Write("\nContainers space usage:\n\n" + ContainerFormat.Render(containers.Select(c => new Dictionary<string, string>
                {
                    ["ID"] = c.ShortId, ["Image"] = c.Config.Image, ["Command"] = ContainerFormat.Command(c, true), ["LocalVolumes"] = c.Mounts.Count(m => m.Type == "volume").ToString(CultureInfo.InvariantCulture),
                    ["Size"] = Units.HumanSize(EngineMaintenance.ContainerSize(mgr, c)), ["RunningFor"] = Units.HumanDuration(now - ContainerFormat.ParseTime(c.Created)) + " ago",
                    ["Status"] = ContainerFormat.Status(c, now), ["Names"] = c.BareName,
                }).ToList(), null, "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
                    f => f switch { "ID" => "CONTAINER ID", "RunningFor" => "CREATED", "LocalVolumes" => "LOCAL VOLUMES", _ => f.ToUpperInvariant() }));
                var vs = new Berth.Engine.Volumes.VolumeStore(mgr.Store.Root);
                Console.Out.Write("\nLocal Volumes space usage:\n\n" + ContainerFormat.Render(vs.List().Select(v => new Dictionary<string, string>
                {
                    ["Name"] = v.Name, ["Links"] = containers.Count(c => c.Mounts.Any(m => m.Type == "volume" && m.Name == v.Name)).ToString(CultureInfo.InvariantCulture),
                    ["Size"] = Units.HumanSize(EngineMaintenance.DirSize(v.Mountpoint)),
                }).ToList(), null, "table {{.Name}}\t{{.Links}}\t{{.Size}}", f => f == "Name" ? "VOLUME NAME" : f.ToUpperInvariant()));
            }
            return 0;
        }));
        system.Subcommands.Add(df);

        var prune = new Command("prune", "remove unused data");
        var all = new Option<bool>("--all", "-a") { Description = "remove all unused images, not just dangling ones" };
        var volumes = new Option<bool>("--volumes") { Description = "prune volumes" };
        var force = new Option<bool>("--force", "-f") { Description = "do not prompt for confirmation" };
        foreach (var o in new Option[] { all, volumes, force }) prune.Options.Add(o);
        prune.SetAction(p => Guard(() =>
        {
            if (!p.GetValue(force) && !Confirm("WARNING! This will remove:\n  - all stopped containers\n" + (p.GetValue(volumes) ? "  - all volumes not used by at least one container\n" : "")
                + (p.GetValue(all) ? "  - all images without at least one container associated to them\n" : "  - all dangling images\n"))) return 0;
            var mgr = Manager(p);
            long total = 0;
            var c = EngineMaintenance.PruneContainers(mgr);
            total += c.SpaceReclaimed;
            if (c.Deleted.Count > 0) Console.Out.Write("Deleted Containers:\n" + string.Concat(c.Deleted.Select(x => x + "\n")) + "\n");
            if (p.GetValue(volumes))
            {
                var v = EngineMaintenance.PruneVolumes(mgr);
                total += v.SpaceReclaimed;
                if (v.Deleted.Count > 0) Console.Out.Write("Deleted Volumes:\n" + string.Concat(v.Deleted.Select(x => x + "\n")) + "\n");
            }
            var i = EngineMaintenance.PruneImagesAsync(mgr, p.GetValue(all), CancellationToken.None).GetAwaiter().GetResult();
            total += i.SpaceReclaimed;
            if (i.Deleted.Count > 0) Console.Out.Write("Deleted Images:\n" + string.Concat(i.Deleted.Select(x => x + "\n")) + "\n");
            Console.Out.Write($"Total reclaimed space: {Units.HumanSize(total)}\n");
            return 0;
        }));
        system.Subcommands.Add(prune);

        var boot = new Command("boot", "after a host boot: start containers with restart policy always or unless-stopped (not stopped by the user) and their pods");
        boot.SetAction(p => Guard(() =>
        {
            var failures = EngineBoot.Run(Manager(p), what => Console.Out.Write(what + "\n"), what => Console.Error.Write("berth: " + what + "\n"));
            return failures == 0 ? 0 : 1;
        }));
        system.Subcommands.Add(boot);
        yield return system;

        var container = new Command("container", "manage containers (prune)");
        var cprune = new Command("prune", "remove all stopped containers");
        var cforce = new Option<bool>("--force", "-f") { Description = "do not prompt for confirmation" };
        cprune.Options.Add(cforce);
        cprune.SetAction(p => Guard(() =>
        {
            if (!p.GetValue(cforce) && !Confirm("WARNING! This will remove all stopped containers.\n")) return 0;
            var r = EngineMaintenance.PruneContainers(Manager(p));
            if (r.Deleted.Count > 0) Console.Out.Write("Deleted Containers:\n" + string.Concat(r.Deleted.Select(x => x + "\n")) + "\n");
            Console.Out.Write($"Total reclaimed space: {Units.HumanSize(r.SpaceReclaimed)}\n");
            return 0;
        }));
        container.Subcommands.Add(cprune);
        yield return container;
    }

    static bool Confirm(string warning)
    {
        Console.Out.Write(warning + "Are you sure you want to continue? [y/N] ");
        Console.Out.Flush();
        var answer = Console.In.ReadLine()?.Trim().ToLowerInvariant();
        return answer is "y" or "yes";
    }

    /// <summary>docker info's fields, as far as they are true here.</summary>
    static JsonObject SystemInfo(ContainerManager mgr)
    {
        var list = mgr.List();
        var os = "Linux";
        try
        {
            foreach (var l in File.ReadLines("/etc/os-release"))
                if (l.StartsWith("PRETTY_NAME=", StringComparison.Ordinal)) os = l[12..].Trim('"');
        }
        catch (IOException) { }
        var cgroup2Only = File.Exists("/sys/fs/cgroup/cgroup.controllers");
        return new JsonObject
        {
            ["ID"] = Environment.MachineName,
            ["Containers"] = list.Count,
            ["ContainersRunning"] = list.Count(c => c.State.Running && !c.State.Paused),
            ["ContainersPaused"] = list.Count(c => c.State.Paused),
            ["ContainersStopped"] = list.Count(c => !c.State.Running),
            ["Images"] = new Berth.Images.Content.ImageStore(mgr.Store.Root).ListRecords().Count(),
            ["Driver"] = Berth.Images.Snapshots.OverlaySnapshotter.Create(mgr.Store.Root).Driver,
            ["LoggingDriver"] = "json-file",
            ["CgroupDriver"] = "cgroupfs",
            ["CgroupVersion"] = cgroup2Only ? "2" : "1",
            ["DefaultRuntime"] = Path.GetFileName(mgr.Runtime.Path),
            ["KernelVersion"] = File.ReadAllText("/proc/sys/kernel/osrelease").Trim(),
            ["OperatingSystem"] = os,
            ["OSType"] = "linux",
            ["Architecture"] = System.Runtime.InteropServices.RuntimeInformation.OSArchitecture == System.Runtime.InteropServices.Architecture.Arm64 ? "aarch64" : "x86_64",
            ["NCPU"] = (int)ContainerStats.OnlineCpus(),
            ["MemTotal"] = (long)ReadMemTotal(),
            ["Name"] = Environment.MachineName,
            ["DockerRootDir"] = mgr.Store.Root,
            ["ServerVersion"] = typeof(EngineCommands).Assembly.GetName().Version?.ToString() ?? "",
        };
    }

    static ulong ReadMemTotal()
    {
        foreach (var line in File.ReadLines("/proc/meminfo"))
            if (line.StartsWith("MemTotal:", StringComparison.Ordinal))
                return ulong.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        return 0;
    }
}
