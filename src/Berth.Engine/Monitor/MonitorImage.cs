using System.Runtime.InteropServices;
using Berth.Engine.Containers;

namespace Berth.Engine.Monitor;

/// <summary>The native monitor (native/monitor.c: a static executable embedded in the berth binary,
/// as berth-init is). berth-shim writes it once to <c>ROOT/monitor/berth-monitor-SUM</c> (SUM: the
/// first 16 hex digits of its SHA-256, fixed at build time) and execs it: a changed monitor gets a new
/// name, so finding the file is one stat. Written without fsync (100 concurrent first starts would
/// each sync 0.8 MB): a file cut short by a crash has the wrong size and is written again. When a new
/// version is written, older versions that no process is running are removed (a running monitor
/// keeps its executable open, and an older berth that still needs its own writes it again).</summary>
public static partial class MonitorImage
{
    [LibraryImport("berthmonitor", EntryPoint = "berth_monitor_image")]
    private static unsafe partial byte* Image(out nuint length);

    [LibraryImport("berthmonitor", EntryPoint = "berth_monitor_checksum")]
    private static unsafe partial byte* Checksum();

    /// <summary>The host path of the monitor executable under <paramref name="root"/>, written if missing.</summary>
    public static unsafe string Ensure(string root)
    {
        var dir = Path.Combine(root, "monitor");
        var sum = Marshal.PtrToStringUTF8((nint)Checksum())!;
        var path = Path.Combine(dir, "berth-monitor-" + sum);
        byte* p = Image(out var length);
        var file = new FileInfo(path);
        if (file.Exists && file.Length == (long)length) return path;
        Directory.CreateDirectory(dir);
        InitProcess.WriteExecutable(path, new ReadOnlySpan<byte>(p, checked((int)length)), durable: false);
        RemoveUnused(dir, path);
        return path;
    }

    /// <summary>Removes the <c>berth-monitor-SUM</c> files in <paramref name="dir"/> other than
    /// <paramref name="keep"/> that no live process has as its executable.</summary>
    internal static void RemoveUnused(string dir, string keep)
    {
        // only finished versions (berth-monitor-SUM): a SUM.PID.tmp is another start writing its copy
        var old = Directory.EnumerateFiles(dir, "berth-monitor-*")
            .Where(f => f != keep && !Path.GetFileName(f).Contains('.', StringComparison.Ordinal)).ToList();
        if (old.Count == 0) return;
        var running = new HashSet<string>(StringComparer.Ordinal);
        foreach (var proc in Directory.EnumerateDirectories("/proc"))
        {
            if (!char.IsAsciiDigit(Path.GetFileName(proc)[0])) continue;
            try
            {
                if (new FileInfo(Path.Combine(proc, "exe")).LinkTarget is { } exe) running.Add(exe);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        foreach (var f in old.Where(f => !running.Contains(f)))
        {
            try { File.Delete(f); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }
}
