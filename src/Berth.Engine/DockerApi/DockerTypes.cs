using System.Text.Json;
using System.Text.Json.Serialization;
using Berth.Engine.Containers;
using Berth.Engine.Volumes;

namespace Berth.Engine.DockerApi;

// Request and response bodies of the Docker Engine API (field names as the API reference gives
// them). Request types are nullable throughout: clients send null for anything unset.

public sealed class ErrorResponse { public string message { get; set; } = ""; }

public sealed class CreateContainerBody
{
    public string? Hostname { get; set; }
    public string? Domainname { get; set; }
    public string? User { get; set; }
    public bool AttachStdin { get; set; }
    public bool AttachStdout { get; set; }
    public bool AttachStderr { get; set; }
    public bool Tty { get; set; }
    public bool OpenStdin { get; set; }
    public bool StdinOnce { get; set; }
    public List<string>? Env { get; set; }
    public List<string>? Cmd { get; set; }
    public string? Image { get; set; }
    public string? WorkingDir { get; set; }
    public List<string>? Entrypoint { get; set; }
    public Dictionary<string, string>? Labels { get; set; }
    public string? StopSignal { get; set; }
    public int? StopTimeout { get; set; }
    public Dictionary<string, JsonElement>? ExposedPorts { get; set; }
    public Dictionary<string, JsonElement>? Volumes { get; set; }
    /// <summary>Test/Interval/Timeout/StartPeriod/Retries (nanoseconds), run by the engine's monitor.</summary>
    public Berth.Oci.Image.HealthConfig? Healthcheck { get; set; }
    /// <summary>The engine's HostConfig as sent (docker's field names); <see cref="Containers.HostConfig.Normalize"/> fills what the client left null.</summary>
    public HostConfig? HostConfig { get; set; }
    public NetworkingConfig? NetworkingConfig { get; set; }
}

public sealed class UpdateContainerResponse { public List<string> Warnings { get; set; } = []; }

public sealed class CreateResponse
{
    public string Id { get; set; } = "";
    public List<string> Warnings { get; set; } = [];
}

public sealed class WaitResponse
{
    public int StatusCode { get; set; }
    public WaitError? Error { get; set; }
}

public sealed class WaitError { public string Message { get; set; } = ""; }

public sealed class ContainerSummary
{
    public string Id { get; set; } = "";
    public List<string> Names { get; set; } = [];
    public string Image { get; set; } = "";
    public string ImageID { get; set; } = "";
    public string Command { get; set; } = "";
    public long Created { get; set; }
    public List<PortSummary> Ports { get; set; } = [];
    public long? SizeRw { get; set; }
    public long? SizeRootFs { get; set; }
    public Dictionary<string, string> Labels { get; set; } = [];
    public string State { get; set; } = "";
    public string Status { get; set; } = "";
    public SummaryHostConfig HostConfig { get; set; } = new();
    public SummaryNetworkSettings NetworkSettings { get; set; } = new();
    public List<MountPoint> Mounts { get; set; } = [];
}

public sealed class PortSummary
{
    public string? IP { get; set; }
    public int PrivatePort { get; set; }
    public int? PublicPort { get; set; }
    public string Type { get; set; } = "tcp";
}

public sealed class SummaryHostConfig { public string NetworkMode { get; set; } = ""; }
public sealed class SummaryNetworkSettings { public Dictionary<string, EndpointSettings> Networks { get; set; } = []; }

public sealed class ContainerTop
{
    public List<string> Titles { get; set; } = [];
    public List<List<string>> Processes { get; set; } = [];
}

public sealed class PruneContainersResponse
{
    public List<string> ContainersDeleted { get; set; } = [];
    public long SpaceReclaimed { get; set; }
}

public sealed class ExecCreateBody
{
    public bool AttachStdin { get; set; }
    public bool AttachStdout { get; set; }
    public bool AttachStderr { get; set; }
    public bool Tty { get; set; }
    public List<string>? Env { get; set; }
    public List<string>? Cmd { get; set; }
    public bool Privileged { get; set; }
    public string? User { get; set; }
    public string? WorkingDir { get; set; }
    public string? DetachKeys { get; set; }
    /// <summary>[height, width] of the exec's terminal (API 1.42).</summary>
    public List<uint>? ConsoleSize { get; set; }
}

public sealed class ExecStartBody
{
    public bool Detach { get; set; }
    public bool Tty { get; set; }
    public List<uint>? ConsoleSize { get; set; }
}

