using System.Diagnostics;

namespace Berth.Runtime.Tests.Support;

/// <summary>The outcome of one berth-runc invocation.</summary>
public sealed record RuncResult(int ExitCode, string Stdout, string Stderr, string StdoutPath)
{
    public string[] StderrLines => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public override string ToString() => $"exit {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}";
}

/// <summary>Locates the built berth-runc and runs it as runc users do: a child process with its own
/// argv. stdio goes to files, not pipes, so a container that inherits stdout cannot keep a call open.</summary>
public static class Runc
{
    public static string Binary { get; } = Locate();

    static string Locate()
    {
        if (Environment.GetEnvironmentVariable("BERTH_RUNC") is { Length: > 0 } env) return env;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "out", "berth-runc");
            if (File.Exists(candidate)) return candidate;
        }
        throw new InvalidOperationException("berth-runc not found: set BERTH_RUNC or run `make build` (looked for out/berth-runc above " + AppContext.BaseDirectory + ")");
    }

    /// <summary>Starts the binary with stdin/stdout/stderr redirected to the given files.
    /// <paramref name="fdSetup"/>, when given, is shell run first (e.g. `exec 3</some/file;`) so the
    /// binary inherits extra descriptors.</summary>
    public static Process Start(IEnumerable<string> args, string stdin, string stdout, string stderr, string? fdSetup = null, IReadOnlyList<string>? prefix = null)
    {
        // sh only sets up the redirections, then execs berth-runc in its place (same pid), or
        // <paramref name="prefix"/> (e.g. setpriv to an unprivileged user) that then execs it.
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add((fdSetup ?? "") + "exec \"$0\" \"$@\" <\"$BT_IN\" >\"$BT_OUT\" 2>\"$BT_ERR\"");
        if (prefix is { Count: > 0 })
        {
            psi.ArgumentList.Add(prefix[0]);
            foreach (var a in prefix.Skip(1)) psi.ArgumentList.Add(a);
        }
        psi.ArgumentList.Add(Binary);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["BT_IN"] = stdin;
        psi.Environment["BT_OUT"] = stdout;
        psi.Environment["BT_ERR"] = stderr;
        return Process.Start(psi) ?? throw new InvalidOperationException("could not start " + Binary);
    }

    /// <summary>Waits for a berth-runc process; a hung call is killed (by its pid) and reported.</summary>
    public static int Wait(Process p, string what, int timeoutMs = 60_000)
    {
        if (!p.WaitForExit(timeoutMs))
        {
            try { p.Kill(); } catch (InvalidOperationException) { }
            p.WaitForExit();
            throw new TimeoutException($"berth-runc {what} did not finish within {timeoutMs / 1000}s");
        }
        return p.ExitCode;
    }
}
