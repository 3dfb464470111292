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
    /// <summary>For a container of an image: the chain ID of the image's top layer, the parent of the
    /// container's writable snapshot (whose mount is <see cref="Rootfs"/>). Null with --rootfs.</summary>
    public string? ImageLayer { get; set; }

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

    public const string ZeroTime = "0001-01-01T00:00:00Z";
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
    public List<string> SecurityOpt { get; set; } = [];
    public Dictionary<string, string> Tmpfs { get; set; } = [];
    public long Memory { get; set; }
    public long NanoCpus { get; set; }
    public long? PidsLimit { get; set; }
    public List<string> MaskedPaths { get; set; } = [];
    public List<string> ReadonlyPaths { get; set; } = [];
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
    public string Mode { get; set; } = "";
    public bool RW { get; set; } = true;
    public string Propagation { get; set; } = "rprivate";
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