public sealed class IdResponse { public string Id { get; set; } = ""; }

public sealed class ExecInspect
{
    public bool CanRemove { get; set; }
    public string ContainerID { get; set; } = "";
    public string DetachKeys { get; set; } = "";
    public int? ExitCode { get; set; }
    public string ID { get; set; } = "";
    public bool OpenStderr { get; set; }
    public bool OpenStdin { get; set; }
    public bool OpenStdout { get; set; }
    public bool Running { get; set; }
    public int Pid { get; set; }
    public ExecProcessConfig ProcessConfig { get; set; } = new();
}

public sealed class ExecProcessConfig
{
    public List<string> arguments { get; set; } = [];
    public string entrypoint { get; set; } = "";
    public bool privileged { get; set; }
    public bool tty { get; set; }
    public string user { get; set; } = "";
}

public sealed class VersionResponse
{
    public VersionPlatform Platform { get; set; } = new();
    public List<VersionComponent> Components { get; set; } = [];
    public string Version { get; set; } = "";
    public string ApiVersion { get; set; } = "";
    public string MinAPIVersion { get; set; } = "";
    public string GitCommit { get; set; } = "";
    public string GoVersion { get; set; } = "";
    public string Os { get; set; } = "linux";
    public string Arch { get; set; } = "";
    public string KernelVersion { get; set; } = "";
    public bool Experimental { get; set; }
    public string BuildTime { get; set; } = "";
}

public sealed class VersionPlatform { public string Name { get; set; } = ""; }

public sealed class VersionComponent
{
    public string Name { get; set; } = "";
    public string Version { get; set; } = "";
    public Dictionary<string, string> Details { get; set; } = [];
}

public sealed class InfoResponse
{
    public string ID { get; set; } = "";
    public int Containers { get; set; }
    public int ContainersRunning { get; set; }
    public int ContainersPaused { get; set; }
    public int ContainersStopped { get; set; }
    public int Images { get; set; }
    public string Driver { get; set; } = "";
    public List<List<string>> DriverStatus { get; set; } = [];
    public InfoPlugins Plugins { get; set; } = new();
    public bool MemoryLimit { get; set; } = true;
    public bool SwapLimit { get; set; } = true;
    public bool CpuCfsPeriod { get; set; } = true;
    public bool CpuCfsQuota { get; set; } = true;
    public bool CPUShares { get; set; } = true;
    public bool CPUSet { get; set; } = true;
    public bool PidsLimit { get; set; } = true;
    public bool IPv4Forwarding { get; set; }
    public bool Debug { get; set; }
    public int NFd { get; set; }
    public int NGoroutines { get; set; }
    public string SystemTime { get; set; } = "";
    public string LoggingDriver { get; set; } = "json-file";
    public string CgroupDriver { get; set; } = "cgroupfs";
    public string CgroupVersion { get; set; } = "2";
    public int NEventsListener { get; set; }
    public string KernelVersion { get; set; } = "";
    public string OperatingSystem { get; set; } = "";
    public string OSVersion { get; set; } = "";
    public string OSType { get; set; } = "linux";
    public string Architecture { get; set; } = "";
    public int NCPU { get; set; }
    public long MemTotal { get; set; }
    public string IndexServerAddress { get; set; } = "https://index.docker.io/v1/";
    public InfoRegistryConfig RegistryConfig { get; set; } = new();
    public string DockerRootDir { get; set; } = "";
    public string HttpProxy { get; set; } = "";
    public string HttpsProxy { get; set; } = "";
    public string NoProxy { get; set; } = "";
    public string Name { get; set; } = "";
    public List<string> Labels { get; set; } = [];
    public bool ExperimentalBuild { get; set; }
    public string ServerVersion { get; set; } = "";
    public Dictionary<string, InfoRuntime> Runtimes { get; set; } = [];
    public string DefaultRuntime { get; set; } = "berth-runc";
    public InfoSwarm Swarm { get; set; } = new();
    public bool LiveRestoreEnabled { get; set; } = true;
    public string Isolation { get; set; } = "";
    public string InitBinary { get; set; } = "";
    public List<string> SecurityOptions { get; set; } = [];
    public List<string> Warnings { get; set; } = [];
}

public sealed class InfoPlugins
{
    public List<string> Volume { get; set; } = ["local"];
    public List<string> Network { get; set; } = ["bridge", "host", "null"];
    public List<string>? Authorization { get; set; }
    public List<string> Log { get; set; } = ["json-file"];
}

