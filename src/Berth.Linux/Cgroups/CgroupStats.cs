using System.Text.Json;
using System.Text.Json.Serialization;

namespace Berth.Linux.Cgroups;

// Usage statistics. The JSON names and omit-when-zero rules reproduce runc's types/events.go
// (Go `omitempty` on numbers = omit when 0; on slices/maps = omit when empty, modelled as null),
// so CgroupStatsJson prints what `runc events --stats` prints.

using Omit = JsonIgnoreAttribute;

public sealed class CgroupStats
{
    [JsonPropertyName("cpu")] public CpuStats Cpu { get; set; } = new();
    [JsonPropertyName("cpuset")] public CpusetStats Cpuset { get; set; } = new();
    [JsonPropertyName("memory")] public MemoryStats Memory { get; set; } = new();
    [JsonPropertyName("pids")] public PidsStats Pids { get; set; } = new();
    [JsonPropertyName("blkio")] public BlkioStats Blkio { get; set; } = new();
    /// <summary>Per page size ("2MB"), like runc.</summary>
    [JsonPropertyName("hugetlb")] public SortedDictionary<string, HugetlbStats> Hugetlb { get; set; } = new(StringComparer.Ordinal);
    [JsonPropertyName("intel_rdt")] public IntelRdtStats IntelRdt { get; set; } = new();
    /// <summary>Always null here: runc fills it from the network namespace, not from cgroups.</summary>
    [JsonPropertyName("network_interfaces"), Omit(Condition = JsonIgnoreCondition.Never)] public JsonElement? NetworkInterfaces { get; set; }
}

public sealed class CpuUsage
{
    /// <summary>Nanoseconds.</summary>
    [JsonPropertyName("total"), Omit(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Total { get; set; }
    [JsonPropertyName("percpu")] public List<ulong>? PerCpu { get; set; }
    [JsonPropertyName("percpu_kernel")] public List<ulong>? PerCpuKernel { get; set; }
    [JsonPropertyName("percpu_user")] public List<ulong>? PerCpuUser { get; set; }
    [JsonPropertyName("kernel")] public ulong Kernel { get; set; }
    [JsonPropertyName("user")] public ulong User { get; set; }
}

public sealed class ThrottlingStats
{
    [JsonPropertyName("periods"), Omit(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Periods { get; set; }
    [JsonPropertyName("throttledPeriods"), Omit(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong ThrottledPeriods { get; set; }
    /// <summary>Nanoseconds.</summary>
    [JsonPropertyName("throttledTime"), Omit(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong ThrottledTime { get; set; }
}

public sealed class CpuStats
{
    [JsonPropertyName("usage")] public CpuUsage Usage { get; set; } = new();
    [JsonPropertyName("throttling")] public ThrottlingStats Throttling { get; set; } = new();
}

public sealed class CpusetStats
{
    [JsonPropertyName("cpus")] public List<ushort>? Cpus { get; set; }
    [JsonPropertyName("cpu_exclusive")] public ulong CpuExclusive { get; set; }
    [JsonPropertyName("mems")] public List<ushort>? Mems { get; set; }
    [JsonPropertyName("mem_hardwall")] public ulong MemHardwall { get; set; }
    [JsonPropertyName("mem_exclusive")] public ulong MemExclusive { get; set; }
    [JsonPropertyName("memory_migrate")] public ulong MemoryMigrate { get; set; }
    [JsonPropertyName("memory_spread_page")] public ulong MemorySpreadPage { get; set; }
    [JsonPropertyName("memory_spread_slab")] public ulong MemorySpreadSlab { get; set; }
    [JsonPropertyName("memory_pressure")] public ulong MemoryPressure { get; set; }
    [JsonPropertyName("sched_load_balance")] public ulong SchedLoadBalance { get; set; }
    [JsonPropertyName("sched_relax_domain_level")] public long SchedRelaxDomainLevel { get; set; }
}

public sealed class MemoryEntry
{
    [JsonPropertyName("limit")] public ulong Limit { get; set; }
    [JsonPropertyName("usage"), Omit(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Usage { get; set; }
    [JsonPropertyName("max"), Omit(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Max { get; set; }
    [JsonPropertyName("failcnt")] public ulong Failcnt { get; set; }
}

public sealed class MemoryStats
{
    /// <summary>Page cache bytes (v1 "cache", v2 "file").</summary>
    [JsonPropertyName("cache"), Omit(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Cache { get; set; }
    [JsonPropertyName("usage")] public MemoryEntry Usage { get; set; } = new();
    /// <summary>v1: memory+swap (memsw); v2: memory.current+swap.current, like runc.</summary>
    [JsonPropertyName("swap")] public MemoryEntry Swap { get; set; } = new();
    [JsonPropertyName("kernel")] public MemoryEntry Kernel { get; set; } = new();
    [JsonPropertyName("kernelTCP")] public MemoryEntry KernelTcp { get; set; } = new();
    /// <summary>memory.stat as key → value, sorted like Go's encoder sorts map keys.</summary>
    [JsonPropertyName("raw")] public SortedDictionary<string, ulong>? Raw { get; set; }
}

public sealed class PidsStats
{
    [JsonPropertyName("current"), Omit(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Current { get; set; }
    /// <summary>0 when unlimited ("max").</summary>
    [JsonPropertyName("limit"), Omit(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Limit { get; set; }
}

public sealed class BlkioEntry
{
    [JsonPropertyName("major"), Omit(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Major { get; set; }
    [JsonPropertyName("minor"), Omit(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Minor { get; set; }
    [JsonPropertyName("op"), Omit(Condition = JsonIgnoreCondition.WhenWritingDefault)] public string? Op { get; set; }
    [JsonPropertyName("value"), Omit(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Value { get; set; }
}

public sealed class BlkioStats
{
    [JsonPropertyName("ioServiceBytesRecursive")] public List<BlkioEntry>? IoServiceBytesRecursive { get; set; }
    [JsonPropertyName("ioServicedRecursive")] public List<BlkioEntry>? IoServicedRecursive { get; set; }
}

public sealed class HugetlbStats
{
    [JsonPropertyName("usage"), Omit(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Usage { get; set; }
    [JsonPropertyName("max"), Omit(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Max { get; set; }
    [JsonPropertyName("failcnt")] public ulong Failcnt { get; set; }
}

/// <summary>Intel RDT is not a cgroup; runc prints it empty when RDT is not configured.</summary>
public sealed class IntelRdtStats;

/// <summary>The envelope `runc events` prints: {"type":"stats","id":…,"data":…}.</summary>
public sealed class CgroupStatsEvent
{
    [JsonPropertyName("type")] public string Type { get; set; } = "stats";
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("data")] public CgroupStats? Data { get; set; }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(CgroupStatsEvent))]
[JsonSerializable(typeof(CgroupStats))]
public sealed partial class CgroupStatsJsonContext : JsonSerializerContext;

public static class CgroupStatsJson
{
    /// <summary>One line, exactly as `runc events --stats ID` prints it.</summary>
    public static string Serialize(string id, CgroupStats stats) =>
        JsonSerializer.Serialize(new CgroupStatsEvent { Id = id, Data = stats }, CgroupStatsJsonContext.Default.CgroupStatsEvent);
}
