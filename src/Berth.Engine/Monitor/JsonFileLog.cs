using System.Text;
using Berth.Linux;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.Monitor;

/// <summary>Docker's json-file log driver: one JSON object per line,
/// <c>{"log":"text\n","stream":"stdout","time":"RFC3339Nano"}</c>, with max-size/max-file rotation
/// (NAME → NAME.1 → … → NAME.(max-file − 1)). Partial lines are buffered per stream up to 16 KiB,
/// as docker does, and flushed without a newline at the end.</summary>
public sealed class JsonFileLog : IDisposable
{
    const int MaxPartial = 16 * 1024;
    readonly string _path;
    readonly long _maxSize;
    readonly int _maxFile;
    Fd _fd;
    long _size;
    readonly List<byte>[] _partial = [new(), new()];

    public JsonFileLog(string path, long maxSize = -1, int maxFile = 1)
    {
        _path = path;
        _maxSize = maxSize;
        _maxFile = Math.Max(1, maxFile);
        _fd = Sys.Open(path, O_WRONLY | O_CREAT | O_APPEND, 0x1a0);
        _size = new FileInfo(path).Length;
    }

    /// <summary>Bytes the container wrote on stream 1 (stdout) or 2 (stderr).</summary>
    public void Write(int stream, ReadOnlySpan<byte> data)
    {
        var buf = _partial[stream - 1];
        while (data.Length > 0)
        {
            var nl = data.IndexOf((byte)'\n');
            if (nl < 0)
            {
                foreach (var b in data) buf.Add(b);
                if (buf.Count >= MaxPartial) Flush(stream);
                return;
            }
            foreach (var b in data[..(nl + 1)]) buf.Add(b);
            Flush(stream);
            data = data[(nl + 1)..];
        }
    }

    /// <summary>Writes what is left of partial lines (at EOF of the streams).</summary>
    public void FlushAll()
    {
        Flush(1);
        Flush(2);
    }

    void Flush(int stream)
    {
        var buf = _partial[stream - 1];
        if (buf.Count == 0) return;
        var line = Format(buf.ToArray(), stream == 1 ? "stdout" : "stderr", DateTime.UtcNow);
        buf.Clear();
        if (_maxSize > 0 && _size + line.Length > _maxSize && _size > 0) Rotate();
        Sys.WriteAll(_fd.Value, line, _path);
        _size += line.Length;
    }

    void Rotate()
    {
        _fd.Dispose();
        if (_maxFile > 1)
        {
            for (var i = _maxFile - 1; i >= 1; i--)
            {
                var from = i == 1 ? _path : $"{_path}.{i - 1}";
                if (File.Exists(from)) File.Move(from, $"{_path}.{i}", overwrite: true);
            }
        }
        _fd = Sys.Open(_path, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0x1a0);
        _size = 0;
    }

    public static byte[] Format(byte[] text, string stream, DateTime time)
    {
        var sb = new StringBuilder(text.Length + 80);
        sb.Append("{\"log\":\"");
        foreach (var ch in Encoding.UTF8.GetString(text))
        {
            switch (ch)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (ch < 0x20) sb.Append("\\u").Append(((int)ch).ToString("x4"));
                    else sb.Append(ch);
                    break;
            }
        }
        sb.Append("\",\"stream\":\"").Append(stream).Append("\",\"time\":\"").Append(FormatTime(time)).Append("\"}\n");
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    /// <summary>RFC 3339 with nanoseconds, UTC (Go's RFC3339Nano as docker writes it).</summary>
    /// <summary>One line of the log: (stream, text, time), or null if it is not a log entry.</summary>
    public static (string Stream, string Text, string Time)? Parse(string line)
    {
        if (line.Length == 0) return null;
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(line);
            var r = doc.RootElement;
            return (r.GetProperty("stream").GetString() ?? "stdout", r.GetProperty("log").GetString() ?? "", r.GetProperty("time").GetString() ?? "");
        }
        catch (System.Text.Json.JsonException) { return null; }
        catch (KeyNotFoundException) { return null; }
        catch (InvalidOperationException) { return null; }
    }

    public static string FormatTime(DateTime t) => t.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff") + "00Z";

    public void Dispose() => _fd.Dispose();
}
