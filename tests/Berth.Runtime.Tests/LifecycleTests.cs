using System.Text.Json.Nodes;
using Berth.Runtime.Tests.Support;

namespace Berth.Runtime.Tests;

/// <summary>create/start/state/kill/delete/run/list/ps/pause/resume against the real kernel.</summary>
public class LifecycleTests
{
    [Fact]
    public void Create_waits_for_start_then_state_kill_delete() => Sandbox.Run(s =>
    {
        var id = s.NewId("life");
        var host = s.HostDir("shared");
        var marker = Path.Combine(host, "ran");
        var b = s.NewBundle(id, "touch /shared/ran; echo started; exec sleep 1000",
            c => c.AddMount("/shared", "bind", host, "rbind", "rw"));
        var pidFile = Path.Combine(s.Dir, "init.pid");

        var create = s.Ok("create", "--bundle", b.Dir, "--pid-file", pidFile, id);
        Assert.Equal("", create.Stderr);
        var st = s.State(id);
        Assert.Equal("created", (string)st["status"]!);
        var pid = (int)st["pid"]!;
        Assert.True(pid > 0 && Sandbox.IsAlive(pid), $"init pid {pid} should be alive");
        Assert.Equal(pid.ToString(), File.ReadAllText(pidFile).Trim());
        Assert.False(File.Exists(marker), "the process ran before start");

        s.Ok("start", id);
        Sandbox.WaitForText(create.StdoutPath, "started");
        Assert.True(File.Exists(marker));
        st = s.State(id);
        Assert.Equal("running", (string)st["status"]!);
        Assert.StartsWith("1.", (string)st["ociVersion"]!);
        Assert.Equal(id, (string)st["id"]!);
        Assert.Equal(pid, (int)st["pid"]!);
        Assert.Equal(b.Dir, (string)st["bundle"]!);
        Assert.Equal(b.Rootfs, (string)st["rootfs"]!);
        var created = DateTimeOffset.Parse((string)st["created"]!);
        Assert.True(created <= DateTimeOffset.UtcNow.AddMinutes(1) && created > DateTimeOffset.UtcNow.AddHours(-1), $"created {created}");

        s.Ok("kill", id, "KILL");
        s.WaitForStatus(id, "stopped");
        Assert.False(Sandbox.IsAlive(pid));

        s.Ok("delete", id);
        Assert.False(Directory.Exists(Path.Combine(s.Root, id)));
        Sandbox.AssertOneLineError(s.Runc("state", id));
        Assert.False(Directory.Exists(Sandbox.CgroupDir("pids", id)));
    });

    [Theory]
    [InlineData("KILL")]
    [InlineData("SIGKILL")]
    [InlineData("9")]
    public void Kill_accepts_signal_names_and_numbers(string signal) => Sandbox.Run(s =>
    {
        var id = s.NewId("kill");
        var b = s.NewBundle(id, "exec sleep 1000");
        s.Ok("run", "--detach", "--bundle", b.Dir, id);
        Assert.Equal("running", s.Status(id));
        var pid = (int)s.State(id)["pid"]!;
        s.Ok("kill", id, signal);
        s.WaitForStatus(id, "stopped");
        Assert.False(Sandbox.IsAlive(pid));
        s.Ok("delete", id);
    });

    [Fact]
    public void Delete_of_a_running_container_needs_force() => Sandbox.Run(s =>
    {
        var id = s.NewId("del");
        var b = s.NewBundle(id, "exec sleep 1000");
        s.Ok("run", "-d", "-b", b.Dir, id);
        var pid = (int)s.State(id)["pid"]!;

        Sandbox.AssertOneLineError(s.Runc("delete", id), "running");
        Assert.Equal("running", s.Status(id));

        s.Ok("delete", "--force", id);
        Assert.False(Sandbox.IsAlive(pid));
        Assert.False(Directory.Exists(Path.Combine(s.Root, id)));
        Assert.False(Directory.Exists(Sandbox.CgroupDir("memory", id)));
        Assert.False(Directory.Exists(Sandbox.CgroupDir("freezer", id)));
    });