public sealed class InfoRegistryConfig
{
    public List<string> InsecureRegistryCIDRs { get; set; } = ["127.0.0.0/8"];
    public Dictionary<string, InfoIndex> IndexConfigs { get; set; } = [];
    public List<string> Mirrors { get; set; } = [];
}

public sealed class InfoIndex
{
    public string Name { get; set; } = "";
    public List<string> Mirrors { get; set; } = [];
    public bool Secure { get; set; }
    public bool Official { get; set; }
}

public sealed class InfoRuntime { public string path { get; set; } = ""; }
public sealed class InfoSwarm { public string LocalNodeState { get; set; } = "inactive"; public string NodeID { get; set; } = ""; public string NodeAddr { get; set; } = ""; }

public sealed class ImageSummary
{
    public string Id { get; set; } = "";
    public string ParentId { get; set; } = "";
    public List<string> RepoTags { get; set; } = [];
    public List<string> RepoDigests { get; set; } = [];
    public long Created { get; set; }
    public long Size { get; set; }
    public long SharedSize { get; set; } = -1;
    public long VirtualSize { get; set; }
    public Dictionary<string, string> Labels { get; set; } = [];
    public int Containers { get; set; } = -1;
}

public sealed class ImageInspect
{
    public string Id { get; set; } = "";
    public List<string> RepoTags { get; set; } = [];
    public List<string> RepoDigests { get; set; } = [];
    public string Parent { get; set; } = "";
    public string Comment { get; set; } = "";
    public string Created { get; set; } = "";
    public string DockerVersion { get; set; } = "";
    public string Author { get; set; } = "";
    public ImageInspectConfig Config { get; set; } = new();
    public string Architecture { get; set; } = "";
    public string? Variant { get; set; }
    public string Os { get; set; } = "";
    public long Size { get; set; }
    public long VirtualSize { get; set; }
    public ImageGraphDriver GraphDriver { get; set; } = new();
    public ImageRootFs RootFS { get; set; } = new();
    public ImageMetadata Metadata { get; set; } = new();
}

public sealed class ImageInspectConfig
{
    public string User { get; set; } = "";
    public Dictionary<string, JsonElement>? ExposedPorts { get; set; }
    public List<string>? Env { get; set; }
    public List<string>? Cmd { get; set; }
    public Dictionary<string, JsonElement>? Volumes { get; set; }
    public string WorkingDir { get; set; } = "";
    public List<string>? Entrypoint { get; set; }
    public Dictionary<string, string>? Labels { get; set; }
    public string? StopSignal { get; set; }
}

public sealed class ImageGraphDriver { public string Name { get; set; } = ""; public Dictionary<string, string> Data { get; set; } = []; }
public sealed class ImageRootFs { public string Type { get; set; } = "layers"; public List<string> Layers { get; set; } = []; }
public sealed class ImageMetadata { public string LastTagTime { get; set; } = ""; }

public sealed class ImageDeleteItem
{
    public string? Untagged { get; set; }
    public string? Deleted { get; set; }
}

public sealed class PruneBuildCacheResponse
{
    public List<string> CachesDeleted { get; set; } = [];
    public long SpaceReclaimed { get; set; }
}

public sealed class PruneImagesResponse
{
    public List<ImageDeleteItem> ImagesDeleted { get; set; } = [];
    public long SpaceReclaimed { get; set; }
}

public sealed class ProgressMessage
{
    public string? stream { get; set; }
    public string? status { get; set; }
    public ProgressDetail? progressDetail { get; set; }
    public string? progress { get; set; }
    public string? id { get; set; }
    public string? error { get; set; }
    public ErrorDetail? errorDetail { get; set; }
    public JsonElement? aux { get; set; }
}

public sealed class ProgressDetail
{
    public long? current { get; set; }
    public long? total { get; set; }
}

public sealed class ErrorDetail
{
    public int? code { get; set; }
    public string message { get; set; } = "";
}

public sealed class AuthConfig
{
    public string? username { get; set; }
    public string? password { get; set; }
    public string? auth { get; set; }
    public string? serveraddress { get; set; }
    public string? identitytoken { get; set; }
    public string? registrytoken { get; set; }
}

public sealed class AuthResponse
{
    public string Status { get; set; } = "";
    public string IdentityToken { get; set; } = "";
}

public sealed class VolumeCreateBody
{
    public string? Name { get; set; }
    public string? Driver { get; set; }
    public Dictionary<string, string>? DriverOpts { get; set; }
    public Dictionary<string, string>? Labels { get; set; }
}

