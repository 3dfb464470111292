using System.Runtime.CompilerServices;
using System.Text;
using Berth.Engine.Monitor;

namespace Berth.Engine.Containers;

/// <summary>One entry of a container's json-file log: its stream (stdout|stderr), text and time (RFC 3339).</summary>
public readonly record struct LogEntry(string Stream, string Text, string Time);

/// <summary>
/// A container's output as `logs` shows it, for the CLI and the Docker API alike: the rotated files
/// (LOG.9 … LOG.1) and the live one, oldest first, filtered by the caller and cut to the last
/// <c>tail</c> entries; with follow, then every new entry of the live file until the container stops
/// (polled every 100 ms; a rotation restarts at the new file's beginning; a line still being written
/// waits for its newline), until <c>until</c> passes, or until the token is cancelled.
/// </summary>
public static class ContainerLogs
{
    public static async IAsyncEnumerable<LogEntry> ReadAsync(ContainerManager mgr, ContainerRecord c, Func<LogEntry, bool> wanted,
        int? tail, bool follow, DateTime? until, [EnumeratorCancellation] CancellationToken ct)
    {
        var files = new List<string>();
        for (var i = 9; i >= 1; i--) if (File.Exists($"{c.LogPath}.{i}")) files.Add($"{c.LogPath}.{i}");
        files.Add(c.LogPath);
        var entries = new List<LogEntry>();
        long offset = 0;
        foreach (var f in files)
        {
            if (!File.Exists(f)) continue;
            using var fs = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(fs);
            while (await reader.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
                if (Parse(line) is { } e && wanted(e)) entries.Add(e);
            if (f == c.LogPath) offset = fs.Position;
        }
        if (tail is { } n && entries.Count > n) entries = entries.Skip(entries.Count - n).ToList();
        foreach (var e in entries) yield return e;
        if (!follow) yield break;
        var pending = new StringBuilder();
        while (!ct.IsCancellationRequested)
        {
            var running = false;
            try { running = mgr.Get(c.Id).State.Running; } catch (EngineException) { }
            if (File.Exists(c.LogPath))
            {
                var fresh = new List<LogEntry>();
                using (var fs = new FileStream(c.LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
                {
                    if (fs.Length < offset) offset = 0; // rotated
                    fs.Seek(offset, SeekOrigin.Begin);
                    var buf = new byte[fs.Length - offset];
                    var read = await fs.ReadAsync(buf, ct).ConfigureAwait(false);
                    offset += read;
                    pending.Append(Encoding.UTF8.GetString(buf, 0, read));
                }
                var text = pending.ToString();
                var last = text.LastIndexOf('\n');
                if (last >= 0)
                {
                    foreach (var line in text[..last].Split('\n'))
                        if (Parse(line) is { } e && wanted(e)) fresh.Add(e);
                    pending.Clear().Append(text[(last + 1)..]);
                }
                foreach (var e in fresh) yield return e;
            }
            if (!running || (until is { } ut && DateTime.UtcNow > ut)) yield break;
            await Task.Delay(100, ct).ConfigureAwait(false);
        }
    }

    static LogEntry? Parse(string line) => JsonFileLog.Parse(line) is { } e ? new LogEntry(e.Stream, e.Text, e.Time) : null;
}
