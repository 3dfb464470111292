using System.Text.Json.Serialization;
using Berth.Oci.Image;

namespace Berth.Images.Content;

/// <summary>
/// One image in the store, keyed by the digest a name points to (<see cref="Target"/>: an index or a
/// manifest). <see cref="Manifest"/> is the platform manifest chosen from it (the same descriptor
/// when the target is a manifest). <see cref="Blobs"/> lists every blob the image holds in the
/// content store: the reference set that garbage collection keeps.
/// </summary>
public sealed class ImageRecord
{
    [JsonPropertyName("target")] public Descriptor Target { get; set; } = new();
    [JsonPropertyName("manifest")] public Descriptor Manifest { get; set; } = new();
    [JsonPropertyName("config")] public Descriptor Config { get; set; } = new();
    [JsonPropertyName("blobs")] public List<string> Blobs { get; set; } = [];
    [JsonPropertyName("created")] public string? Created { get; set; }
    [JsonPropertyName("architecture")] public string Architecture { get; set; } = "";
    [JsonPropertyName("os")] public string Os { get; set; } = "";
    [JsonPropertyName("variant")] public string? Variant { get; set; }
    /// <summary>Bytes of config and layers as stored (compressed), as containerd reports it.</summary>
    [JsonPropertyName("size")] public long Size { get; set; }
    /// <summary>When the record was written (RFC 3339).</summary>
    [JsonPropertyName("stored")] public string Stored { get; set; } = "";

    /// <summary>The image ID as docker shows it: the config digest.</summary>
    [JsonIgnore] public string Id => Config.Digest;

    /// <summary>The record of an image whose target (index or manifest) and chosen manifest are stored:
    /// its blobs are <paramref name="documents"/> (target, manifest), the config and the layers.</summary>
    public static ImageRecord For(Descriptor target, Descriptor manifestDesc, Manifest manifest, ImageConfigFile config, IEnumerable<string> documents) => new()
    {
        Target = target,
        Manifest = manifestDesc,
        Config = new Descriptor { MediaType = manifest.Config.MediaType, Digest = manifest.Config.Digest, Size = manifest.Config.Size },
        Blobs = documents.Append(manifest.Config.Digest).Concat(manifest.Layers.Select(l => l.Digest)).Distinct().ToList(),
        Created = config.Created,
        Architecture = config.Architecture,
        Os = config.Os,
        Variant = config.Variant,
        Size = manifest.Config.Size + manifest.Layers.Sum(l => l.Size),
        Stored = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffffffZ"),
    };
}

/// <summary>A name (repo:tag, or repo@digest for a pull by digest) pointing at an image record.</summary>
public sealed class NameRecord
{
    [JsonPropertyName("reference")] public string Reference { get; set; } = "";
    [JsonPropertyName("target")] public string Target { get; set; } = "";
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = true)]
[JsonSerializable(typeof(ImageRecord))]
[JsonSerializable(typeof(NameRecord))]
internal sealed partial class ContentJsonContext : JsonSerializerContext;
