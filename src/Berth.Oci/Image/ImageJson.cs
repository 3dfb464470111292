using System.Text.Json;
using System.Text.Json.Serialization;

namespace Berth.Oci.Image;

[JsonSourceGenerationOptions(
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    AllowTrailingCommas = false,
    NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(Descriptor))]
[JsonSerializable(typeof(Manifest))]
[JsonSerializable(typeof(ImageIndex))]
[JsonSerializable(typeof(ImageConfigFile))]
[JsonSerializable(typeof(OciLayoutFile))]
public sealed partial class ImageJsonContext : JsonSerializerContext;

/// <summary>Parses image-spec documents; a document that does not parse is a one-line FormatException.</summary>
public static class ImageJson
{
    public static T Parse<T>(ReadOnlySpan<byte> utf8, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info, string what)
    {
        try { return JsonSerializer.Deserialize(utf8, info) ?? throw new FormatException($"{what}: empty document"); }
        catch (JsonException e) { throw new FormatException($"{what}: malformed JSON: {e.Message}"); }
    }

    public static Manifest ParseManifest(ReadOnlySpan<byte> utf8, string what = "manifest") => Parse(utf8, ImageJsonContext.Default.Manifest, what);
    public static ImageIndex ParseIndex(ReadOnlySpan<byte> utf8, string what = "index") => Parse(utf8, ImageJsonContext.Default.ImageIndex, what);
    public static ImageConfigFile ParseConfig(ReadOnlySpan<byte> utf8, string what = "image config") => Parse(utf8, ImageJsonContext.Default.ImageConfigFile, what);

    public static byte[] Serialize(Manifest m) => JsonSerializer.SerializeToUtf8Bytes(m, ImageJsonContext.Default.Manifest);
    public static byte[] Serialize(ImageIndex i) => JsonSerializer.SerializeToUtf8Bytes(i, ImageJsonContext.Default.ImageIndex);
    public static byte[] Serialize(ImageConfigFile c) => JsonSerializer.SerializeToUtf8Bytes(c, ImageJsonContext.Default.ImageConfigFile);
}
