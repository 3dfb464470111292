using System.Diagnostics;
using System.Text;
using Berth.Engine.Tests.Support;

namespace Berth.Engine.Tests;

/// <summary>`--init`: berth-init (native/init.c) as PID 1 reaps orphans, forwards signals and passes
/// the command's exit status through.</summary>
public class InitTests
{
    // Two orphans whose parent exits at once: they are reparented to PID 1 and exit 0.1 s later.
    const string Orphans = "sh -c 'sleep 0.1 &'; sh -c 'sleep 0.1 &'; exec sleep 1000";

    static int Zombies(EngineSandbox s, string name) =>
        int.Parse(s.Ok("exec", name, "sh", "-c", "grep -l '^State:.*Z' /proc/[0-9]*/status | wc -l").Stdout.Trim());

    [Fact]
    public void Orphans_are_reaped_by_the_init_and_not_without_it() => EngineSandbox.Run(s =>
    {
        s.RunDetached(["--init", "--name", "withinit"], "sh", "-c", Orphans);
        s.RunDetached(["--name", "noinit"], "sh", "-c", Orphans);
        Thread.Sleep(1500);
        // Without an init the container's PID 1 is `sleep`, which never waits: the orphans stay zombies.
        Assert.True(Zombies(s, "noinit") >= 2, "the control container should show zombies");
        Assert.Equal(0, Zombies(s, "withinit"));
        // PID 1 is the init, the command its child
        Assert.Equal("/dev/init -- sh -c " + Orphans, s.Ok("exec", "withinit", "sh", "-c", "tr '\\0' ' ' </proc/1/cmdline").Stdout.TrimEnd());
        var hc = s.Inspect("withinit")["HostConfig"]!;
        Assert.True((bool)hc["Init"]!);
        // inspect keeps the user's command (the init is not part of it, as in docker)
        Assert.Equal("sh", (string)s.Inspect("withinit")["Path"]!);
        Assert.Null(s.Inspect("noinit")["HostConfig"]!["Init"]);
    });

    [Fact]
    public void Stop_reaches_the_child_and_the_exit_status_passes_through() => EngineSandbox.Run(s =>
    {
        // `sleep` as PID 1 would ignore SIGTERM (the kernel drops it without a handler) and be killed
        // after the timeout (137); under the init it is an ordinary child: SIGTERM kills it (128+15).
        s.RunDetached(["--init", "--name", "sleeper"], "sleep", "1000");
        var sw = Stopwatch.StartNew();
        s.Ok("stop", "-t", "20", "sleeper");
        Assert.True(sw.ElapsedMilliseconds < 15_000, $"stop took {sw.ElapsedMilliseconds} ms: SIGTERM was not forwarded");
        Assert.Equal(143, (int)s.Inspect("sleeper")["State"]!["ExitCode"]!);
        // a trap in the child runs and its exit code is the container's
        s.RunDetached(["--init", "--name", "trapper"], "sh", "-c", "trap 'echo got TERM; exit 7' TERM; echo ready; while true; do sleep 0.1; done");
        EngineSandbox.WaitUntil(() => s.Ok("logs", "trapper").Stdout.Contains("ready"), "trapper ready");
        s.Ok("stop", "-t", "20", "trapper");
        Assert.Equal(7, (int)s.Inspect("trapper")["State"]!["ExitCode"]!);
        Assert.Contains("got TERM", s.Ok("logs", "trapper").Stdout);
        // exit codes of the command as they are
        Assert.Equal(3, s.RunC(["--init", "--rm"], "sh", "-c", "exit 3").ExitCode);
        var missing = s.RunC(["--init", "--rm"], "no-such-command");
        Assert.Equal(127, missing.ExitCode);
        Assert.Contains("no-such-command", missing.Stderr);
    });

