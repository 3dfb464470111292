using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Berth.Images.Tests.Support;

public sealed record ToolResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}";
}

/// <summary>Runs peers (skopeo, htpasswd) and the built berth binary as child processes.</summary>
public static class Tools
{
    public static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public static ToolResult Run(string file, IEnumerable<string> args, IDictionary<string, string>? env = null, string? stdin = null, int timeoutMs = 120_000)
    {
        var psi = new ProcessStartInfo(file)
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("TERM");
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start " + file);
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        if (stdin is not null) p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        if (!p.WaitForExit(timeoutMs))
        {
            try { p.Kill(); } catch (InvalidOperationException) { }
            p.WaitForExit();
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish within {timeoutMs / 1000}s");
        }
        return new ToolResult(p.ExitCode, so.Result, se.Result);
    }

    public static string Berth { get; } = LocateBerth();

    /// <summary>`run`/`create` with `--network none`: image tests need no network, and the default
    /// bridge would be created on the host (and outlive the test's temp root).</summary>
    public static string[] WithoutNetwork(string[] args) =>
        args.Length > 0 && args[0] is "run" or "create" ? [args[0], "--network", "none", .. args[1..]] : args;

    static string LocateBerth()
    {
        if (Environment.GetEnvironmentVariable("BERTH_REPO") is { Length: > 0 } repo && File.Exists(Path.Combine(repo, "out", "berth")))
            return Path.Combine(repo, "out", "berth");
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "out", "berth");
            if (File.Exists(candidate)) return candidate;
        }
        throw new InvalidOperationException("out/berth not found: set BERTH_REPO or run `make build`");
    }
}
