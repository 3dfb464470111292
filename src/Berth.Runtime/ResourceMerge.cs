using Berth.Oci.Runtime;

namespace Berth.Runtime;

/// <summary>Merges an `update` request into the container's resources: set fields replace, unset keep.</summary>
public static class ResourceMerge
{
    public static LinuxResources Merge(LinuxResources? current, LinuxResources update)
    {
        var r = current ?? new LinuxResources();
        if (update.Memory is { } m)
        {
            r.Memory ??= new Memory();
            r.Memory.Limit = m.Limit ?? r.Memory.Limit;
            r.Memory.Reservation = m.Reservation ?? r.Memory.Reservation;
            r.Memory.Swap = m.Swap ?? r.Memory.Swap;
            r.Memory.Swappiness = m.Swappiness ?? r.Memory.Swappiness;
            r.Memory.DisableOomKiller = m.DisableOomKiller ?? r.Memory.DisableOomKiller;
            r.Memory.CheckBeforeUpdate = m.CheckBeforeUpdate ?? r.Memory.CheckBeforeUpdate;
        }
        if (update.Cpu is { } c)
        {
            r.Cpu ??= new Cpu();
            r.Cpu.Shares = c.Shares ?? r.Cpu.Shares;
            r.Cpu.Quota = c.Quota ?? r.Cpu.Quota;
            r.Cpu.Period = c.Period ?? r.Cpu.Period;
            r.Cpu.Burst = c.Burst ?? r.Cpu.Burst;
            r.Cpu.RealtimeRuntime = c.RealtimeRuntime ?? r.Cpu.RealtimeRuntime;
            r.Cpu.RealtimePeriod = c.RealtimePeriod ?? r.Cpu.RealtimePeriod;
            r.Cpu.Cpus = c.Cpus ?? r.Cpu.Cpus;
            r.Cpu.Mems = c.Mems ?? r.Cpu.Mems;
            r.Cpu.Idle = c.Idle ?? r.Cpu.Idle;
        }
        if (update.Pids is { } p) r.Pids = p;
        if (update.BlockIO is { } b) r.BlockIO = b;
        if (update.HugepageLimits is { } h) r.HugepageLimits = h;
        if (update.Unified is { } u)
        {
            r.Unified ??= new Dictionary<string, string>();
            foreach (var (k, v) in u) r.Unified[k] = v;
        }
        if (update.Devices is { } d) r.Devices = d;
        return r;
    }
}