    [Fact]
    public void Kill_signals_are_forwarded() => EngineSandbox.Run(s =>
    {
        s.RunDetached(["--init", "--name", "usr"], "sh", "-c", "trap 'echo got USR1' USR1; echo ready; while true; do sleep 0.1; done");
        EngineSandbox.WaitUntil(() => s.Ok("logs", "usr").Stdout.Contains("ready"), "ready");
        s.Ok("kill", "-s", "USR1", "usr");
        EngineSandbox.WaitUntil(() => s.Ok("logs", "usr").Stdout.Contains("got USR1"), "USR1 forwarded to the child");
        Assert.Equal("running", (string)s.Inspect("usr")["State"]!["Status"]!);
        s.Ok("kill", "usr");
        Assert.Equal("137\n", s.Ok("wait", "usr").Stdout);
    });

    [Fact]
    public void Init_with_an_interactive_terminal() => EngineSandbox.Run(s =>
    {
        var (p, output) = Pty.Start(s, "run", "--init", "-it", "--rm", "--rootfs", s.Rootfs, "sh");
        using (p)
        {
            Pty.Type(p, output, "echo pid1=$(cat /proc/1/comm) tty=$(tty) sum=$((40+2))\n", "sum=42");
            Pty.Type(p, output, "exit 5\n");
            Assert.True(p.WaitForExit(20_000), "the session did not end");
            Assert.Equal(5, p.ExitCode);
            Assert.Contains("pid1=init tty=/dev/pts/0", output.ToString());
        }
    });
}

/// <summary>A pseudo-terminal for the CLI: util-linux `script` runs berth on a pty it creates and
/// copies its own (piped) stdin into it; its exit status is berth's.</summary>
static class Pty
{
    /// <summary>Types <paramref name="line"/> and waits until <paramref name="expect"/> shows in the output.</summary>
    public static void Type(Process p, StringBuilder output, string line, string? expect = null)
    {
        p.StandardInput.Write(line);
        p.StandardInput.Flush();
        if (expect is not null) EngineSandbox.WaitUntil(() => { lock (output) return output.ToString().Contains(expect); }, expect);
    }

    public static (Process Process, StringBuilder Output) Start(EngineSandbox s, params string[] args)
    {
        var cmd = string.Join(' ', new[] { EngineSandbox.Binary, "--root", s.Root, "--runroot", s.RunRoot }.Concat(args).Select(a => "'" + a.Replace("'", "'\\''") + "'"));
        var psi = new ProcessStartInfo("script", ["-q", "-e", "-f", "-c", cmd, "/dev/null"])
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        var p = Process.Start(psi)!;
        var sb = new StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (sb) sb.Append(e.Data).Append('\n'); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (sb) sb.Append(e.Data).Append('\n'); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return (p, sb);
    }
}

/// <summary>`berth attach`: a running container's terminal or output through its monitor.</summary>
public class AttachTests
{
    [Fact]
    public void Attach_to_an_interactive_shell_then_detach_with_ctrl_p_ctrl_q() => EngineSandbox.Run(s =>
    {
        s.RunDetached(["-it", "--name", "shell"], "sh");
        var (p, output) = Pty.Start(s, "attach", "shell");
        using (p)
        {
            Thread.Sleep(500);
            Pty.Type(p, output, "echo attached-$((2+3))\n", "attached-5");
            Pty.Type(p, output, "\x10\x11");
            Assert.True(p.WaitForExit(20_000), "ctrl-p ctrl-q did not detach");
            Assert.Equal(0, p.ExitCode);
        }
        // still running, and a second attach finds the same shell
        Assert.Equal("running", (string)s.Inspect("shell")["State"]!["Status"]!);
        var (p2, out2) = Pty.Start(s, "attach", "--detach-keys", "ctrl-x", "shell");
        using (p2)
        {
            Thread.Sleep(500);
            Pty.Type(p2, out2, "echo again-$((1+1))\n", "again-2");
            Pty.Type(p2, out2, "exit 4\n");
            Assert.True(p2.WaitForExit(20_000), "the shell's exit did not end the attach");
            Assert.Equal(4, p2.ExitCode);
        }
        Assert.Equal("4\n", s.Ok("wait", "shell").Stdout);
    });

