using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Berth.Linux;
using Berth.Linux.Cgroups;
using Berth.Images;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.Containers;

/// <summary>One stats sample in the shape of the Docker Engine API's GET /containers/ID/stats
/// (ContainerStatsResponse): cgroup figures from the runtime's `events --stats` (v1, hybrid and v2
/// alike, the cgroup found from the runtime's own state), the host's cpu time from /proc/stat, the
/// interfaces of the container's network namespace from /proc/PID/net/dev.</summary>
public sealed class ContainerStatsSample
{
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("read")] public string Read { get; set; } = ContainerState.ZeroTime;
    [JsonPropertyName("preread")] public string PreRead { get; set; } = ContainerState.ZeroTime;
    [JsonPropertyName("pids_stats")] public PidsSample PidsStats { get; set; } = new();
    [JsonPropertyName("blkio_stats")] public BlkioSample BlkioStats { get; set; } = new();
    [JsonPropertyName("num_procs")] public uint NumProcs { get; set; }
    [JsonPropertyName("storage_stats")] public StorageSample StorageStats { get; set; } = new();
    [JsonPropertyName("cpu_stats")] public CpuSample CpuStats { get; set; } = new();
    [JsonPropertyName("precpu_stats")] public CpuSample PreCpuStats { get; set; } = new();
    [JsonPropertyName("memory_stats")] public MemorySample MemoryStats { get; set; } = new();
    /// <summary>Per interface; omitted when the container has no networking (docker's rule).</summary>
    [JsonPropertyName("networks")] public SortedDictionary<string, NetworkSample>? Networks { get; set; }
}

