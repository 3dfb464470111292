using System.Diagnostics;
using System.Text.Json.Nodes;
using Berth.Engine.Tests.Support;

namespace Berth.Engine.Tests;

/// <summary>`berth` driven as a user would, on the real kernel, with temp --root/--runroot.</summary>
public class LifecycleTests
{
    [Fact]
    public void Run_passes_exit_codes_through_and_uses_dockers_codes_for_failures() => EngineSandbox.Run(s =>
    {
        Assert.Equal(0, s.RunC(["--rm"], "true").ExitCode);
        Assert.Equal(3, s.RunC(["--rm"], "sh", "-c", "exit 3").ExitCode);
        EngineSandbox.AssertOneLineError(s.RunC(["--rm"], "no-such-command"), 127, "executable file not found");
        EngineSandbox.AssertOneLineError(s.RunC(["--rm"], "/etc/passwd"), 126, "ermission denied");
        EngineSandbox.AssertOneLineError(s.RunC(["--rm", "--memory", "lots"], "true"), 125, "invalid size");
        EngineSandbox.AssertOneLineError(s.Berth("run", "--rm", "--rootfs", "/nonexistent-rootfs", "true"), 125, "no such directory");
        EngineSandbox.AssertOneLineError(s.Berth("run", "--rm", "--bogus-flag", "--rootfs", s.Rootfs, "true"), 125, "--bogus-flag");
        // --rm leaves nothing, even for the ones that failed to start
        Assert.Empty(s.Ok("ps", "-aq").Lines);
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(s.Root, "containers")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(s.Root, "names")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(s.RunRoot, "containers")));
    });

    [Fact]
    public void Failed_start_without_rm_leaves_a_created_container_with_the_error() => EngineSandbox.Run(s =>
    {
        var r = s.RunC(["--name", "nf"], "no-such-command");
        Assert.Equal(127, r.ExitCode);
        var c = s.Inspect("nf");
        Assert.Equal("created", (string)c["State"]!["Status"]!);
        Assert.Equal(127, (int)c["State"]!["ExitCode"]!);
        Assert.Contains("executable file not found", (string)c["State"]!["Error"]!);
        s.Ok("rm", "nf");
    });

    [Fact]
    public void Env_workdir_user_hostname_and_etc_files() => EngineSandbox.Run(s =>
    {
        var envFile = Path.Combine(s.Dir, "env");
        File.WriteAllText(envFile, "# comment\nFROM_FILE=yes\n\nOVERRIDE=file\n");
        var r = s.RunC(["--rm", "-e", "FOO=bar baz", "--env-file", envFile, "-e", "OVERRIDE=flag", "-w", "/work/dir", "-u", "app", "-h", "myhost"],
            "sh", "-c", "echo $FOO; echo $FROM_FILE $OVERRIDE; pwd; id; hostname; cat /etc/hostname; grep myhost /etc/hosts; echo $HOSTNAME; echo oops >&2");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(["bar baz", "yes flag", "/work/dir", "uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)", "myhost", "myhost", "myhost"], r.Lines.Where((_, i) => i != 6));
        Assert.Matches(@"^10\.214\.\d+\.\d+\tmyhost$", r.Lines[6]); // docker's: the container's address on the default bridge
        Assert.Equal("oops\n", r.Stderr);
        var u = s.RunC(["--rm", "-u", "4321:77"], "id");
        Assert.Equal("uid=4321 gid=77 groups=77", u.Stdout.Trim());
        EngineSandbox.AssertOneLineError(s.RunC(["--rm", "-u", "nosuchuser"], "id"), 125, "unable to find user nosuchuser");
    });

    [Fact]
    public void Detached_container_logs_exec_stop_rm() => EngineSandbox.Run(s =>
    {
        var id = s.RunDetached(["--name", "web", "-l", "app=demo"], "sh", "-c", "echo started; echo warn >&2; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done");
        Assert.Matches("^[0-9a-f]{64}$", id);
        EngineSandbox.WaitUntil(() => s.Ok("logs", "web").Stdout.Contains("started"), "log output");
        var logs = s.Ok("logs", "web");
        Assert.Equal("started\n", logs.Stdout);
        Assert.Equal("warn\n", logs.Stderr);
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z started\n", s.Ok("logs", "-t", "web").Stdout);
        // the log file is docker's json-file format
        var logPath = (string)s.Inspect("web")["LogPath"]!;
        var first = JsonNode.Parse(File.ReadLines(logPath).First())!;
        Assert.True(first["log"] is not null && first["stream"] is not null && first["time"] is not null);

        var e = s.Ok("exec", "-e", "X=1", "-w", "/tmp", "web", "sh", "-c", "echo $X; pwd; id -u");
        Assert.Equal(["1", "/tmp", "0"], e.Lines);
        Assert.Equal("65534", s.Ok("exec", "-u", "nobody", "web", "id", "-u").Stdout.Trim());
        Assert.Equal(5, s.Berth("exec", "web", "sh", "-c", "exit 5").ExitCode);
        var missing = s.Berth("exec", "web", "no-such-command");
        Assert.Equal(126, missing.ExitCode); // docker exec's code: the runtime could not start the process
        Assert.Contains("executable file not found in $PATH", missing.Stderr);
        Assert.Equal("piped\n", s.BerthIn("piped\n", "exec", "-i", "web", "cat").Stdout);

        Assert.Contains("Up ", s.Ok("ps", "--format", "{{.Names}} {{.Status}}").Stdout);
        var sw = Stopwatch.StartNew();
        Assert.Equal("web\n", s.Ok("stop", "web").Stdout);
        Assert.True(sw.ElapsedMilliseconds < 5000, $"stop took {sw.ElapsedMilliseconds} ms (the trap answers TERM at once)");
        var st = s.Inspect("web")["State"]!;
        Assert.Equal("exited", (string)st["Status"]!);
        Assert.Equal(0, (int)st["ExitCode"]!);
        Assert.Contains("bye", s.Ok("logs", "web").Stdout);
        EngineSandbox.AssertOneLineError(s.Berth("exec", "web", "true"), 125, "not running");
        Assert.Equal("web\n", s.Ok("rm", "web").Stdout);
        Assert.Empty(s.Ok("ps", "-aq").Lines);
        EngineSandbox.AssertOneLineError(s.Berth("logs", "web"), 125, "no such container");
    });

    [Fact]
    public void Stop_kills_after_the_timeout_and_rm_needs_force_while_running() => EngineSandbox.Run(s =>
    {
        s.RunDetached(["--name", "stubborn"], "sh", "-c", "trap '' TERM; while true; do sleep 0.1; done");
        EngineSandbox.AssertOneLineError(s.Berth("rm", "stubborn"), 125, "container is running");
        var sw = Stopwatch.StartNew();
        s.Ok("stop", "-t", "1", "stubborn");
        Assert.InRange(sw.ElapsedMilliseconds, 900, 8000);
        Assert.Equal(137, (int)s.Inspect("stubborn")["State"]!["ExitCode"]!);
        s.Ok("start", "stubborn");
        Assert.True((bool)s.Inspect("stubborn")["State"]!["Running"]!);
        s.Ok("kill", "-s", "KILL", "stubborn");
        Assert.Equal("137\n", s.Ok("wait", "stubborn").Stdout);
        s.Ok("start", "stubborn");
        s.Ok("rm", "-f", "stubborn");
        Assert.Empty(s.Ok("ps", "-aq").Lines);
    });

    [Fact]
    public void Wait_returns_the_exit_code() => EngineSandbox.Run(s =>
    {
        s.RunDetached(["--name", "w"], "sh", "-c", "sleep 0.3; exit 7");
        Assert.Equal("7\n", s.Ok("wait", "w").Stdout);
        Assert.Equal("7\n", s.Ok("wait", "w").Stdout); // already exited
        EngineSandbox.AssertOneLineError(s.Berth("wait", "nope"), 1, "no such container");
    });

    [Fact]
    public void Create_then_start_attach_and_restart() => EngineSandbox.Run(s =>
    {
        var id = s.Ok("create", "--name", "c1", "--rootfs", s.Rootfs, "sh", "-c", "echo run").Stdout.Trim();
        Assert.Equal("created", (string)s.Inspect("c1")["State"]!["Status"]!);
        Assert.Contains("Created", s.Ok("ps", "-a").Stdout);
        var r = s.Ok("start", "-a", "c1");
        Assert.Equal("run\n", r.Stdout);
        s.Ok("start", "-a", id[..12]);
        Assert.Equal("run\nrun\n", s.Ok("logs", "c1").Stdout);
        s.RunDetached(["--name", "r1"], "sleep", "100");
        var pid1 = (int)s.Inspect("r1")["State"]!["Pid"]!;
        s.Ok("restart", "-t", "0", "r1");
        var pid2 = (int)s.Inspect("r1")["State"]!["Pid"]!;
        Assert.NotEqual(pid1, pid2);
        Assert.True(EngineSandbox.IsAlive(pid2));
        Assert.False(EngineSandbox.IsAlive(pid1));
    });

    [Fact]
    public void Ps_formats_and_filters() => EngineSandbox.Run(s =>
    {
        var a = s.RunDetached(["--name", "alpha", "-l", "tier=web"], "sleep", "100");
        s.RunC(["--name", "beta", "-l", "tier=db"], "true");
        var table = s.Ok("ps").Lines;
        Assert.Matches(@"^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$", table[0]);
        Assert.Equal(2, table.Length);
        Assert.EndsWith("alpha", table[1]);
        Assert.Contains("\"sleep 100\"", table[1]);
        Assert.Equal(3, s.Ok("ps", "-a").Lines.Length);
        Assert.Equal([a[..12]], s.Ok("ps", "-q").Lines);
        Assert.Equal([a], s.Ok("ps", "-q", "--no-trunc").Lines);
        Assert.Equal(["alpha running", "beta exited"], s.Ok("ps", "-a", "--format", "{{.Names}} {{.State}}").Lines.Order().ToArray());
        Assert.Equal(["beta"], s.Ok("ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}").Lines);
        Assert.Equal(["beta"], s.Ok("ps", "-a", "--filter", "label=tier=db", "--format", "{{.Names}}").Lines);
        Assert.Equal(["alpha"], s.Ok("ps", "-a", "--filter", "name=alp", "--format", "{{.Names}}").Lines);
        var json = s.Ok("ps", "-a", "--format", "json").Lines.Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(2, json.Count);
        Assert.Contains(json, j => (string)j["Names"]! == "alpha" && (string)j["State"]! == "running" && (string)j["Labels"]! == "tier=web");
        var t = s.Ok("ps", "-a", "--format", "table {{.Names}}\\t{{.Status}}").Lines;
        Assert.Matches(@"^NAMES\s+STATUS$", t[0]);
        EngineSandbox.AssertOneLineError(s.Berth("ps", "--filter", "bogus=1"), 125, "invalid filter");
        EngineSandbox.AssertOneLineError(s.Berth("ps", "--format", "{{.Nope}}"), 125, "Nope");
    });

    [Fact]
    public void Inspect_has_dockers_shape() => EngineSandbox.Run(s =>
    {
        var host = Path.Combine(s.Dir, "data");
        Directory.CreateDirectory(host);
        s.RunDetached(["--name", "insp", "-e", "A=1", "-l", "k=v", "-v", $"{host}:/data:ro", "--memory", "64m", "--stop-signal", "SIGINT"], "sleep", "100");
        var c = s.Inspect("insp");
        foreach (var key in new[] { "Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath", "HostnamePath", "HostsPath", "LogPath", "Name", "RestartCount", "HostConfig", "Mounts", "Config" })
            Assert.True(c.ContainsKey(key), "missing " + key);
        Assert.False(c.ContainsKey("Monitor"));
        Assert.Equal("/insp", (string)c["Name"]!);
        Assert.Equal("sleep", (string)c["Path"]!);
        var st = c["State"]!.AsObject();
        Assert.Equal("running", (string)st["Status"]!);
        Assert.True((bool)st["Running"]!);
        Assert.False((bool)st["Paused"]!);
        Assert.True(EngineSandbox.IsAlive((int)st["Pid"]!));
        Assert.Matches(@"^\d{4}-", (string)st["StartedAt"]!);
        Assert.Equal("0001-01-01T00:00:00Z", (string)st["FinishedAt"]!);
        Assert.Contains("A=1", c["Config"]!["Env"]!.AsArray().Select(x => (string)x!));
        Assert.Equal("v", (string)c["Config"]!["Labels"]!["k"]!);
        Assert.Equal("SIGINT", (string)c["Config"]!["StopSignal"]!);
        Assert.Equal(64L << 20, (long)c["HostConfig"]!["Memory"]!);
        var m = c["Mounts"]!.AsArray()[0]!;
        Assert.Equal(host, (string)m["Source"]!);
        Assert.Equal("/data", (string)m["Destination"]!);
        Assert.False((bool)m["RW"]!);
        Assert.Equal("running 1", s.Ok("inspect", "-f", "{{.State.Status}} {{json .State.Running}}", "insp").Stdout.Trim().Replace("true", "1"));
        Assert.Equal("[sleep 100]", s.Ok("inspect", "--format", "{{.Config.Cmd}}", "insp").Stdout.Trim());
        EngineSandbox.AssertOneLineError(s.Berth("inspect", "nope"), 1, "no such container");
    });

    [Fact]
    public void Names_are_unique_and_rename_moves_them() => EngineSandbox.Run(s =>
    {
        s.RunC(["--name", "same"], "true");
        EngineSandbox.AssertOneLineError(s.RunC(["--name", "same"], "true"), 125, "already in use");
        EngineSandbox.AssertOneLineError(s.RunC(["--name", "bad/name"], "true"), 125, "invalid container name");
        Assert.Single(s.Ok("ps", "-aq").Lines);
        s.Ok("rename", "same", "other");
        s.RunC(["--name", "same"], "true");
        Assert.Equal(["other", "same"], s.Ok("ps", "-a", "--format", "{{.Names}}").Lines.Order().ToArray());
        EngineSandbox.AssertOneLineError(s.Berth("rename", "other", "same"), 125, "already in use");
    });

    [Fact]
    public void Pause_and_unpause() => EngineSandbox.Run(s =>
    {
        s.RunDetached(["--name", "p"], "sh", "-c", "while true; do date +%s%N > /tmp/t; sleep 0.05; done");
        s.Ok("pause", "p");
        Assert.Equal("paused", (string)s.Inspect("p")["State"]!["Status"]!);
        Assert.Contains("(Paused)", s.Ok("ps").Stdout);
        EngineSandbox.AssertOneLineError(s.Berth("exec", "p", "true"), 125, "paused");
        s.Ok("unpause", "p");
        Assert.Equal("running", (string)s.Inspect("p")["State"]!["Status"]!);
        s.Ok("rm", "-f", "p");
    });
}
