using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Berth.Engine.Formatting;

/// <summary>A Go <c>time.Duration</c> in an inspect document: JSON carries it as nanoseconds (so
/// <c>{{json}}</c> prints the number), a template prints it as Go's <c>Duration.String()</c> ("30s",
/// "1m30s", "500ms"), as docker's and podman's inspect do for the healthcheck's durations.</summary>
[JsonConverter(typeof(GoDurationConverter))]
public readonly record struct GoDuration(long Nanoseconds)
{
    /// <summary>The inspect fields that are durations in docker's types (container and image config).</summary>
    static readonly string[] HealthcheckFields = ["Interval", "Timeout", "StartPeriod", "StartInterval"];

    public static JsonValue Node(long nanoseconds) => JsonValue.Create(new GoDuration(nanoseconds), GoDurationContext.Default.GoDuration)!;

    /// <summary>Marks the healthcheck durations of an inspect document (any <c>Healthcheck</c> object in it) as <see cref="GoDuration"/>s.</summary>
    public static void MarkHealthchecks(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (key, value) in o.ToList())
                {
                    if (key == "Healthcheck" && value is JsonObject h)
                    {
                        foreach (var f in HealthcheckFields)
                            if (h[f] is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<long>(out var ns))
                                h[f] = Node(ns);
                    }
                    else MarkHealthchecks(value);
                }
                break;
            case JsonArray a:
                foreach (var item in a) MarkHealthchecks(item);
                break;
        }
    }

    /// <summary>Go's <c>time.Duration.String()</c>.</summary>
    public override string ToString()
    {
        var d = Nanoseconds;
        if (d == 0) return "0s";
        var neg = d < 0;
        var u = neg ? (ulong)(-(d + 1)) + 1 : (ulong)d;
        var sb = new StringBuilder();
        if (u < 1_000_000_000UL)
        {
            // below a second: the largest of ns, µs, ms with a fraction
            var (div, unit) = u < 1_000UL ? (1UL, "ns") : u < 1_000_000UL ? (1_000UL, "µs") : (1_000_000UL, "ms");
            sb.Append(Fraction(u, div)).Append(unit);
        }
        else
        {
            var h = u / 3_600_000_000_000UL;
            var rest = u % 3_600_000_000_000UL;
            var m = rest / 60_000_000_000UL;
            rest %= 60_000_000_000UL;
            if (h > 0) sb.Append(h.ToString(CultureInfo.InvariantCulture)).Append('h');
            if (h > 0 || m > 0) sb.Append(m.ToString(CultureInfo.InvariantCulture)).Append('m');
            sb.Append(Fraction(rest, 1_000_000_000UL)).Append('s');
        }
        return (neg ? "-" : "") + sb;
    }

    /// <summary><paramref name="v"/> / <paramref name="div"/> with the fraction's trailing zeros dropped.</summary>
    static string Fraction(ulong v, ulong div)
    {
        var whole = (v / div).ToString(CultureInfo.InvariantCulture);
        var frac = v % div;
        if (frac == 0) return whole;
        var digits = div.ToString(CultureInfo.InvariantCulture).Length - 1;
        return whole + "." + frac.ToString(CultureInfo.InvariantCulture).PadLeft(digits, '0').TrimEnd('0');
    }
}

public sealed class GoDurationConverter : JsonConverter<GoDuration>
{
    public override GoDuration Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => new(reader.GetInt64());
    public override void Write(Utf8JsonWriter writer, GoDuration value, JsonSerializerOptions options) => writer.WriteNumberValue(value.Nanoseconds);
}

[JsonSerializable(typeof(GoDuration))]
internal sealed partial class GoDurationContext : JsonSerializerContext;