    [Fact]
    public void Attach_without_a_terminal_sees_new_output_and_stdin() => EngineSandbox.Run(s =>
    {
        s.RunDetached(["--name", "ticker"], "sh", "-c", "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.2; done");
        Thread.Sleep(1000);
        var (p, o, _) = s.Start(null, "attach", "--no-stdin", "ticker");
        using (p)
        {
            EngineSandbox.WaitUntil(() => File.ReadAllText(o).Contains("tick"), "output through attach");
            p.Kill();
            p.WaitForExit();
        }
        // new output only (the log's history is `logs`, not attach)
        Assert.DoesNotContain("tick0\n", File.ReadAllText(o));
        Assert.Equal("running", (string)s.Inspect("ticker")["State"]!["Status"]!);

        // -i: stdin goes to the container; the end of the attach's stdin does not close the container's
        s.RunDetached(["-i", "--name", "cat"], "sh", "-c", "while read l; do echo got:$l; done; echo stdin-closed");
        // (as docker: with the container's stdin kept open the attach follows its output until killed)
        var (pa, oa, _) = s.Start("hello\n", "attach", "cat");
        using (pa)
        {
            EngineSandbox.WaitUntil(() => File.ReadAllText(oa).Contains("got:hello"), "stdin through attach");
            pa.Kill();
            pa.WaitForExit();
        }
        Thread.Sleep(300);
        Assert.DoesNotContain("stdin-closed", s.Ok("logs", "cat").Stdout);
        Assert.Equal("running", (string)s.Inspect("cat")["State"]!["Status"]!);
    });

    [Fact]
    public void Attach_refuses_stopped_containers_and_bad_keys_in_one_line() => EngineSandbox.Run(s =>
    {
        s.RunC(["--name", "done"], "true");
        EngineSandbox.AssertOneLineError(s.Berth("attach", "done"), 1, "You cannot attach to a stopped container, start it first");
        EngineSandbox.AssertOneLineError(s.Berth("attach", "nope"), 125, "no such container");
        s.RunDetached(["--name", "up"], "sleep", "100");
        EngineSandbox.AssertOneLineError(s.Berth("attach", "--detach-keys", "ctrl-1", "up"), 125, "invalid detach keys");
        Assert.Equal("running", (string)s.Inspect("up")["State"]!["Status"]!);
    });
}

/// <summary>`berth system boot` after a simulated reboot.</summary>
public class BootTests
{
    [Fact]
    public void Boot_brings_back_always_and_unless_stopped_containers_and_their_pods() => EngineSandbox.Run(s =>
    {
        s.RunDetached(["--name", "alw", "--restart", "always"], "sleep", "1000");
        s.RunDetached(["--name", "uns", "--restart", "unless-stopped"], "sleep", "1000");
        s.RunDetached(["--name", "stopped", "--restart", "unless-stopped"], "sleep", "1000");
        s.RunDetached(["--name", "plain"], "sleep", "1000");
        s.RunDetached(["--name", "fails", "--restart", "on-failure"], "sleep", "1000");
        s.Ok("pod", "create", "--name", "pd");
        s.RunDetached(["--name", "inpod", "--pod", "pd", "--restart", "always"], "sleep", "1000");
        s.Ok("stop", "-t", "0", "stopped");

        // Before any reboot: nothing to do.
        Assert.Equal("", s.Ok("system", "boot").Stdout);

        s.SimulateReboot();
        Assert.Empty(s.Ok("ps", "-q").Lines);

        var boot = s.Ok("system", "boot");
        Assert.Equal(["container alw", "container inpod", "container uns", "pod pd"], boot.Lines.Order(StringComparer.Ordinal));
        Assert.Equal(["alw", "inpod", "uns"], s.Ok("ps", "--format", "{{.Names}}").Lines.Order(StringComparer.Ordinal));
        Assert.Equal("Running", s.Ok("pod", "ps", "--format", "{{.Status}}").Stdout.Trim());
        // idempotent
        Assert.Equal("", s.Ok("system", "boot").Stdout);
        Assert.Equal(3, s.Ok("ps", "-q").Lines.Length);
        // a start by the user clears "stopped by the user"; a stop sets it again
        s.Ok("start", "stopped");
        s.Ok("stop", "-t", "0", "uns");
        s.SimulateReboot();
        Assert.Equal(["container alw", "container inpod", "container stopped", "pod pd"], s.Ok("system", "boot").Lines.Order(StringComparer.Ordinal));
        s.Ok("pod", "rm", "-f", "pd");
    });
}
