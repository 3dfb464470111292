using System.Text.Json.Serialization;

namespace Berth.Engine.Containers;

/// <summary>A container as the engine persists it (one atomically written container.json per
/// container). Field names follow `docker inspect`, so inspect is this record plus nothing.</summary>
public sealed class ContainerRecord
{
    public string Id { get; set; } = "";
    public string Created { get; set; } = "";
    public string Path { get; set; } = "";
    public List<string> Args { get; set; } = [];
    public ContainerState State { get; set; } = new();
    public string Image { get; set; } = "";
    public string ResolvConfPath { get; set; } = "";
    public string HostnamePath { get; set; } = "";
    public string HostsPath { get; set; } = "";
    public string LogPath { get; set; } = "";
    /// <summary>With a leading "/", as docker reports it.</summary>
    public string Name { get; set; } = "";
    public int RestartCount { get; set; }
    public string Driver { get; set; } = "";
    public string Platform { get; set; } = "linux";
    /// <summary>The root filesystem directory (podman's --rootfs); later the image snapshot's mount.</summary>
    public string Rootfs { get; set; } = "";
    public HostConfig HostConfig { get; set; } = new();
    public List<MountPoint> Mounts { get; set; } = [];
    public ContainerConfig Config { get; set; } = new();
    public NetworkSettings NetworkSettings { get; set; } = new();
    /// <summary>The create request's per-network settings (docker's NetworkingConfig); merged into
    /// NetworkSettings.Networks at create, never stored.</summary>
    public NetworkingConfig? NetworkingConfig { get; set; }
    /// <summary>Engine bookkeeping, not part of docker's shape; dropped from inspect output.</summary>
    public MonitorInfo? Monitor { get; set; }
    /// <summary>Engine bookkeeping (docker's HasBeenManuallyStopped): set by `stop`, cleared by `start`;
    /// `system boot` leaves such `unless-stopped` containers down. Dropped from inspect output.</summary>
    public bool? ManuallyStopped { get; set; }
    /// <summary>For a container of an image: the chain ID of the image's top layer, the parent of the
    /// container's writable snapshot (whose mount is <see cref="Rootfs"/>). Null with --rootfs.</summary>
    public string? ImageLayer { get; set; }
    /// <summary>The id of the pod the container belongs to (podman's "Pod"), null outside pods.</summary>
    public string? Pod { get; set; }

    public string ShortId => Id[..12];
    public string BareName => Name.TrimStart('/');
}

public sealed class ContainerState
{
    /// <summary>created | running | paused | restarting | removing | exited | dead</summary>
    public string Status { get; set; } = "created";
    public bool Running { get; set; }
    public bool Paused { get; set; }
    public bool Restarting { get; set; }
    public bool OOMKilled { get; set; }
    public bool Dead { get; set; }
    public int Pid { get; set; }
    public int ExitCode { get; set; }
    public string Error { get; set; } = "";
    public string StartedAt { get; set; } = ZeroTime;
    public string FinishedAt { get; set; } = ZeroTime;
    /// <summary>docker's State.Health: present while the container has a health check.</summary>
    public HealthState? Health { get; set; }

    public const string ZeroTime = "0001-01-01T00:00:00Z";
}

public sealed class HealthState
{
    /// <summary>starting | healthy | unhealthy</summary>
    public string Status { get; set; } = "starting";
    public int FailingStreak { get; set; }
    public List<HealthLogEntry> Log { get; set; } = [];
}

public sealed class HealthLogEntry
{
    public string Start { get; set; } = "";
    public string End { get; set; } = "";
    public int ExitCode { get; set; }
    public string Output { get; set; } = "";
}

/// <summary>The live monitor of a running container: its pid and start time (so a recycled pid is
/// not mistaken for it), and the container init's start time.</summary>
public sealed class MonitorInfo
{
    public int Pid { get; set; }
    public ulong StartTime { get; set; }
    public ulong InitStartTime { get; set; }
}

