using System.Diagnostics;

namespace Berth.Network.Tests.Support;

/// <summary>Runs host tools (ip, iptables-save, busybox) and returns what they printed.</summary>
public static class Sh
{
    public sealed record Result(int Code, string Out, string Err)
    {
        public Result Check(string what) =>
            Code == 0 ? this : throw new InvalidOperationException($"{what} exited {Code}: {Err.Trim()} {Out.Trim()}");
    }

    public static Result Run(string file, params string[] args) => RunWithTimeout(TimeSpan.FromSeconds(30), file, args);

    public static Result RunWithTimeout(TimeSpan timeout, string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(true);
            p.WaitForExit();
            return new Result(-1, o.Result, e.Result + $"\n(timed out after {timeout})");
        }
        p.WaitForExit();
        return new Result(p.ExitCode, o.Result, e.Result);
    }

    /// <summary>Runs a command inside a named network namespace (ip netns exec).</summary>
    public static Result InNetns(string netns, params string[] args) =>
        Run("ip", ["netns", "exec", netns, .. args]);

    public static string RandomSuffix(int n = 5) =>
        Convert.ToHexString(Guid.NewGuid().ToByteArray())[..n].ToLowerInvariant();
}

/// <summary>A named network namespace (ip netns add) standing in for a container; deleted on dispose.</summary>
public sealed class TestNetns : IDisposable
{
    public string Name { get; }
    public string Path => "/run/netns/" + Name;

    public TestNetns(string tag = "c")
    {
        Name = $"berth-t{tag}-{Sh.RandomSuffix(6)}";
        Sh.Run("ip", "netns", "add", Name).Check($"ip netns add {Name}");
    }

    public Sh.Result Exec(params string[] args) => Sh.InNetns(Name, args);

    public void Dispose() => Sh.Run("ip", "netns", "del", Name);
}
