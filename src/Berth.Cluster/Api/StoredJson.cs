using System.Buffers;
using System.Globalization;
using System.Text.Json;

namespace Berth.Cluster.Api;

/// <summary>
/// The wire form of a stored object without a JSON tree: the store keeps each object as compact JSON
/// without metadata.resourceVersion (the entry's revision is that), so what a client receives is the
/// stored bytes with <c>"resourceVersion":"N"</c> put first into the top-level metadata object. Watch
/// events and lists write these bytes directly instead of decoding and re-serialising every object.
/// </summary>
internal static class StoredJson
{
    static ReadOnlySpan<byte> Metadata => "metadata"u8;

    /// <summary>Offset of the '{' that opens the top-level "metadata" object, or -1 (not an object, no metadata object, malformed).</summary>
    public static int MetadataStart(ReadOnlySpan<byte> json)
    {
        var r = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 256 });
        try
        {
            if (!r.Read() || r.TokenType != JsonTokenType.StartObject) return -1;
            while (r.Read())
            {
                if (r.TokenType == JsonTokenType.EndObject) return -1;
                var isMeta = r.ValueTextEquals(Metadata);
                if (!r.Read()) return -1;
                if (isMeta) return r.TokenType == JsonTokenType.StartObject ? (int)r.TokenStartIndex : -1;
                r.Skip(); // the value (a scalar stays put; an object or array is skipped to its end)
            }
        }
        catch (JsonException) { }
        return -1;
    }

    /// <summary>
    /// Writes <paramref name="stored"/> with metadata.resourceVersion = <paramref name="revision"/>, where
    /// <paramref name="metadataStart"/> is <see cref="MetadataStart"/> of it (≥ 0).
    /// </summary>
    public static void Write(IBufferWriter<byte> output, ReadOnlySpan<byte> stored, int metadataStart, long revision)
    {
        var rest = stored[(metadataStart + 1)..];
        var empty = rest.TrimStart(" \t\r\n"u8) is [(byte)'}', ..];
        Span<byte> rv = stackalloc byte[48];
        "\"resourceVersion\":\""u8.CopyTo(rv);
        var n = 19;
        revision.TryFormat(rv[n..], out var digits, provider: CultureInfo.InvariantCulture);
        n += digits;
        rv[n++] = (byte)'"';
        if (!empty) rv[n++] = (byte)',';
        output.Write(stored[..(metadataStart + 1)]);
        output.Write(rv[..n]);
        output.Write(rest);
    }
}