public sealed class ContainerConfig
{
    public string Hostname { get; set; } = "";
    public string Domainname { get; set; } = "";
    public string User { get; set; } = "";
    public bool AttachStdin { get; set; }
    public bool AttachStdout { get; set; }
    public bool AttachStderr { get; set; }
    public bool Tty { get; set; }
    public bool OpenStdin { get; set; }
    public bool StdinOnce { get; set; }
    public List<string> Env { get; set; } = [];
    public List<string>? Cmd { get; set; }
    public string Image { get; set; } = "";
    public string WorkingDir { get; set; } = "";
    public List<string>? Entrypoint { get; set; }
    public Dictionary<string, string> Labels { get; set; } = [];
    /// <summary>Empty in a request: the image's, else SIGTERM (filled in at create).</summary>
    public string StopSignal { get; set; } = "";
    public int? StopTimeout { get; set; }
    /// <summary>"80/tcp" → {} (docker's shape): the image's, -p's and --expose's ports.</summary>
    public Dictionary<string, Berth.Oci.Image.EmptyObject>? ExposedPorts { get; set; }
    /// <summary>docker's Config.Healthcheck (Test: [] inherit, ["NONE"], ["CMD", …], ["CMD-SHELL", "…"];
    /// durations in nanoseconds, 0 = the default).</summary>
    public Berth.Oci.Image.HealthConfig? Healthcheck { get; set; }
    /// <summary>The image's volumes (docker's Config.Volumes: paths that get anonymous volumes).</summary>
    public Dictionary<string, Berth.Oci.Image.EmptyObject>? Volumes { get; set; }
}

public sealed class HostConfig
{
    public List<string> Binds { get; set; } = [];
    public LogConfig LogConfig { get; set; } = new();
    /// <summary>bridge (docker's default; "" and "default" mean it) | none | host | container:NAME | a network's name.</summary>
    public string NetworkMode { get; set; } = "";
    public Dictionary<string, List<PortBinding>> PortBindings { get; set; } = [];
    public bool PublishAllPorts { get; set; }
    public List<string> Dns { get; set; } = [];
    public List<string> DnsSearch { get; set; } = [];
    public List<string> DnsOptions { get; set; } = [];
    public List<string> ExtraHosts { get; set; } = [];
    public RestartPolicy RestartPolicy { get; set; } = new();
    public bool AutoRemove { get; set; }
    public List<string> CapAdd { get; set; } = [];
    public List<string> CapDrop { get; set; } = [];
    public bool Privileged { get; set; }
    public bool ReadonlyRootfs { get; set; }
    /// <summary>[height, width] of the terminal at start (API 1.42; the client resizes it after).</summary>
    public List<uint>? ConsoleSize { get; set; }
    public List<string> SecurityOpt { get; set; } = [];
    public Dictionary<string, string> Tmpfs { get; set; } = [];
    public long Memory { get; set; }
    public long NanoCpus { get; set; }
    public long? PidsLimit { get; set; }
    public List<string> MaskedPaths { get; set; } = [];
    public List<string> ReadonlyPaths { get; set; } = [];

    // Resources, devices and mounts (docker's names; validated and applied in HostResources).
    public List<HostMount> Mounts { get; set; } = [];
    public List<Ulimit> Ulimits { get; set; } = [];
    public List<DeviceMapping> Devices { get; set; } = [];
    public long MemorySwap { get; set; }
    public long MemoryReservation { get; set; }
    public long CpuShares { get; set; }
    public long CpuPeriod { get; set; }
    public long CpuQuota { get; set; }
    /// <summary>Real-time budget (cgroup v1 cpu.rt_period_us / cpu.rt_runtime_us), microseconds; 0 is unset.</summary>
    public long CpuRealtimePeriod { get; set; }
    public long CpuRealtimeRuntime { get; set; }
    public ushort BlkioWeight { get; set; }
    public string CpusetCpus { get; set; } = "";
    public string CpusetMems { get; set; } = "";
    public long ShmSize { get; set; }
    public List<string> GroupAdd { get; set; } = [];
    public Dictionary<string, string> Sysctls { get; set; } = [];
    public int OomScoreAdj { get; set; }
    public bool? OomKillDisable { get; set; }
    /// <summary>Run an init as PID 1 that reaps zombies and forwards signals (docker's --init).</summary>
    public bool? Init { get; set; }