    [Fact]
    public void Run_passes_the_exit_status_and_output_through() => Sandbox.Run(s =>
    {
        var id = s.NewId("exit");
        var b = s.NewBundle(id, "echo out-line; echo err-line >&2; exit 42");
        var r = s.Runc("run", "-b", b.Dir, id);
        Assert.Equal(42, r.ExitCode);
        Assert.Equal("out-line\n", r.Stdout);
        Assert.Equal("err-line\n", r.Stderr);
        // run without --keep deletes the container
        Assert.False(Directory.Exists(Path.Combine(s.Root, id)));
    });

    [Fact]
    public void Run_reports_128_plus_signal_when_the_process_is_killed() => Sandbox.Run(s =>
    {
        var id = s.NewId("sig");
        var b = s.NewBundle(id, "echo up; exec sleep 1000");
        var (p, stdout, _) = s.Start(null, "run", "-b", b.Dir, id);
        using (p)
        {
            Sandbox.WaitForText(stdout, "up");
            s.Ok("kill", id, "KILL");
            Assert.Equal(137, Support.Runc.Wait(p, "run"));
        }
    });

    [Fact]
    public void Run_detach_returns_while_the_container_runs() => Sandbox.Run(s =>
    {
        var id = s.NewId("det");
        var b = s.NewBundle(id, "exec sleep 1000");
        var r = s.Ok("run", "--detach", "--bundle", b.Dir, id);
        Assert.Equal("", r.Stdout);
        var st = s.State(id);
        Assert.Equal("running", (string)st["status"]!);
        Assert.True(Sandbox.IsAlive((int)st["pid"]!));
        // `run` releases init over the sync socket: no exec fifo, and the directory is the lock.
        Assert.Equal(["config.json", "state.json"], Directory.GetFiles(Path.Combine(s.Root, id)).Select(f => Path.GetFileName(f)!).Order().ToArray());
    });

    [Fact]
    public void A_container_directory_is_locked_while_a_command_works_on_it() => Sandbox.Run(s =>
    {
        var id = s.NewId("lock");
        var b = s.NewBundle(id, "true");
        s.Ok("create", "--bundle", b.Dir, id);
        var dir = Path.Combine(s.Root, id);
        using (var l = Berth.Runtime.ContainerLock.Acquire(dir))
        {
            // `start` waits for the lock: it has not released init after a while.
            var (p, _, err) = s.Start(null, "start", id);
            using var _p = p;
            Assert.False(p.WaitForExit(500), File.ReadAllText(err));
            Assert.Equal("created", (string)s.State(id)["status"]!);
            l.Dispose();
            Assert.True(p.WaitForExit(10_000));
            Assert.True(p.ExitCode == 0, File.ReadAllText(err));
        }
        s.Ok("delete", "--force", id);
    });

    [Fact]
    public void List_shows_containers_as_a_table_and_as_json() => Sandbox.Run(s =>
    {
        var a = s.NewId("lista");
        var c = s.NewId("listc");
        s.Ok("run", "-d", "-b", s.NewBundle(a, "exec sleep 1000").Dir, a);
        s.Ok("create", "-b", s.NewBundle(c, "exec sleep 1000").Dir, c);
        var pidA = (int)s.State(a)["pid"]!;

        var table = s.Ok("list").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"], table[0].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(3, table.Length);
        var rowA = table.Single(l => l.StartsWith(a + " ")).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(pidA.ToString(), rowA[1]);
        Assert.Equal("running", rowA[2]);
        Assert.Contains(table, l => l.StartsWith(c + " ") && l.Contains(" created "));

        var json = JsonNode.Parse(s.Ok("list", "--format", "json").Stdout)!.AsArray();
        Assert.Equal(2, json.Count);
        var ja = json.Single(e => (string)e!["id"]! == a)!;
        Assert.Equal(pidA, (int)ja["pid"]!);
        Assert.Equal("running", (string)ja["status"]!);
        Assert.Equal("created", (string)json.Single(e => (string)e!["id"]! == c)!["status"]!);

        Assert.Equal([a, c], s.Ok("list", "-q").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());
    });