public sealed class VolumeListResponse
{
    public List<VolumeInfo> Volumes { get; set; } = [];
    public List<string> Warnings { get; set; } = [];
}

public sealed class PruneVolumesResponse
{
    public List<string> VolumesDeleted { get; set; } = [];
    public long SpaceReclaimed { get; set; }
}

/// <summary>One item of GET /containers/ID/changes (Kind: 0 modified, 1 added, 2 deleted).</summary>
public sealed class ChangeItem
{
    public string Path { get; set; } = "";
    public int Kind { get; set; }
}

/// <summary>The optional body of POST /commit (a ContainerConfig): the fields a commit applies.</summary>
public sealed class CommitConfig
{
    public List<string>? Cmd { get; set; }
    public List<string>? Entrypoint { get; set; }
    public List<string>? Env { get; set; }
    public Dictionary<string, string>? Labels { get; set; }
    public string? WorkingDir { get; set; }
    public string? User { get; set; }
    public string? StopSignal { get; set; }
    public Dictionary<string, JsonElement>? ExposedPorts { get; set; }
}

/// <summary>One item of GET /images/NAME/history.</summary>
public sealed class HistoryItem
{
    public string Id { get; set; } = "";
    public long Created { get; set; }
    public string CreatedBy { get; set; } = "";
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public List<string>? Tags { get; set; }
    public long Size { get; set; }
    public string Comment { get; set; } = "";
}

/// <summary>GET /system/df: kinds not asked for (type=…) are left out.</summary>
public sealed class DiskUsageResponse
{
    public long LayersSize { get; set; }
    public List<ImageSummary>? Images { get; set; }
    public List<ContainerSummary>? Containers { get; set; }
    public List<VolumeInfo>? Volumes { get; set; }
    public List<JsonElement>? BuildCache { get; set; }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, PropertyNameCaseInsensitive = true)]
[JsonSerializable(typeof(ErrorResponse))]
[JsonSerializable(typeof(CreateContainerBody))]
[JsonSerializable(typeof(CreateResponse))]
[JsonSerializable(typeof(ContainerUpdate))]
[JsonSerializable(typeof(UpdateContainerResponse))]
[JsonSerializable(typeof(WaitResponse))]
[JsonSerializable(typeof(List<ContainerSummary>))]
[JsonSerializable(typeof(ContainerRecord))]
[JsonSerializable(typeof(ContainerTop))]
[JsonSerializable(typeof(PruneContainersResponse))]
[JsonSerializable(typeof(ExecCreateBody))]
[JsonSerializable(typeof(ExecStartBody))]
[JsonSerializable(typeof(IdResponse))]
[JsonSerializable(typeof(ExecInspect))]
[JsonSerializable(typeof(VersionResponse))]
[JsonSerializable(typeof(InfoResponse))]
[JsonSerializable(typeof(List<ImageSummary>))]
[JsonSerializable(typeof(ImageInspect))]
[JsonSerializable(typeof(List<ImageDeleteItem>))]
[JsonSerializable(typeof(PruneImagesResponse))]
[JsonSerializable(typeof(PruneBuildCacheResponse))]
[JsonSerializable(typeof(ProgressMessage))]
[JsonSerializable(typeof(AuthConfig))]
[JsonSerializable(typeof(AuthResponse))]
[JsonSerializable(typeof(NetworkCreateBody))]
[JsonSerializable(typeof(NetworkCreateResponse))]
[JsonSerializable(typeof(PruneNetworksResponse))]
[JsonSerializable(typeof(NetworkConnectBody))]
[JsonSerializable(typeof(NetworkDisconnectBody))]
[JsonSerializable(typeof(VolumeCreateBody))]
[JsonSerializable(typeof(VolumeInfo))]
[JsonSerializable(typeof(VolumeListResponse))]
[JsonSerializable(typeof(PruneVolumesResponse))]
[JsonSerializable(typeof(Dictionary<string, List<string>>))]
[JsonSerializable(typeof(List<ChangeItem>))]
[JsonSerializable(typeof(CommitConfig))]
[JsonSerializable(typeof(List<HistoryItem>))]
[JsonSerializable(typeof(DiskUsageResponse))]
[JsonSerializable(typeof(List<string>))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(Dictionary<string, string>))]
[JsonSerializable(typeof(BuildResult))]
public sealed partial class DockerJson : JsonSerializerContext;