    /// <summary>Fills what a request left null (API clients send null for anything unset); an empty log
    /// driver or restart policy name means the default. Returns this.</summary>
    public HostConfig Normalize()
    {
        Binds ??= []; Dns ??= []; DnsSearch ??= []; DnsOptions ??= []; ExtraHosts ??= [];
        CapAdd ??= []; CapDrop ??= []; SecurityOpt ??= []; MaskedPaths ??= []; ReadonlyPaths ??= [];
        Mounts ??= []; Ulimits ??= []; Devices ??= []; GroupAdd ??= [];
        Tmpfs ??= []; Sysctls ??= []; PortBindings ??= [];
        foreach (var port in PortBindings.Where(kv => kv.Value is null).Select(kv => kv.Key).ToList()) PortBindings[port] = [];
        foreach (var m in Mounts) { m.Type ??= ""; m.Source ??= ""; m.Target ??= ""; }
        foreach (var d in Devices) { d.PathOnHost ??= ""; d.PathInContainer ??= ""; d.CgroupPermissions ??= ""; }
        foreach (var u in Ulimits) u.Name ??= "";
        NetworkMode ??= ""; CpusetCpus ??= ""; CpusetMems ??= "";
        LogConfig ??= new();
        LogConfig.Config ??= [];
        if (string.IsNullOrEmpty(LogConfig.Type)) LogConfig.Type = "json-file";
        RestartPolicy ??= new();
        if (string.IsNullOrEmpty(RestartPolicy.Name)) RestartPolicy.Name = "no";
        return this;
    }
}

/// <summary>docker's HostConfig.Mounts[] (the --mount flag).</summary>
public sealed class HostMount
{
    public string Type { get; set; } = "";
    public string Source { get; set; } = "";
    public string Target { get; set; } = "";
    public bool ReadOnly { get; set; }
    public BindOptions? BindOptions { get; set; }
    public VolumeOptions? VolumeOptions { get; set; }
    public TmpfsOptions? TmpfsOptions { get; set; }
}

public sealed class BindOptions { public string Propagation { get; set; } = ""; }
public sealed class VolumeOptions
{
    public bool NoCopy { get; set; }
    public Dictionary<string, string>? Labels { get; set; }
    /// <summary>The driver that creates the volume if it does not exist, with its options (--mount's volume-driver, volume-opt).</summary>
    public VolumeDriverConfig? DriverConfig { get; set; }
}

public sealed class VolumeDriverConfig
{
    public string Name { get; set; } = "";
    public Dictionary<string, string>? Options { get; set; }
}
public sealed class TmpfsOptions { public long SizeBytes { get; set; } public uint Mode { get; set; } }

public sealed class Ulimit
{
    public string Name { get; set; } = "";
    public long Soft { get; set; }
    public long Hard { get; set; }
}

public sealed class DeviceMapping
{
    public string PathOnHost { get; set; } = "";
    public string PathInContainer { get; set; } = "";
    public string CgroupPermissions { get; set; } = "rwm";
}

public sealed class LogConfig
{
    public string Type { get; set; } = "json-file";
    public Dictionary<string, string> Config { get; set; } = [];
}

public sealed class RestartPolicy
{
    public string Name { get; set; } = "no";
    public int MaximumRetryCount { get; set; }
}

public sealed class MountPoint
{
    public string Type { get; set; } = "bind";
    /// <summary>The volume's name (Type "volume").</summary>
    public string? Name { get; set; }
    public string Source { get; set; } = "";
    public string Destination { get; set; } = "";
    /// <summary>The volume's driver, "local" (Type "volume"; absent for binds, as docker has it).</summary>
    public string? Driver { get; set; }
    public string Mode { get; set; } = "";
    public bool RW { get; set; } = true;
    public string Propagation { get; set; } = "rprivate";
    /// <summary>How a volume that does not exist yet is created (--mount's volume-driver, volume-opt,
    /// volume-label); used while the container is created, never stored.</summary>
    [JsonIgnore] public VolumeOptions? CreateWith { get; set; }
}

[JsonSourceGenerationOptions(WriteIndented = true, IndentSize = 4, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ContainerRecord))]
[JsonSerializable(typeof(List<ContainerRecord>))]
public sealed partial class EngineJsonContext : JsonSerializerContext
{
    /// <summary>Output as docker writes it: no \u002B for '+', no \u0022 inside strings' quotes.</summary>
    public static EngineJsonContext Relaxed { get; } = new(new System.Text.Json.JsonSerializerOptions
    {
        WriteIndented = true, IndentSize = 4, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
