using System.Text;
using System.Text.Json;

namespace Berth.Runtime.Cli;

/// <summary>The runtime's log (--log, --log-format text|json), as runc writes it: callers such as
/// conmon and containerd read the last error line from it. Never writes to stdout.</summary>
public sealed class RuntimeLog(string? path, string format, bool debug)
{
    public bool Debug { get; } = debug;

    public void Error(string msg) => Write("error", msg);
    public void Warn(string msg) { Write("warning", msg); Console.Error.WriteLine("berth-runc: warning: " + msg); }
    public void DebugMsg(string msg) { if (Debug) Write("debug", msg); }
    public void Note(string msg) => Write("info", msg);

    void Write(string level, string msg)
    {
        if (path is null) return;
        var time = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffffffZ");
        string line;
        if (format == "json")
        {
            using var ms = new MemoryStream();
            using (var w = new Utf8JsonWriter(ms))
            {
                w.WriteStartObject();
                w.WriteString("level", level);
                w.WriteString("msg", msg);
                w.WriteString("time", time);
                w.WriteEndObject();
            }
            line = Encoding.UTF8.GetString(ms.ToArray());
        }
        else line = $"time=\"{time}\" level={level} msg=\"{msg.Replace("\"", "\\\"")}\"";
        try { File.AppendAllText(path, line + "\n"); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
