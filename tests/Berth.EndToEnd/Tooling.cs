using System.Diagnostics;

namespace Berth.EndToEnd;

public sealed record RunResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}";
}

public static class Tooling
{
    /// <summary>The berth-runc under test: $BERTH_RUNC, else out/berth-runc of the repository.</summary>
    public static string BerthRunc
    {
        get
        {
            if (Environment.GetEnvironmentVariable("BERTH_RUNC") is { Length: > 0 } e) return e;
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            {
                var p = Path.Combine(d.FullName, "out", "berth-runc");
                if (File.Exists(p)) return p;
            }
            throw new InvalidOperationException("berth-runc not found: run `make build` or set BERTH_RUNC");
        }
    }

    public static string RepoRoot
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "Berth.slnx"))) return d.FullName;
            throw new InvalidOperationException("repository root not found");
        }
    }

    public static RunResult Run(string file, IEnumerable<string> args, string? stdin = null, IDictionary<string, string>? env = null, int timeoutMs = 120_000)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        if (stdin is not null) p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        if (!p.WaitForExit(timeoutMs))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in {timeoutMs} ms");
        }
        return new RunResult(p.ExitCode, so.Result, se.Result);
    }
}
