using System.Text.Json;
using System.Text.Json.Serialization;
using Berth.Oci.Runtime;

namespace Berth.Runtime;

/// <summary>Everything `init` needs, computed by the runtime (the parent) and sent over the sync
/// socket: init carries it out and makes no policy decisions of its own.</summary>
public sealed class InitPlan
{
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    /// <summary>Set for `exec`: join the container whose init has this host pid.</summary>
    [JsonPropertyName("execInitPid")] public int ExecInitPid { get; set; }
    /// <summary>For create this is not serialized: the bundle's config.json follows as its own
    /// message, as given, so the runtime does not spend time re-serializing it.</summary>
    [JsonPropertyName("spec")] public Spec? SpecOrNull { get; set; }
    [JsonPropertyName("process")] public Process? ProcessOrNull { get; set; }
    [JsonIgnore] public Spec Spec { get => SpecOrNull!; set => SpecOrNull = value; }
    [JsonIgnore] public Process Process { get => ProcessOrNull!; set => ProcessOrNull = value; }
    [JsonPropertyName("rootfs")] public string Rootfs { get; set; } = "";
    [JsonPropertyName("bundle")] public string Bundle { get; set; } = "";
    [JsonPropertyName("fifo")] public string? Fifo { get; set; }
    [JsonPropertyName("noPivot")] public bool NoPivot { get; set; }
    [JsonPropertyName("noNewKeyring")] public bool NoNewKeyring { get; set; }
    [JsonPropertyName("newMountNs")] public bool NewMountNs { get; set; }
    [JsonPropertyName("newUtsNs")] public bool NewUtsNs { get; set; }
    [JsonPropertyName("newCgroupNs")] public bool NewCgroupNs { get; set; }
    [JsonPropertyName("preserveFds")] public int PreserveFds { get; set; }
    /// <summary>cgroup.procs files init writes itself into right before execve (the memory
    /// cgroup, so init's own pages are never charged to the container).</summary>
    [JsonPropertyName("lateCgroupProcs")] public List<string> LateCgroupProcs { get; set; } = new();
    /// <summary>Host paths of the container's cgroup in each v1 hierarchy, for the cgroup mount.</summary>
    [JsonPropertyName("cgroupMounts")] public List<CgroupMountSource> CgroupMounts { get; set; } = new();
    [JsonPropertyName("cgroupV2Path")] public string? CgroupV2Path { get; set; }
    [JsonPropertyName("executable")] public string Executable { get; set; } = "";
}

public sealed class CgroupMountSource
{
    /// <summary>Directory name under /sys/fs/cgroup in the container (e.g. "memory", "cpu,cpuacct").</summary>
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    /// <summary>Host directory of the container's cgroup in that hierarchy.</summary>
    [JsonPropertyName("hostPath")] public string HostPath { get; set; } = "";
    [JsonPropertyName("options")] public string Options { get; set; } = "";
}

[JsonSourceGenerationOptions(WriteIndented = false, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(InitPlan))]
internal sealed partial class InitPlanJsonContext : JsonSerializerContext;

/// <summary>Messages on the sync socket. Parent→init: "plan:{json}", "hooks-done", "go". Init→parent:
/// "hooks" (run prestart/createRuntime now), "pty" (+fd), "ready", "error:msg".</summary>
public static class SyncMessages
{
    public const string Hooks = "hooks", HooksDone = "hooks-done", Pty = "pty", Ready = "ready", ErrorPrefix = "error:";
    public const string PlanPrefix = "plan:", Go = "go", ConfigPrefix = "config:";

    public static string Plan(InitPlan p) => PlanPrefix + JsonSerializer.Serialize(p, InitPlanJsonContext.Default.InitPlan);
    public static InitPlan ParsePlan(string m) =>
        JsonSerializer.Deserialize(m.AsSpan(PlanPrefix.Length), InitPlanJsonContext.Default.InitPlan)!;
}
