using System.Text.Json.Serialization;

namespace Berth.Images.Archive;

/// <summary>Which archive <see cref="ImageArchive"/> writes.</summary>
public enum ArchiveFormat
{
    /// <summary>`docker save`'s tar: manifest.json, repositories, CONFIG.json and one directory per layer (VERSION, json, layer.tar).</summary>
    DockerArchive,
    /// <summary>An OCI image layout (oci-layout, index.json, blobs/) as a tar.</summary>
    OciArchive,
    /// <summary>An OCI image layout as a directory.</summary>
    OciDir,
}

public static class ArchiveFormats
{
    /// <summary>The format named as podman and skopeo name them; InvalidArgument otherwise.</summary>
    public static ArchiveFormat Parse(string s) => s switch
    {
        "docker-archive" => ArchiveFormat.DockerArchive,
        "oci-archive" => ArchiveFormat.OciArchive,
        "oci-dir" => ArchiveFormat.OciDir,
        _ => throw ImageException.Invalid($"unknown archive format \"{s}\" (docker-archive, oci-archive or oci-dir)"),
    };
}

/// <summary>An image in an archive's manifest.json (docker/image/tarexport's manifestItem).</summary>
public sealed class DockerArchiveEntry
{
    [JsonPropertyName("Config")] public string Config { get; set; } = "";
    [JsonPropertyName("RepoTags")] public List<string>? RepoTags { get; set; }
    [JsonPropertyName("Layers")] public List<string> Layers { get; set; } = [];
}

/// <summary>The per-layer `json` of the legacy (v1) layout that docker save still writes.</summary>
public sealed class LegacyLayerJson
{
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("parent")] public string? Parent { get; set; }
    [JsonPropertyName("created")] public string Created { get; set; } = "1970-01-01T00:00:00Z";
    [JsonPropertyName("container_config")] public Dictionary<string, string?> ContainerConfig { get; set; } = [];
    [JsonPropertyName("os")] public string? Os { get; set; }
    [JsonPropertyName("architecture")] public string? Architecture { get; set; }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(List<DockerArchiveEntry>))]
[JsonSerializable(typeof(LegacyLayerJson))]
[JsonSerializable(typeof(Dictionary<string, Dictionary<string, string>>))]
internal sealed partial class ArchiveJsonContext : JsonSerializerContext;
