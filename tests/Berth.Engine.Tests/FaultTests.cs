using System.Diagnostics;
using Berth.Engine.Tests.Support;

namespace Berth.Engine.Tests;

/// <summary>Killed CLIs and monitors, concurrency, and a simulated reboot: the next command always
/// sees a consistent state.</summary>
public class FaultTests
{
    [Fact]
    public void Killing_the_cli_of_an_attached_run_leaves_the_container_running_and_tracked() => EngineSandbox.Run(s =>
    {
        var (p, _, _) = s.Start(null, "run", "--name", "fg", "--rootfs", s.Rootfs, "sh", "-c", "echo up; sleep 100");
        EngineSandbox.WaitUntil(() => s.Berth("inspect", "-f", "{{.State.Status}}", "fg").Stdout.Trim() == "running", "container running");
        p.Kill(); // SIGKILL
        p.WaitForExit();
        p.Dispose();
        var st = s.Inspect("fg")["State"]!;
        Assert.True((bool)st["Running"]!);
        Assert.True(EngineSandbox.IsAlive((int)st["Pid"]!));
        Assert.Contains("up", s.Ok("logs", "fg").Stdout);
        s.Ok("stop", "-t", "0", "fg");
        Assert.Equal("exited", (string)s.Inspect("fg")["State"]!["Status"]!);
        s.Ok("rm", "fg");
    });

    [Fact]
    public void Killing_the_cli_in_the_middle_of_runs_never_leaves_a_half_container() => EngineSandbox.Run(s =>
    {
        // Kill CLIs at staggered moments of `run -d`; whatever they got to, the next commands see
        // containers that are either complete (and removable) or absent.
        for (var delay = 0; delay < 40; delay += 4)
        {
            var (p, _, _) = s.Start(null, "run", "-d", "--rootfs", s.Rootfs, "sleep", "100");
            Thread.Sleep(delay);
            try { p.Kill(); } catch (InvalidOperationException) { }
            p.WaitForExit();
            p.Dispose();
        }
        Thread.Sleep(300);
        foreach (var line in s.Ok("ps", "-a", "--format", "{{.ID}} {{.State}}").Lines)
        {
            var parts = line.Split(' ');
            Assert.Contains(parts[1], new[] { "created", "running", "exited" });
            s.Ok("rm", "-f", parts[0]);
        }
        Assert.Empty(s.Ok("ps", "-aq").Lines);
        // A CLI killed while it created the default network may have left its bridge without a record
        // (the faster the CLI starts, the likelier a kill lands there): the next run takes it over and works.
        Assert.Equal("ok\n", s.Ok("run", "--rm", "--rootfs", s.Rootfs, "echo", "ok").Stdout);
    });

    [Fact]
    public void Killing_the_monitor_kills_and_reports_the_container_exited() => EngineSandbox.Run(s =>
    {
        var id = s.RunDetached(["--name", "orphan"], "sleep", "100");
        var rec = s.Record(id);
        var shim = (int)rec["Monitor"]!["Pid"]!;
        var init = (int)rec["State"]!["Pid"]!;
        Assert.Contains("berth-shim", EngineSandbox.Cmdline(shim));
        Process.GetProcessById(shim).Kill();
        EngineSandbox.WaitUntil(() => !EngineSandbox.IsAlive(shim), "monitor gone");
        // The next command notices, kills what is left and records the exit: no running ghost.
        var ps = s.Ok("ps", "-a", "--format", "{{.Names}} {{.State}} {{.Status}}").Stdout;
        Assert.StartsWith("orphan exited Exited (137)", ps);
        Assert.False(EngineSandbox.IsAlive(init));
        Assert.Empty(s.Ok("ps", "-q").Lines);
        Assert.Contains("monitor", (string)s.Inspect("orphan")["State"]!["Error"]!);
        // and it can be started again
        s.Ok("start", "orphan");
        Assert.True((bool)s.Inspect("orphan")["State"]!["Running"]!);
    });

    [Fact]
    public void Thirty_two_concurrent_detached_runs_all_succeed() => EngineSandbox.Run(s =>
    {
        var sw = Stopwatch.StartNew();
        var results = new BerthResult[32];
        Parallel.For(0, 32, new ParallelOptions { MaxDegreeOfParallelism = 32 }, i =>
            results[i] = s.Berth("run", "-d", "--name", $"c{i}", "--rootfs", s.Rootfs, "sleep", "100"));
        var elapsed = sw.ElapsedMilliseconds;
        foreach (var r in results) Assert.True(r.ExitCode == 0, r.ToString());
        Assert.True(elapsed < 30_000, $"32 concurrent runs took {elapsed} ms");
        Assert.Equal(32, s.Ok("ps", "-q").Lines.Length);
        Assert.Equal(32, s.Ok("ps", "--format", "{{.Names}}").Lines.Distinct().Count());
        var rms = new BerthResult[32];
        Parallel.For(0, 32, new ParallelOptions { MaxDegreeOfParallelism = 32 }, i => rms[i] = s.Berth("rm", "-f", $"c{i}"));
        foreach (var r in rms) Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Empty(s.Ok("ps", "-aq").Lines);
    });

