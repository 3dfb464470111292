using Berth.Engine.Tests.Support;

namespace Berth.Engine.Tests;

/// <summary>What a running container's monitor (berth-shim) costs, read from the kernel: its private
/// (anonymous) memory and its threads. Regressions here multiply by the number of containers
/// (bench/engine.sh measures 100 of them against conmon).</summary>
public class MonitorMemoryTests
{
    // KiB of anonymous memory. The native steady state (native/monitor.c): idle 56, after 8 MB of log
    // output 76 (conmon: 335 private). The .NET monitor before it: idle 1,308–1,460, after output 1,296.
    const long IdleAnonymousKiB = 128, AfterOutputAnonymousKiB = 160;

    [Fact]
    public void An_idle_monitor_is_the_native_steady_state_with_one_thread() => EngineSandbox.Run(s =>
    {
        var id = s.RunDetached(["--name", "idle", "--network", "none"], "sleep", "1000");
        var shim = (int)s.Record(id)["Monitor"]!["Pid"]!;
        Assert.Contains("berth-shim", EngineSandbox.Cmdline(shim));
        // The native monitor itself answered the starter, so `run -d` has returned to it.
        Assert.True(Settles(shim, IdleAnonymousKiB, out var anon), $"idle monitor: {anon} KiB anonymous memory");
        Assert.Matches("/monitor/berth-monitor-[0-9a-f]{16}$", new FileInfo($"/proc/{shim}/exe").LinkTarget);
        Assert.Equal(1, Threads(shim));
        // and it still does its job
        s.Ok("stop", "-t", "1", "idle");
        Assert.Equal("exited", (string)s.Inspect("idle")["State"]!["Status"]!);
    });

    [Fact]
    public void Monitor_memory_stays_bounded_while_it_logs_megabytes() => EngineSandbox.Run(s =>
    {
        // 8 MB of output (about 25,000 log lines), then idle: the log is complete and the monitor small.
        var id = s.RunDetached(["--name", "chatty", "--network", "none"], "sh", "-c",
            "i=0; while [ $i -lt 25000 ]; do echo 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef; i=$((i+1)); done; echo done; sleep 1000");
        var shim = (int)s.Record(id)["Monitor"]!["Pid"]!;
        var log = (string)s.Inspect("chatty")["LogPath"]!;
        EngineSandbox.WaitUntil(() => File.ReadLines(log).LastOrDefault()?.Contains("\"log\":\"done\\n\"") == true, "all output logged", 120_000);
        Assert.Equal(25_001, File.ReadLines(log).Count());
        // a long line's buffers go back after it; nothing piles up
        Assert.True(Settles(shim, AfterOutputAnonymousKiB, out var anon), $"monitor after 8 MB of output: {anon} KiB anonymous memory");
        s.Ok("rm", "-f", "chatty");
    });

    /// <summary>True when the process's anonymous memory drops under the bound within 10 seconds.</summary>
    static bool Settles(int pid, long boundKiB, out long anonKiB)
    {
        var deadline = Environment.TickCount64 + 10_000;
        while ((anonKiB = AnonymousKiB(pid)) >= boundKiB && Environment.TickCount64 < deadline) Thread.Sleep(200);
        return anonKiB < boundKiB;
    }

    static long AnonymousKiB(int pid) =>
        long.Parse(File.ReadLines($"/proc/{pid}/smaps_rollup").First(l => l.StartsWith("Anonymous:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);

    static int Threads(int pid) => Directory.GetDirectories($"/proc/{pid}/task").Length;
}
