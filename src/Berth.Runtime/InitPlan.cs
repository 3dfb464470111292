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
    /// <summary>exec: where to open the container's mount namespace, when not /proc/PID/ns/mnt (an
    /// inherited descriptor: a process in a user namespace may not open the container init's).</summary>
    [JsonPropertyName("execMntNs")] public string? ExecMntNs { get; set; }
    /// <summary>For create this is not serialized: the bundle's config.json follows as its own
    /// message, as given, so the runtime does not spend time re-serializing it.</summary>
    public Spec? SpecOrNull { get; set; }
    [JsonPropertyName("process")] public Process? ProcessOrNull { get; set; }
    [JsonIgnore] public Spec Spec { get => SpecOrNull!; set => SpecOrNull = value; }
    [JsonIgnore] public Process Process { get => ProcessOrNull!; set => ProcessOrNull = value; }
    [JsonPropertyName("rootfs")] public string Rootfs { get; set; } = "";
    [JsonPropertyName("bundle")] public string Bundle { get; set; } = "";
    [JsonPropertyName("fifo")] public string? Fifo { get; set; }
    /// <summary>`run`: no fifo; after "ready" init waits for "start" on the sync socket (and exits
    /// if the runtime closes it instead).</summary>
    public bool StartOnSocket { get; set; }
    [JsonPropertyName("noPivot")] public bool NoPivot { get; set; }
    [JsonPropertyName("noNewKeyring")] public bool NoNewKeyring { get; set; }
    /// <summary>No mount namespace in the config: the container shares the host's, its mounts are
    /// made there (under the rootfs, undone by delete) and it is entered with chroot, as runc does.</summary>
    public bool HostMountNs { get; set; }
    /// <summary>The spawning thread made "/" rslave in init's new mount namespace already.</summary>
    public bool RootSlaveDone { get; set; }
    [JsonPropertyName("newUtsNs")] public bool NewUtsNs { get; set; }
    [JsonPropertyName("newCgroupNs")] public bool NewCgroupNs { get; set; }
    /// <summary>Init runs in a new user namespace: no mknod (device nodes are bind-mounted from the host).</summary>
    [JsonPropertyName("userNs")] public bool UserNs { get; set; }
    [JsonPropertyName("preserveFds")] public int PreserveFds { get; set; }
    /// <summary>cgroup.procs files init writes itself into right before execve (the memory
    /// cgroup, so init's own pages are never charged to the container).</summary>
    [JsonPropertyName("lateCgroupProcs")] public List<string> LateCgroupProcs { get; set; } = new();
    /// <summary>v1 `tasks` files init writes "0" to first thing (every hierarchy but memory).</summary>
    public List<string> EarlyCgroupTasks { get; set; } = new();
    /// <summary>Host paths of the container's cgroup in each v1 hierarchy, for the cgroup mount.</summary>
    [JsonPropertyName("cgroupMounts")] public List<CgroupMountSource> CgroupMounts { get; set; } = new();
    [JsonPropertyName("cgroupV2Path")] public string? CgroupV2Path { get; set; }
    [JsonPropertyName("executable")] public string Executable { get; set; } = "";
    /// <summary>The compiled seccomp filter (8-byte sock_filter records) and its flags; compiled by the
    /// runtime so a bad profile fails create/exec with a clear error, loaded by init last.</summary>
    public byte[]? Seccomp { get; set; }
    public uint SeccompFlags { get; set; }
    /// <summary>With SCMP_ACT_NOTIFY: the OCI ContainerProcessState to send with the listener fd. The
    /// runtime connects to linux.seccomp.listenerPath and passes the socket right after the config
    /// ("seccomp-listener"); init sends this text and the fd over it once the filter is loaded.</summary>
    public string? SeccompListenerState { get; set; }
}

public sealed class CgroupMountSource
{
    /// <summary>Directory name under /sys/fs/cgroup in the container (e.g. "memory", "cpu,cpuacct").</summary>
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    /// <summary>Host directory of the container's cgroup in that hierarchy.</summary>
    [JsonPropertyName("hostPath")] public string HostPath { get; set; } = "";
    [JsonPropertyName("options")] public string Options { get; set; } = "";
}

/// <summary>Messages on the sync socket. Parent→init: "plan:{json}" (+ "config:{config.json}" for
/// create), "hooks-done", "start" (`run`, after "ready"). Init→parent: "hooks" (run prestart/createRuntime now), "pty" (+fd),
/// "ready", "error:msg". The plan is written and read by hand: on a cold NativeAOT start the
/// serializer's metadata costs milliseconds that every container start would pay.</summary>
public static class SyncMessages
{
    public const string Hooks = "hooks", HooksDone = "hooks-done", Pty = "pty", Ready = "ready", ErrorPrefix = "error:",
        SeccompListener = "seccomp-listener", Start = "start";
    public const string PlanPrefix = "plan:", ConfigPrefix = "config:";