    [Fact]
    public void After_a_simulated_reboot_containers_are_exited_not_ghosts() => EngineSandbox.Run(s =>
    {
        var a = s.RunDetached(["--name", "a"], "sleep", "100");
        s.RunDetached(["--name", "b"], "sleep", "100");
        s.RunC(["--name", "done"], "true");
        s.SimulateReboot();
        var ps = s.Ok("ps", "-a", "--format", "{{.Names}} {{.State}}").Lines.Order().ToArray();
        Assert.Equal(["a exited", "b exited", "done exited"], ps);
        Assert.Empty(s.Ok("ps", "-q").Lines);
        Assert.Equal(0, (int)s.Inspect("done")["State"]!["ExitCode"]!);
        // start works again after the "reboot"
        s.Ok("start", "a");
        Assert.Equal("running", (string)s.Inspect(a)["State"]!["Status"]!);
    });
}

/// <summary>Restart policies, carried out by the monitor.</summary>
public class RestartPolicyTests
{
    [Fact]
    public void On_failure_restarts_up_to_the_maximum_then_stays_exited() => EngineSandbox.Run(s =>
    {
        s.RunDetached(["--name", "flaky", "--restart", "on-failure:2"], "sh", "-c", "echo try; exit 3");
        Assert.Equal("3\n", s.Ok("wait", "flaky").Stdout);
        var c = s.Inspect("flaky");
        Assert.Equal(2, (int)c["RestartCount"]!);
        Assert.Equal("exited", (string)c["State"]!["Status"]!);
        Assert.Equal(["try", "try", "try"], s.Ok("logs", "flaky").Lines);
        Assert.Equal("on-failure", (string)c["HostConfig"]!["RestartPolicy"]!["Name"]!);
        // success is not a failure: no restart
        s.RunDetached(["--name", "fine", "--restart", "on-failure"], "true");
        Assert.Equal("0\n", s.Ok("wait", "fine").Stdout);
        Assert.Equal(0, (int)s.Inspect("fine")["RestartCount"]!);
    });

    [Fact]
    public void Always_restarts_until_stopped() => EngineSandbox.Run(s =>
    {
        s.RunDetached(["--name", "loop", "--restart", "always"], "sh", "-c", "sleep 0.2; exit 0");
        EngineSandbox.WaitUntil(() => (int)s.Inspect("loop")["RestartCount"]! >= 2, "two restarts");
        s.Ok("stop", "-t", "1", "loop");
        var st = s.Inspect("loop");
        Assert.Equal("exited", (string)st["State"]!["Status"]!);
        var count = (int)st["RestartCount"]!;
        Thread.Sleep(600);
        Assert.Equal(count, (int)s.Inspect("loop")["RestartCount"]!);
        Assert.Empty(s.Ok("ps", "-q").Lines);
        EngineSandbox.AssertOneLineError(s.RunC(["--rm", "--restart", "always"], "true"), 125, "conflicting options");
        EngineSandbox.AssertOneLineError(s.RunC(["--restart", "sometimes"], "true"), 125, "invalid restart policy");
    });
}

/// <summary>Named volumes: data that outlives containers.</summary>
public class VolumeTests
{
    [Fact]
    public void Named_volume_keeps_data_across_containers() => EngineSandbox.Run(s =>
    {
        Assert.Equal("data\n", s.Ok("volume", "create", "data").Stdout);
        EngineSandbox.AssertOneLineError(s.Berth("volume", "create", "data"), 125, "already exists");
        s.Ok("run", "--rm", "-v", "data:/data", "--rootfs", s.Rootfs, "sh", "-c", "echo kept > /data/f");
        Assert.Equal("kept\n", s.Ok("run", "--rm", "-v", "data:/data:ro", "--rootfs", s.Rootfs, "cat", "/data/f").Stdout);
        // -v with an unknown name creates the volume
        s.RunDetached(["--name", "user", "-v", "auto:/a"], "sleep", "100");
        Assert.Equal(["auto", "data"], s.Ok("volume", "ls", "-q").Lines);
        Assert.Matches(@"^DRIVER\s+VOLUME NAME$", s.Ok("volume", "ls").Lines[0]);
        var m = s.Inspect("user")["Mounts"]!.AsArray()[0]!;
        Assert.Equal("volume", (string)m["Type"]!);
        Assert.Equal("auto", (string)m["Name"]!);
        var vi = System.Text.Json.Nodes.JsonNode.Parse(s.Ok("volume", "inspect", "auto").Stdout)!.AsArray()[0]!;
        Assert.Equal((string)m["Source"]!, (string)vi["Mountpoint"]!);
        Assert.Equal("local", (string)vi["Driver"]!);
        EngineSandbox.AssertOneLineError(s.Berth("volume", "rm", "auto"), 125, "in use");
        s.Ok("rm", "-f", "user");
        s.Ok("volume", "rm", "auto", "data");
        Assert.Empty(s.Ok("volume", "ls", "-q").Lines);
        EngineSandbox.AssertOneLineError(s.Berth("volume", "inspect", "gone"), 125, "no such volume");
    });
}
