using System.Buffers;
using System.Globalization;
using System.Text;
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

    /// <summary>
    /// The value a field selector compares for the dotted <paramref name="path"/> of a stored object, read
    /// from its bytes as <see cref="FieldSelector.Matches"/> reads it from the tree: a string as is, true/false
    /// as text, "" when the field (or an object on the way) is missing or null. False when the value is a
    /// number, object or array or the JSON is malformed: the caller decodes the object instead.
    /// </summary>
    public static bool TryFieldValue(ReadOnlySpan<byte> stored, string[] path, out string value)
    {
        value = "";
        var r = new Utf8JsonReader(stored, new JsonReaderOptions { MaxDepth = 256 });
        try
        {
            if (!r.Read() || r.TokenType != JsonTokenType.StartObject) return false;
            var depth = 0;
            while (true)
            {
                // in the object that should hold path[depth]
                var found = false;
                while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
                {
                    var match = r.ValueTextEquals(path[depth]);
                    if (!r.Read()) return false;
                    if (!match) { r.Skip(); continue; }
                    found = true;
                    break;
                }
                if (!found) return r.TokenType == JsonTokenType.EndObject; // missing: ""
                if (depth == path.Length - 1)
                {
                    switch (r.TokenType)
                    {
                        case JsonTokenType.String: value = r.GetString()!; return true;
                        case JsonTokenType.True: value = "true"; return true;
                        case JsonTokenType.False: value = "false"; return true;
                        case JsonTokenType.Null: return true;
                        default: return false;
                    }
                }
                if (r.TokenType == JsonTokenType.Null || (r.TokenType != JsonTokenType.StartObject && r.TokenType != JsonTokenType.StartArray)) return true; // not an object on the way: ""
                if (r.TokenType == JsonTokenType.StartArray) return true;
                depth++;
            }
        }
        catch (JsonException) { return false; }
    }

    /// <summary>
    /// pods/binding on the stored bytes, for a pod with no status.conditions yet (the usual case): the
    /// bytes <c>BindPodAsync</c>'s tree path would store, i.e. <c>"nodeName"</c> appended to spec and
    /// <c>"conditions":[PodScheduled=True]</c> appended to status. Reports the facts the binding checks
    /// (metadata.uid, whether deletionTimestamp is set, a non-empty spec.nodeName) whether or not it
    /// answers bytes; null when the fast path does not apply (conditions present, spec or status not an
    /// object, an escaped key, an empty nodeName, malformed JSON): the caller takes the tree path.
    /// </summary>
    public static byte[]? BindPod(ReadOnlySpan<byte> stored, string node, string now, out string? uid, out bool deleting, out string? boundTo)
    {
        uid = null; deleting = false; boundTo = null;
        int specEnd = -1, statusEnd = -1;
        bool specEmpty = true, statusEmpty = true;
        var r = new Utf8JsonReader(stored, new JsonReaderOptions { MaxDepth = 256 });
        try
        {
            if (!r.Read() || r.TokenType != JsonTokenType.StartObject) return null;
            while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
            {
                if (r.ValueIsEscaped) return null;
                var which = r.ValueTextEquals("metadata"u8) ? 1 : r.ValueTextEquals("spec"u8) ? 2 : r.ValueTextEquals("status"u8) ? 3 : 0;
                if (!r.Read()) return null;
                if (which == 0) { r.Skip(); continue; }
                if (r.TokenType != JsonTokenType.StartObject) return null;
                var empty = true;
                while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
                {
                    empty = false;
                    if (r.ValueIsEscaped) return null;
                    var key = which == 1 ? (r.ValueTextEquals("uid"u8) ? 1 : r.ValueTextEquals("deletionTimestamp"u8) ? 2 : 0)
                        : which == 2 ? (r.ValueTextEquals("nodeName"u8) ? 3 : 0)
                        : (r.ValueTextEquals("conditions"u8) ? 4 : 0);
                    if (!r.Read()) return null;
                    switch (key)
                    {
                        case 1: uid = r.TokenType == JsonTokenType.String ? r.GetString() : null; break;
                        case 2: deleting = r.TokenType != JsonTokenType.Null; break;
                        case 3:
                            if (r.TokenType != JsonTokenType.String) return null;
                            boundTo = r.GetString();
                            if (string.IsNullOrEmpty(boundTo)) { boundTo = null; return null; }
                            break;
                        case 4: return null;
                    }
                    r.Skip();
                }
                if (r.TokenType != JsonTokenType.EndObject) return null;
                if (which == 2) { specEnd = (int)r.TokenStartIndex; specEmpty = empty; }
                else if (which == 3) { statusEnd = (int)r.TokenStartIndex; statusEmpty = empty; }
            }
            if (r.TokenType != JsonTokenType.EndObject) return null;
        }
        catch (JsonException) { return null; }
        if (specEnd < 0 || statusEnd < 0 || boundTo is not null) return null;
        var nodeName = Encoding.UTF8.GetBytes((specEmpty ? "" : ",") + "\"nodeName\":\"" + JsonEncodedText.Encode(node) + "\"");
        var cond = Encoding.UTF8.GetBytes((statusEmpty ? "" : ",") +
            "\"conditions\":[{\"type\":\"PodScheduled\",\"status\":\"True\",\"lastProbeTime\":null,\"lastTransitionTime\":\"" + JsonEncodedText.Encode(now) + "\"}]");
        var (first, firstText, second, secondText) = specEnd < statusEnd ? (specEnd, nodeName, statusEnd, cond) : (statusEnd, cond, specEnd, nodeName);
        var output = new byte[stored.Length + nodeName.Length + cond.Length];
        var o = output.AsSpan();
        stored[..first].CopyTo(o); o = o[first..];
        firstText.CopyTo(o); o = o[firstText.Length..];
        stored[first..second].CopyTo(o); o = o[(second - first)..];
        secondText.CopyTo(o); o = o[secondText.Length..];
        stored[second..].CopyTo(o);
        return output;
    }
}
