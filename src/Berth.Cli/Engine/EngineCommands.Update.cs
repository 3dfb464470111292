using System.CommandLine;
using System.Globalization;
using Berth.Engine;
using Berth.Engine.Containers;

namespace Berth.Cli.Engine;

public static unsafe partial class EngineCommands
{
    /// <summary>`berth update [flags] CONTAINER...`: docker update's flags into one engine update per
    /// container; prints each container updated (as given), then dockerd's warnings.</summary>
    static Command UpdateCommand()
    {
        var c = new Command("update", "update the resource limits and restart policy of containers (live when running)");
        var names = Containers();
        var memory = new Option<string?>("--memory", "-m") { Description = "memory limit" };
        var memorySwap = new Option<string?>("--memory-swap") { Description = "memory plus swap limit (-1: unlimited swap)" };
        var memoryReservation = new Option<string?>("--memory-reservation") { Description = "memory soft limit" };
        var kernelMemory = new Option<string?>("--kernel-memory") { Description = "kernel memory limit (deprecated, ignored)" };
        var cpus = new Option<string?>("--cpus") { Description = "number of CPUs" };
        var cpuShares = new Option<string?>("--cpu-shares", "-c") { Description = "CPU shares (relative weight)" };
        var cpuPeriod = new Option<string?>("--cpu-period") { Description = "CPU CFS period (microseconds)" };
        var cpuQuota = new Option<string?>("--cpu-quota") { Description = "CPU CFS quota (microseconds)" };
        var rtPeriod = new Option<string?>("--cpu-rt-period") { Description = "CPU real-time period (microseconds; kept for the next start)" };
        var rtRuntime = new Option<string?>("--cpu-rt-runtime") { Description = "CPU real-time runtime (microseconds; kept for the next start)" };
        var cpusetCpus = new Option<string?>("--cpuset-cpus") { Description = "CPUs in which to allow execution (0-3, 0,1)" };
        var cpusetMems = new Option<string?>("--cpuset-mems") { Description = "memory nodes in which to allow execution (0-3, 0,1)" };
        var pidsLimit = new Option<string?>("--pids-limit") { Description = "tune container pids limit (-1 for unlimited)" };
        var blkioWeight = new Option<string?>("--blkio-weight") { Description = "block IO weight (10 to 1000, 0 to disable)" };
        var restart = new Option<string?>("--restart") { Description = "restart policy (no, always, unless-stopped, on-failure[:N])" };
        c.Arguments.Add(names);
        foreach (var o in new Option[] { memory, memorySwap, memoryReservation, kernelMemory, cpus, cpuShares, cpuPeriod, cpuQuota, rtPeriod, rtRuntime, cpusetCpus, cpusetMems, pidsLimit, blkioWeight, restart })
            c.Options.Add(o);
        c.SetAction(p => Guard(() =>
        {
            var u = new ContainerUpdate();
            var any = false;
            string? Flag(Option<string?> o) { var v = p.GetValue(o); any |= v is not null; return v; }
            long Int(Option<string?> o, string v) => long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) ? n
                : throw EngineException.Invalid($"invalid argument \"{v}\" for \"{o.Name}\" flag: strconv.ParseInt: parsing \"{v}\": invalid syntax");
            long Size(Option<string?> o, string v) => v == "-1" && o == memorySwap ? -1 : HostResources.ParseSizeFlag(o.Name, v);
            if (Flag(memory) is { } m) u.Memory = Size(memory, m);
            if (Flag(memorySwap) is { } ms) u.MemorySwap = Size(memorySwap, ms);
            if (Flag(memoryReservation) is { } mr) u.MemoryReservation = Size(memoryReservation, mr);
            if (Flag(kernelMemory) is { } km) u.KernelMemory = Size(kernelMemory, km);
            if (Flag(cpus) is { } cp)
                u.NanoCpus = decimal.TryParse(cp, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n >= 0 ? (long)(n * 1_000_000_000m)
                    : throw EngineException.Invalid($"invalid argument \"{cp}\" for \"--cpus\" flag: failed to parse {cp} as a rational number");
            if (Flag(cpuShares) is { } cs) u.CpuShares = Int(cpuShares, cs);
            if (Flag(cpuPeriod) is { } pe) u.CpuPeriod = Int(cpuPeriod, pe);
            if (Flag(cpuQuota) is { } q) u.CpuQuota = Int(cpuQuota, q);
            if (Flag(rtPeriod) is { } rpe) u.CpuRealtimePeriod = Int(rtPeriod, rpe);
            if (Flag(rtRuntime) is { } rru) u.CpuRealtimeRuntime = Int(rtRuntime, rru);
            u.CpusetCpus = Flag(cpusetCpus);
            u.CpusetMems = Flag(cpusetMems);
            if (Flag(pidsLimit) is { } pl) u.PidsLimit = Int(pidsLimit, pl);
            if (Flag(blkioWeight) is { } bw)
                u.BlkioWeight = ushort.TryParse(bw, NumberStyles.None, CultureInfo.InvariantCulture, out var w) ? w
                    : throw EngineException.Invalid($"invalid argument \"{bw}\" for \"--blkio-weight\" flag: strconv.ParseUint: parsing \"{bw}\": invalid syntax");
            if (Flag(restart) is { } rp)
            {
                var parts = rp.Split(':', 2);
                u.RestartPolicy = new RestartPolicy { Name = parts[0] };
                if (parts.Length > 1)
                    u.RestartPolicy.MaximumRetryCount = int.TryParse(parts[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var max) ? max
                        : throw EngineException.Invalid($"invalid restart policy format: maximum retry count must be an integer");
            }
            if (!any) return Fail("you must provide one or more flags when using this command", 1);
            var mgr = Manager(p);
            var warnings = new List<string>();
            var rc = ForEach(p.GetValue(names)!, n => warnings.AddRange(mgr.Update(n, u)));
            foreach (var w2 in warnings) Console.Out.Write(w2 + "\n");
            return rc == 0 ? 0 : 1;
        }));
        return c;
    }
}
