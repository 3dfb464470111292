using System.Text.Json;
using System.Text.Json.Serialization;

namespace Berth.Oci.Runtime;

[JsonSourceGenerationOptions(
    WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    ReadCommentHandling = JsonCommentHandling.Disallow,
    AllowTrailingCommas = false,
    NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(Spec))]
[JsonSerializable(typeof(Process))]
[JsonSerializable(typeof(LinuxResources))]
[JsonSerializable(typeof(State))]
[JsonSerializable(typeof(List<State>))]
[JsonSerializable(typeof(Features))]
public sealed partial class SpecJsonContext : JsonSerializerContext;

/// <summary>Thrown when a document does not parse or does not satisfy the spec.</summary>
public sealed class SpecException(string message) : Exception(message);

public static class SpecJson
{
    public static Spec ParseSpec(ReadOnlySpan<byte> utf8, string what = "config.json") =>
        SpecReader.Read(utf8, what, SpecReader.ReadSpec);

    /// <summary>Parses a config whose seccomp profile is not needed (it was compiled elsewhere).</summary>
    public static Spec ParseSpecWithoutSeccomp(ReadOnlySpan<byte> utf8, string what = "config.json")
    {
        SpecReader.SkipSeccomp = true;
        try { return SpecReader.Read(utf8, what, SpecReader.ReadSpec); }
        finally { SpecReader.SkipSeccomp = false; }
    }

    public static Process ParseProcess(ReadOnlySpan<byte> utf8, string what = "process.json") =>
        SpecReader.Read(utf8, what, SpecReader.ReadProcess);

    public static LinuxResources ParseResources(ReadOnlySpan<byte> utf8, string what = "resources") =>
        SpecReader.Read(utf8, what, SpecReader.ReadResources);

    public static byte[] Serialize(Spec s) => JsonSerializer.SerializeToUtf8Bytes(s, SpecJsonContext.Default.Spec);

    /// <summary>The OCI state document, indented as runc prints it. Written by hand: `state` is the
    /// command callers poll, and the serializer's cold-start metadata would dominate it.</summary>
    public static byte[] Serialize(State s)
    {
        var buf = new System.Buffers.ArrayBufferWriter<byte>(512);
        using (var w = new Utf8JsonWriter(buf, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("ociVersion", s.OciVersion);
            w.WriteString("id", s.Id);
            w.WriteNumber("pid", s.Pid);
            w.WriteString("status", s.Status);
            w.WriteString("bundle", s.Bundle);
            if (s.Rootfs is not null) w.WriteString("rootfs", s.Rootfs);
            if (s.Created is { } c) w.WriteString("created", c);
            if (s.Owner is not null) w.WriteString("owner", s.Owner);
            if (s.Annotations is not null)
            {
                w.WriteStartObject("annotations");
                foreach (var (k, v) in s.Annotations) w.WriteString(k, v);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        return buf.WrittenSpan.ToArray();
    }
}
