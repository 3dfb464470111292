using System.Text.Json;

namespace Berth.Engine.Monitor;

/// <summary>Docker's json-file log driver's format: one JSON object per line,
/// <c>{"log":"text\n","stream":"stdout","time":"RFC3339Nano"}</c>. The monitor writes it
/// (native/monitor.c: partial lines buffered per stream up to 16 KiB, as docker does, and flushed
/// without a newline at the end; max-size/max-file rotation NAME → NAME.1 → … → NAME.(max-file − 1));
/// `logs` and the Docker API read it back here.</summary>
public static class JsonFileLog
{
    /// <summary>One line of the log: (stream, text, time), or null if it is not a log entry.</summary>
    public static (string Stream, string Text, string Time)? Parse(string line)
    {
        if (line.Length == 0) return null;
        try
        {
            using var doc = JsonDocument.Parse(line);
            var r = doc.RootElement;
            return (r.GetProperty("stream").GetString() ?? "stdout", r.GetProperty("log").GetString() ?? "", r.GetProperty("time").GetString() ?? "");
        }
        catch (JsonException) { return null; }
        catch (KeyNotFoundException) { return null; }
        catch (InvalidOperationException) { return null; }
    }

    /// <summary>RFC 3339 with nanoseconds, UTC (Go's RFC3339Nano as docker writes it; the monitor writes
    /// the same 100 ns resolution).</summary>
    public static string FormatTime(DateTime t) => t.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff") + "00Z";
}