    public static string Plan(InitPlan p)
    {
        var buf = new System.Buffers.ArrayBufferWriter<byte>(2048);
        using (var w = new Utf8JsonWriter(buf))
        {
            w.WriteStartObject();
            w.WriteString("id", p.Id);
            w.WriteNumber("execInitPid", p.ExecInitPid);
            if (p.ExecMntNs is not null) w.WriteString("execMntNs", p.ExecMntNs);
            w.WriteString("rootfs", p.Rootfs);
            w.WriteString("bundle", p.Bundle);
            if (p.Fifo is not null) w.WriteString("fifo", p.Fifo);
            if (p.StartOnSocket) w.WriteBoolean("startOnSocket", true);
            w.WriteBoolean("noPivot", p.NoPivot);
            w.WriteBoolean("hostMountNs", p.HostMountNs);
            w.WriteBoolean("rootSlaveDone", p.RootSlaveDone);
            w.WriteBoolean("noNewKeyring", p.NoNewKeyring);
            w.WriteBoolean("newCgroupNs", p.NewCgroupNs);
            if (p.UserNs) w.WriteBoolean("userNs", true);
            w.WriteNumber("preserveFds", p.PreserveFds);
            w.WriteStartArray("earlyCgroupTasks");
            foreach (var f in p.EarlyCgroupTasks) w.WriteStringValue(f);
            w.WriteEndArray();
            w.WriteStartArray("lateCgroupProcs");
            foreach (var f in p.LateCgroupProcs) w.WriteStringValue(f);
            w.WriteEndArray();
            w.WriteStartArray("cgroupMounts");
            foreach (var m in p.CgroupMounts)
            {
                w.WriteStartObject();
                w.WriteString("name", m.Name);
                w.WriteString("hostPath", m.HostPath);
                w.WriteString("options", m.Options);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            if (p.CgroupV2Path is not null) w.WriteString("cgroupV2Path", p.CgroupV2Path);
            w.WriteString("executable", p.Executable);
            if (p.Seccomp is not null)
            {
                w.WriteBase64String("seccomp", p.Seccomp);
                w.WriteNumber("seccompFlags", p.SeccompFlags);
                if (p.SeccompListenerState is not null) w.WriteString("seccompListenerState", p.SeccompListenerState);
            }
            if (p.ProcessOrNull is { } proc)
            {
                w.WritePropertyName("process");
                w.WriteRawValue(JsonSerializer.SerializeToUtf8Bytes(proc, SpecJsonContext.Default.Process));
            }
            w.WriteEndObject();
        }
        return PlanPrefix + System.Text.Encoding.UTF8.GetString(buf.WrittenSpan);
    }

    public static InitPlan ParsePlan(string m)
    {
        using var doc = JsonDocument.Parse(m.AsMemory(PlanPrefix.Length));
        var plan = new InitPlan();
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            var v = p.Value;
            switch (p.Name)
            {
                case "id": plan.Id = v.GetString()!; break;
                case "execInitPid": plan.ExecInitPid = v.GetInt32(); break;
                case "execMntNs": plan.ExecMntNs = v.GetString(); break;
                case "rootfs": plan.Rootfs = v.GetString()!; break;
                case "bundle": plan.Bundle = v.GetString()!; break;
                case "fifo": plan.Fifo = v.GetString(); break;
                case "startOnSocket": plan.StartOnSocket = v.GetBoolean(); break;
                case "noPivot": plan.NoPivot = v.GetBoolean(); break;
                case "hostMountNs": plan.HostMountNs = v.GetBoolean(); break;
                case "rootSlaveDone": plan.RootSlaveDone = v.GetBoolean(); break;
                case "noNewKeyring": plan.NoNewKeyring = v.GetBoolean(); break;
                case "newCgroupNs": plan.NewCgroupNs = v.GetBoolean(); break;
                case "userNs": plan.UserNs = v.GetBoolean(); break;
                case "preserveFds": plan.PreserveFds = v.GetInt32(); break;
                case "earlyCgroupTasks": plan.EarlyCgroupTasks = v.EnumerateArray().Select(x => x.GetString()!).ToList(); break;
                case "lateCgroupProcs": plan.LateCgroupProcs = v.EnumerateArray().Select(x => x.GetString()!).ToList(); break;
                case "cgroupMounts":
                    plan.CgroupMounts = v.EnumerateArray().Select(x => new CgroupMountSource
                    {
                        Name = x.GetProperty("name").GetString()!, HostPath = x.GetProperty("hostPath").GetString()!,
                        Options = x.GetProperty("options").GetString()!,
                    }).ToList();
                    break;
                case "cgroupV2Path": plan.CgroupV2Path = v.GetString(); break;
                case "executable": plan.Executable = v.GetString()!; break;
                case "seccomp": plan.Seccomp = v.GetBytesFromBase64(); break;
                case "seccompFlags": plan.SeccompFlags = v.GetUInt32(); break;
                case "seccompListenerState": plan.SeccompListenerState = v.GetString(); break;
                case "process": plan.ProcessOrNull = SpecJson.ParseProcess(System.Text.Encoding.UTF8.GetBytes(v.GetRawText()), "process"); break;
            }
        }
        return plan;
    }
}