    [Fact]
    public void Ps_json_lists_the_container_processes() => Sandbox.Run(s =>
    {
        var id = s.NewId("ps");
        s.Ok("run", "-d", "-b", s.NewBundle(id, "sleep 1000 & echo child; wait").Dir, id);
        var pid = (int)s.State(id)["pid"]!;
        var deadline = Environment.TickCount64 + 10_000;
        JsonArray pids;
        while ((pids = JsonNode.Parse(s.Ok("ps", "--format", "json", id).Stdout)!.AsArray()).Count < 2 && Environment.TickCount64 < deadline)
            Thread.Sleep(20);
        var list = pids.Select(p => (int)p!).ToList();
        Assert.Contains(pid, list);
        Assert.Equal(2, list.Count);
    });

    [Fact]
    public void Pause_and_resume_freeze_the_cgroup() => Sandbox.Run(s =>
    {
        var id = s.NewId("pause");
        s.Ok("run", "-d", "-b", s.NewBundle(id, "exec sleep 1000").Dir, id);
        s.Ok("pause", id);
        Assert.Equal("paused", s.Status(id));
        Assert.Equal("FROZEN", Sandbox.CgroupFile("freezer", id, "freezer.state"));
        var pid = (int)s.State(id)["pid"]!;
        Assert.Contains("State:\tD", File.ReadAllText($"/proc/{pid}/status").Replace("(", ""), StringComparison.Ordinal);

        Sandbox.AssertOneLineError(s.Runc("pause", id));
        s.Ok("resume", id);
        Assert.Equal("running", s.Status(id));
        Assert.Equal("THAWED", Sandbox.CgroupFile("freezer", id, "freezer.state"));
        Sandbox.AssertOneLineError(s.Runc("resume", id));
    });

    [Fact]
    public void Delete_of_a_created_container_kills_its_init() => Sandbox.Run(s =>
    {
        var id = s.NewId("delc");
        var host = s.HostDir("shared");
        var b = s.NewBundle(id, "touch /shared/ran", c => c.AddMount("/shared", "bind", host, "rbind", "rw"));
        s.Ok("create", "-b", b.Dir, id);
        var pid = (int)s.State(id)["pid"]!;
        s.Ok("delete", id);
        Assert.False(Sandbox.IsAlive(pid));
        Assert.False(File.Exists(Path.Combine(host, "ran")), "deleting a created container must not run its process");
        s.AssertNothingLeft(id);
    });

    [Fact]
    public void A_killed_created_container_cannot_start() => Sandbox.Run(s =>
    {
        var id = s.NewId("killc");
        s.Ok("create", "-b", s.NewBundle(id, "exec sleep 1000").Dir, id);
        s.Ok("kill", id, "KILL");
        s.WaitForStatus(id, "stopped");
        Sandbox.AssertOneLineError(s.Runc("start", id));
        Sandbox.AssertOneLineError(s.Runc("kill", id, "KILL"), "not running");
        s.Ok("delete", id);
        s.AssertNothingLeft(id);
    });

    [Fact]
    public void A_container_that_exits_is_stopped_and_deletes_without_force() => Sandbox.Run(s =>
    {
        var id = s.NewId("exits");
        var create = s.Ok("create", "-b", s.NewBundle(id, "echo bye").Dir, id);
        var pid = (int)s.State(id)["pid"]!;
        s.Ok("start", id);
        s.WaitForStatus(id, "stopped");
        Assert.Equal("bye\n", File.ReadAllText(create.StdoutPath));
        Assert.False(Sandbox.IsAlive(pid));
        Sandbox.AssertOneLineError(s.Runc("exec", id, "true"), "stopped");
        Sandbox.AssertOneLineError(s.Runc("pause", id));
        s.Ok("delete", id);
        s.AssertNothingLeft(id);
    });

    [Fact]
    public void Exec_into_a_paused_container_is_refused() => Sandbox.Run(s =>
    {
        var id = s.NewId("pexec");
        s.Ok("run", "-d", "-b", s.NewBundle(id, "exec sleep 1000").Dir, id);
        s.Ok("pause", id);
        Sandbox.AssertOneLineError(s.Runc("exec", id, "true"), "paused");
        s.Ok("delete", "--force", id);
        s.AssertNothingLeft(id);
    });
}