public sealed class PidsSample
{
    [JsonPropertyName("current"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Current { get; set; }
    [JsonPropertyName("limit"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Limit { get; set; }
}

public sealed class BlkioEntrySample
{
    [JsonPropertyName("major")] public ulong Major { get; set; }
    [JsonPropertyName("minor")] public ulong Minor { get; set; }
    [JsonPropertyName("op")] public string Op { get; set; } = "";
    [JsonPropertyName("value")] public ulong Value { get; set; }
}

public sealed class BlkioSample
{
    [JsonPropertyName("io_service_bytes_recursive"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public List<BlkioEntrySample>? IoServiceBytesRecursive { get; set; }
    [JsonPropertyName("io_serviced_recursive"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public List<BlkioEntrySample>? IoServicedRecursive { get; set; }
    [JsonPropertyName("io_queue_recursive"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public List<BlkioEntrySample>? IoQueueRecursive { get; set; }
    [JsonPropertyName("io_service_time_recursive"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public List<BlkioEntrySample>? IoServiceTimeRecursive { get; set; }
    [JsonPropertyName("io_wait_time_recursive"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public List<BlkioEntrySample>? IoWaitTimeRecursive { get; set; }
    [JsonPropertyName("io_merged_recursive"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public List<BlkioEntrySample>? IoMergedRecursive { get; set; }
    [JsonPropertyName("io_time_recursive"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public List<BlkioEntrySample>? IoTimeRecursive { get; set; }
    [JsonPropertyName("sectors_recursive"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public List<BlkioEntrySample>? SectorsRecursive { get; set; }
}

public sealed class StorageSample;

public sealed class CpuUsageSample
{
    [JsonPropertyName("total_usage")] public ulong TotalUsage { get; set; }
    /// <summary>cgroup v1 only.</summary>
    [JsonPropertyName("percpu_usage")] public List<ulong>? PercpuUsage { get; set; }
    [JsonPropertyName("usage_in_kernelmode")] public ulong UsageInKernelmode { get; set; }
    [JsonPropertyName("usage_in_usermode")] public ulong UsageInUsermode { get; set; }
}

public sealed class ThrottlingSample
{
    [JsonPropertyName("periods")] public ulong Periods { get; set; }
    [JsonPropertyName("throttled_periods")] public ulong ThrottledPeriods { get; set; }
    [JsonPropertyName("throttled_time")] public ulong ThrottledTime { get; set; }
}

public sealed class CpuSample
{
    [JsonPropertyName("cpu_usage")] public CpuUsageSample CpuUsage { get; set; } = new();
    [JsonPropertyName("system_cpu_usage"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong SystemCpuUsage { get; set; }
    [JsonPropertyName("online_cpus"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public uint OnlineCpus { get; set; }
    [JsonPropertyName("throttling_data")] public ThrottlingSample ThrottlingData { get; set; } = new();
}

public sealed class MemorySample
{
    [JsonPropertyName("usage"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Usage { get; set; }
    /// <summary>cgroup v1 only.</summary>
    [JsonPropertyName("max_usage"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong MaxUsage { get; set; }
    [JsonPropertyName("stats")] public SortedDictionary<string, ulong>? Stats { get; set; }
    /// <summary>cgroup v1 only.</summary>
    [JsonPropertyName("failcnt"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Failcnt { get; set; }
    [JsonPropertyName("limit"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Limit { get; set; }
}

public sealed class NetworkSample
{
    [JsonPropertyName("rx_bytes")] public ulong RxBytes { get; set; }
    [JsonPropertyName("rx_packets")] public ulong RxPackets { get; set; }
    [JsonPropertyName("rx_errors")] public ulong RxErrors { get; set; }
    [JsonPropertyName("rx_dropped")] public ulong RxDropped { get; set; }
    [JsonPropertyName("tx_bytes")] public ulong TxBytes { get; set; }
    [JsonPropertyName("tx_packets")] public ulong TxPackets { get; set; }
    [JsonPropertyName("tx_errors")] public ulong TxErrors { get; set; }
    [JsonPropertyName("tx_dropped")] public ulong TxDropped { get; set; }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ContainerStatsSample))]
public sealed partial class StatsJsonContext : JsonSerializerContext;

/// <summary>The row `docker stats` prints for a sample, computed as the docker CLI computes it.</summary>
public sealed record StatsRow(string Id, string Name, double CpuPercent, double Memory, double MemoryLimit, double MemoryPercent,
    double NetRx, double NetTx, double BlockRead, double BlockWrite, ulong Pids, bool Running);

/// <summary>Takes stats samples of containers (library API for `berth stats` and the Docker API's
/// GET /containers/ID/stats).</summary>
public static class ContainerStats
{
    const ulong NanosPerTick = 1_000_000_000 / 100; // USER_HZ

    /// <summary>One sample of a container; <paramref name="previous"/> (the last sample of the same
    /// container, if any) becomes precpu_stats/preread. A container that is not running gives a
    /// sample with only name and id set (as docker's stream does for a stopped container).</summary>
    public static ContainerStatsSample Sample(ContainerManager mgr, ContainerRecord c, ContainerStatsSample? previous)
    {
        var s = new ContainerStatsSample { Id = c.Id, Name = c.Name };
        if (previous is not null) { s.PreCpuStats = previous.CpuStats; s.PreRead = previous.Read; }
        if (!c.State.Running) return s;
        var cg = RuntimeStats(mgr, c);
        s.Read = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);
        if (cg is null) return s;
        var cpu = s.CpuStats;
        cpu.CpuUsage.TotalUsage = cg.Cpu.Usage.Total;
        cpu.CpuUsage.PercpuUsage = cg.Cpu.Usage.PerCpu is { Count: > 0 } per ? per : null;
        cpu.CpuUsage.UsageInKernelmode = cg.Cpu.Usage.Kernel;
        cpu.CpuUsage.UsageInUsermode = cg.Cpu.Usage.User;
        cpu.ThrottlingData = new ThrottlingSample
        {
            Periods = cg.Cpu.Throttling.Periods, ThrottledPeriods = cg.Cpu.Throttling.ThrottledPeriods, ThrottledTime = cg.Cpu.Throttling.ThrottledTime,
        };
        cpu.SystemCpuUsage = SystemCpuUsage();
        cpu.OnlineCpus = OnlineCpus();
        var mem = s.MemoryStats;
        mem.Usage = cg.Memory.Usage.Usage;
        mem.MaxUsage = cg.Memory.Usage.Max;
        mem.Failcnt = cg.Memory.Usage.Failcnt;
        mem.Stats = cg.Memory.Raw ?? [];
        // An unlimited cgroup reports a huge limit: docker caps it at the machine's memory.
        var machine = MachineMemory();
        mem.Limit = cg.Memory.Usage.Limit == 0 || (machine > 0 && cg.Memory.Usage.Limit > machine) ? machine : cg.Memory.Usage.Limit;
        s.PidsStats = new PidsSample { Current = cg.Pids.Current, Limit = cg.Pids.Limit };
        if (cg.Blkio.IoServiceBytesRecursive is { } bytes)
            s.BlkioStats.IoServiceBytesRecursive = bytes.Select(e => new BlkioEntrySample { Major = e.Major, Minor = e.Minor, Op = e.Op ?? "", Value = e.Value }).ToList();
        if (cg.Blkio.IoServicedRecursive is { Count: > 0 } ops)
            s.BlkioStats.IoServicedRecursive = ops.Select(e => new BlkioEntrySample { Major = e.Major, Minor = e.Minor, Op = e.Op ?? "", Value = e.Value }).ToList();
        if (c.HostConfig.NetworkMode != "host") s.Networks = ReadNetDev(c.State.Pid);
        return s;
    }

    /// <summary>`runtime events --stats ID`: the runtime finds the container's cgroup in its state.</summary>
    static CgroupStats? RuntimeStats(ContainerManager mgr, ContainerRecord c)
    {
        var dir = mgr.Store.RunDir(c.Id);
        if (!Directory.Exists(dir)) return null;
        var outPath = Path.Combine(dir, $"stats-{Environment.ProcessId}-{Environment.CurrentManagedThreadId}.json");
        try
        {
            using (var o = Sys.Open(outPath, O_WRONLY | O_CREAT | O_TRUNC, 0x180))
            using (var devnull = RuntimeClient.DevNull())
                if (mgr.Runtime.Run(["events", "--stats", c.Id], devnull.Value, o.Value, devnull.Value) != 0) return null;
            var ev = JsonSerializer.Deserialize(File.ReadAllBytes(outPath), CgroupStatsJsonContext.Default.CgroupStatsEvent);
            return ev?.Data;
        }
        catch (Exception e) when (e is JsonException or IOException or SyscallException) { return null; }
        finally { try { File.Delete(outPath); } catch (IOException) { } }
    }

    /// <summary>The host's cpu time in nanoseconds: the first line of /proc/stat (user nice system
    /// idle iowait irq softirq), as docker's daemon computes system_cpu_usage.</summary>
    public static ulong SystemCpuUsage()
    {
        foreach (var line in File.ReadLines("/proc/stat"))
        {
            if (!line.StartsWith("cpu ", StringComparison.Ordinal)) continue;
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            ulong ticks = 0;
            for (var i = 1; i <= 7 && i < f.Length; i++) ticks += ulong.Parse(f[i], CultureInfo.InvariantCulture);
            return ticks * NanosPerTick;
        }
        return 0;
    }

    /// <summary>Online cpus from /sys/devices/system/cpu/online ("0-3,6").</summary>
    public static uint OnlineCpus()
    {
        try
        {
            uint n = 0;
            foreach (var part in File.ReadAllText("/sys/devices/system/cpu/online").Trim().Split(',', StringSplitOptions.RemoveEmptyEntries))
            {
                var r = part.Split('-');
                n += r.Length == 2 ? uint.Parse(r[1], CultureInfo.InvariantCulture) - uint.Parse(r[0], CultureInfo.InvariantCulture) + 1 : 1;
            }
            return n;
        }
        catch (Exception e) when (e is IOException or FormatException) { return (uint)Environment.ProcessorCount; }
    }

    static ulong MachineMemory()
    {
        foreach (var line in File.ReadLines("/proc/meminfo"))
            if (line.StartsWith("MemTotal:", StringComparison.Ordinal))
                return ulong.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        return 0;
    }

    /// <summary>The container's interfaces other than lo, from /proc/PID/net/dev (its network
    /// namespace's view); null without any (docker omits networks then).</summary>
    public static SortedDictionary<string, NetworkSample>? ReadNetDev(int pid)
    {
        string[] lines;
        try { lines = File.ReadAllLines($"/proc/{pid}/net/dev"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        var map = new SortedDictionary<string, NetworkSample>(StringComparer.Ordinal);
        foreach (var line in lines.Skip(2))
        {
            var colon = line.IndexOf(':');
            if (colon < 0) continue;
            var name = line[..colon].Trim();
            if (name == "lo") continue;
            var f = line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(x => ulong.Parse(x, CultureInfo.InvariantCulture)).ToArray();
            if (f.Length < 12) continue;
            map[name] = new NetworkSample
            {
                RxBytes = f[0], RxPackets = f[1], RxErrors = f[2], RxDropped = f[3],
                TxBytes = f[8], TxPackets = f[9], TxErrors = f[10], TxDropped = f[11],
            };
        }
        return map.Count > 0 ? map : null;
    }

    /// <summary>The figures `docker stats` shows for a sample (docker CLI's calculateCPUPercentUnix,
    /// calculateMemUsageUnixNoCache, calculateBlockIO, calculateNetwork).</summary>
    public static StatsRow Row(ContainerStatsSample s, bool running)
    {
        double cpuPercent = 0;
        var cpuDelta = (double)s.CpuStats.CpuUsage.TotalUsage - s.PreCpuStats.CpuUsage.TotalUsage;
        var systemDelta = (double)s.CpuStats.SystemCpuUsage - s.PreCpuStats.SystemCpuUsage;
        double online = s.CpuStats.OnlineCpus;
        if (online == 0) online = s.CpuStats.CpuUsage.PercpuUsage?.Count ?? 0;
        if (s.PreCpuStats.SystemCpuUsage > 0 && systemDelta > 0 && cpuDelta > 0) cpuPercent = cpuDelta / systemDelta * online * 100.0;
        var m = s.MemoryStats;
        double used = m.Usage;
        if (m.Stats is { } st)
        {
            if (st.TryGetValue("total_inactive_file", out var v1) && v1 < m.Usage) used = m.Usage - v1;
            else if (!st.ContainsKey("total_inactive_file") && st.TryGetValue("inactive_file", out var v2) && v2 < m.Usage) used = m.Usage - v2;
        }
        var memPercent = m.Limit > 0 ? used / m.Limit * 100.0 : 0;
        double rx = 0, tx = 0;
        foreach (var n in s.Networks?.Values ?? (IEnumerable<NetworkSample>)[]) { rx += n.RxBytes; tx += n.TxBytes; }
        double read = 0, write = 0;
        foreach (var e in s.BlkioStats.IoServiceBytesRecursive ?? [])
        {
            if (e.Op.Length == 0) continue;
            if (e.Op[0] is 'r' or 'R') read += e.Value;
            else if (e.Op[0] is 'w' or 'W') write += e.Value;
        }
        return new StatsRow(s.Id, s.Name.TrimStart('/'), cpuPercent, used, m.Limit, memPercent, rx, tx, read, write, s.PidsStats.Current, running);
    }

    /// <summary>The fields `stats --format` knows (docker's stats formatter), by name.</summary>
    public static Dictionary<string, string> Fields(StatsRow r, bool truncate)
    {
        var id = truncate && r.Id.Length > 12 ? r.Id[..12] : r.Id;
        if (!r.Running)
            return new()
            {
                ["BlockIO"] = "--", ["CPUPerc"] = "--", ["Container"] = id, ["ID"] = id, ["MemPerc"] = "--",
                ["MemUsage"] = "-- / --", ["Name"] = r.Name, ["NetIO"] = "--", ["PIDs"] = "--",
            };
        return new()
        {
            ["BlockIO"] = Units.HumanSizeWithPrecision(r.BlockRead, 3) + " / " + Units.HumanSizeWithPrecision(r.BlockWrite, 3),
            ["CPUPerc"] = r.CpuPercent.ToString("0.00", CultureInfo.InvariantCulture) + "%",
            ["Container"] = id,
            ["ID"] = id,
            ["MemPerc"] = r.MemoryPercent.ToString("0.00", CultureInfo.InvariantCulture) + "%",
            ["MemUsage"] = Units.BytesSize(r.Memory) + " / " + Units.BytesSize(r.MemoryLimit),
            ["Name"] = r.Name,
            ["NetIO"] = Units.HumanSizeWithPrecision(r.NetRx, 3) + " / " + Units.HumanSizeWithPrecision(r.NetTx, 3),
            ["PIDs"] = r.Pids.ToString(CultureInfo.InvariantCulture),
        };
    }

    public const string DefaultTable = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";
}
