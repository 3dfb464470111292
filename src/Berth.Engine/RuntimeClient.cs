using System.Text.RegularExpressions;
using Berth.Linux;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine;

/// <summary>Runs the OCI runtime binary (berth-runc, or any runc-compatible one). The engine never
/// calls the runtime in-process: each call is a child process, started with posix_spawn.</summary>
public sealed partial class RuntimeClient(string runtimePath, string runtimeRoot)
{
    public string Path { get; } = runtimePath;
    public string StateRoot { get; } = runtimeRoot;

    /// <summary>berth-runc next to this executable (out/berth-runc, /usr/local/bin/berth-runc), else
    /// BERTH_RUNTIME, else this binary itself under the name berth-runc (it dispatches on argv[0]).</summary>
    public static string Locate(string? explicitPath)
    {
        if (!string.IsNullOrEmpty(explicitPath)) return explicitPath;
        if (Environment.GetEnvironmentVariable("BERTH_RUNTIME") is { Length: > 0 } env) return env;
        var self = Environment.ProcessPath!;
        var sibling = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(self)!, "berth-runc");
        return File.Exists(sibling) ? sibling : self;
    }

    /// <summary>Runs `runtime --root R [--log LOG] ARGS…` with the given stdio and waits for it.</summary>
    public int Run(IReadOnlyList<string> args, int stdin, int stdout, int stderr, string? log = null, bool newSession = false) =>
        Sys.Wait(Start(args, stdin, stdout, stderr, log, newSession));

    /// <summary>Starts `runtime --root R [--log LOG] ARGS…` with the given stdio; returns its pid.</summary>
    public int Start(IReadOnlyList<string> args, int stdin, int stdout, int stderr, string? log = null, bool newSession = false)
    {
        var argv = new List<string> { "berth-runc", "--root", StateRoot };
        if (log is not null) { argv.Add("--log"); argv.Add(log); }
        argv.AddRange(args);
        return Spawn.Start(Path, argv, ChildEnv(), [(stdin, 0), (stdout, 1), (stderr, 2)], newSession);
    }

    public static List<string> ChildEnv()
    {
        var env = new List<string> { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" };
        foreach (var k in new[] { "BERTH_TIMING", "TMPDIR" })
            if (Environment.GetEnvironmentVariable(k) is { } v) env.Add($"{k}={v}");
        return env;
    }

    /// <summary>The last error the runtime wrote to its --log (runc's text format).</summary>
    public static string? LastError(string log)
    {
        try
        {
            var line = File.ReadLines(log).LastOrDefault(l => l.Contains("level=error", StringComparison.Ordinal));
            if (line is null) return null;
            var m = MsgRegex().Match(line);
            return m.Success ? m.Groups[1].Value.Replace("\\\"", "\"") : line;
        }
        catch (IOException) { return null; }
    }

    /// <summary>Docker's exit codes for a process that could not be started: 127 when the command
    /// was not found, 126 when it could not be invoked, else 125.</summary>
    public static int ExitCodeFor(string error)
    {
        if (error.Contains("executable file not found", StringComparison.OrdinalIgnoreCase)
            || error.Contains("no such file or directory", StringComparison.OrdinalIgnoreCase))
            return 127;
        if (error.Contains("permission denied", StringComparison.OrdinalIgnoreCase) || error.Contains("is a directory", StringComparison.OrdinalIgnoreCase)
            || error.Contains("exec format error", StringComparison.OrdinalIgnoreCase))
            return 126;
        return 125;
    }

    [GeneratedRegex("msg=\"((?:[^\"\\\\]|\\\\.)*)\"")]
    private static partial Regex MsgRegex();

    public static Fd DevNull(int flags = O_RDWR) => Sys.Open("/dev/null", flags);
}
