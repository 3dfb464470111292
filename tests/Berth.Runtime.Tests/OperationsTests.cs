using System.Text.Json.Nodes;
using Berth.Runtime.Tests.Support;

namespace Berth.Runtime.Tests;

/// <summary>exec, update, events, features and spec.</summary>
public class OperationsTests
{
    internal static string NsLink(int pid, string ns) => new FileInfo($"/proc/{pid}/ns/{ns}").LinkTarget!;

    [Fact]
    public void Exec_runs_in_the_container_with_its_options() => Sandbox.Run(s =>
    {
        var id = s.NewId("exec");
        s.Ok("run", "-d", "-b", s.NewBundle(id, "exec sleep 1000", c => c.Proc()["env"] = ConfigJson.Arr("PATH=/bin", "FROM_CONFIG=yes")).Dir, id);
        var initPid = (int)s.State(id)["pid"]!;

        // plain args: the container's namespaces, env and hostname
        var r = s.Ok("exec", id, "sh", "-c", "readlink /proc/self/ns/pid; readlink /proc/self/ns/net; hostname; echo $FROM_CONFIG; ls /bin/busybox");
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal([NsLink(initPid, "pid"), NsLink(initPid, "net"), "berth", "yes", "/bin/busybox"], lines);

        // -e, --cwd, -u (flags before the id; the command's own flags are left alone)
        r = s.Ok("exec", "-e", "FOO=bar", "--cwd", "/tmp", "-u", "1000:1000", id, "sh", "-c", "echo $FOO; pwd; id -u; id -g; echo -n x");
        Assert.Equal("bar\n/tmp\n1000\n1000\nx", r.Stdout);

        // exit status passes through
        Assert.Equal(7, s.Runc("exec", id, "sh", "-c", "exit 7").ExitCode);

        // --process FILE
        var processJson = Path.Combine(s.Dir, "process.json");
        File.WriteAllText(processJson, new JsonObject
        {
            ["terminal"] = false, ["cwd"] = "/etc", ["env"] = ConfigJson.Arr("PATH=/bin", "WHO=file"),
            ["user"] = new JsonObject { ["uid"] = 123, ["gid"] = 456 },
            ["args"] = ConfigJson.Arr("sh", "-c", "echo $WHO $(pwd) $(id -u):$(id -g)"),
        }.ToJsonString());
        r = s.Ok("exec", "--process", processJson, id);
        Assert.Equal("file /etc 123:456\n", r.Stdout);
    });

    [Fact]
    public void Exec_detach_writes_the_pid_file() => Sandbox.Run(s =>
    {
        var id = s.NewId("execd");
        s.Ok("run", "-d", "-b", s.NewBundle(id, "exec sleep 1000").Dir, id);
        var initPid = (int)s.State(id)["pid"]!;
        var pidFile = Path.Combine(s.Dir, "exec.pid");

        s.Ok("exec", "--detach", "--pid-file", pidFile, id, "sleep", "1000");
        var pid = int.Parse(File.ReadAllText(pidFile).Trim());
        Assert.True(Sandbox.IsAlive(pid));
        Assert.Equal(NsLink(initPid, "pid"), NsLink(pid, "pid"));
        Assert.Equal(NsLink(initPid, "mnt"), NsLink(pid, "mnt"));
        var ps = JsonNode.Parse(s.Ok("ps", "--format", "json", id).Stdout)!.AsArray().Select(p => (int)p!).ToList();
        Assert.Contains(pid, ps);
        Assert.Contains(initPid, ps);

        s.Ok("delete", "--force", id);
        Assert.False(Sandbox.IsAlive(pid), "delete --force must kill exec'd processes too");
    });

    [Fact]
    public void Update_changes_the_cgroup_limits() => Sandbox.Run(s =>
    {
        var id = s.NewId("upd");
        s.Ok("run", "-d", "-b", s.NewBundle(id, "exec sleep 1000", c => c.Resources()["pids"] = new JsonObject { ["limit"] = 100 }).Dir, id);
        Assert.Equal("100", Sandbox.CgroupFile("pids", id, "pids.max"));

        s.Ok("update", "--pids-limit", "7", id);
        Assert.Equal("7", Sandbox.CgroupFile("pids", id, "pids.max"));

        s.Ok("update", "--memory", "64m", id);
        Assert.Equal((64L << 20).ToString(), Sandbox.CgroupFile("memory", id, "memory.limit_in_bytes"));
        Assert.Equal("7", Sandbox.CgroupFile("pids", id, "pids.max"));

        s.Ok("update", "--cpu-shares", "256", id);
        Assert.Equal("256", Sandbox.CgroupFile("cpu", id, "cpu.shares"));
    });

    [Fact]
    public void Events_stats_prints_one_stats_event() => Sandbox.Run(s =>
    {
        var id = s.NewId("ev");
        s.Ok("run", "-d", "-b", s.NewBundle(id, "exec sleep 1000").Dir, id);
        var r = s.Ok("events", "--stats", id);
        var ev = JsonNode.Parse(r.Stdout)!.AsObject();
        Assert.Equal("stats", (string)ev["type"]!);
        Assert.Equal(id, (string)ev["id"]!);
        Assert.True((long)ev["data"]!["pids"]!["current"]! >= 1, r.Stdout);
        Assert.True((long)ev["data"]!["memory"]!["usage"]!["usage"]! > 0, r.Stdout);
    });

    [Fact]
    public void Features_describes_the_runtime() => Sandbox.Run(s =>
    {
        var f = JsonNode.Parse(s.Ok("features").Stdout)!.AsObject();
        Assert.Equal("1.0.0", (string)f["ociVersionMin"]!);
        Assert.StartsWith("1.", (string)f["ociVersionMax"]!);
        var hooks = f["hooks"]!.AsArray().Select(h => (string)h!).ToList();
        Assert.Contains("prestart", hooks);
        Assert.Contains("poststop", hooks);
        var ns = f["linux"]!["namespaces"]!.AsArray().Select(h => (string)h!).ToList();
        Assert.Contains("pid", ns);
        Assert.Contains("network", ns);
        Assert.Contains("CAP_SYS_ADMIN", f["linux"]!["capabilities"]!.AsArray().Select(c => (string)c!));
        Assert.Equal("berth-runc", (string)f["annotations"]!["org.opencontainers.runtime-spec.features.runtime.name"]!);
    });

    [Fact]
    public void Spec_writes_a_config_and_refuses_to_overwrite_it() => Sandbox.Run(s =>
    {
        var dir = s.HostDir("specdir");
        s.Ok("spec", "--bundle", dir);
        var path = Path.Combine(dir, "config.json");
        var first = File.ReadAllText(path);
        Assert.StartsWith("1.", (string)JsonNode.Parse(first)!["ociVersion"]!);

        File.WriteAllText(path, "{\"mine\": true}");
        Sandbox.AssertOneLineError(s.Runc("spec", "--bundle", dir), "exists");
        Assert.Equal("{\"mine\": true}", File.ReadAllText(path));
    });
}
