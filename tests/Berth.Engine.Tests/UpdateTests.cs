using Berth.Engine.Tests.Support;

namespace Berth.Engine.Tests;

/// <summary>`berth update`: a running (or paused) container's limits change in its cgroup at once, a
/// stopped one's at its next start, inspect shows them, and a stop + start keeps them; a bad request
/// changes nothing at all (cgroup, record and bundle as before).</summary>
public class UpdateTests
{
    static readonly bool V2 = File.Exists("/sys/fs/cgroup/cgroup.controllers");

    /// <summary>A file of the container's cgroup, read on the host: the v1 controller's hierarchy, or
    /// the unified one on a pure v2 host.</summary>
    static string Cg(string id, string controller, string v1File, string v2File)
    {
        string dir;
        if (V2)
        {
            var path = File.ReadAllLines("/proc/self/cgroup").Single(l => l.StartsWith("0::", StringComparison.Ordinal))[3..].TrimEnd('/');
            dir = $"/sys/fs/cgroup{path}/berth/{id}";
            return File.ReadAllText(Path.Combine(dir, v2File)).Trim();
        }
        dir = EngineSandbox.CgroupDirs(id).First(d => d.StartsWith($"/sys/fs/cgroup/{controller}/", StringComparison.Ordinal));
        return File.ReadAllText(Path.Combine(dir, v1File)).Trim();
    }

    static string Memory(string id) => Cg(id, "memory", "memory.limit_in_bytes", "memory.max");
    static string Pids(string id) => Cg(id, "pids", "pids.max", "pids.max");
    static string Shares(string id) => Cg(id, "cpu", "cpu.shares", "cpu.weight");
    /// <summary>"QUOTA PERIOD" as v2's cpu.max writes it (v1: -1 for no quota becomes "max").</summary>
    static string CpuMax(string id)
    {
        if (V2) return Cg(id, "cpu", "", "cpu.max");
        var quota = Cg(id, "cpu", "cpu.cfs_quota_us", "");
        return (quota == "-1" ? "max" : quota) + " " + Cg(id, "cpu", "cpu.cfs_period_us", "");
    }

    static string HostConfig(EngineSandbox s, string name, params string[] fields)
    {
        var hc = s.Inspect(name)["HostConfig"]!.AsObject();
        return string.Join(' ', fields.Select(f => hc[f]?.ToJsonString() ?? "null"));
    }

    const string Fields = "Memory MemorySwap MemoryReservation NanoCpus CpuShares CpuPeriod CpuQuota CpusetCpus PidsLimit";

    [Fact]
    public void Update_changes_a_running_containers_cgroup_and_a_restart_keeps_it() => EngineSandbox.Run(s =>
    {
        var id = s.RunDetached(["--name", "web"], "sleep", "1000");
        Assert.Equal("max", Pids(id));
        var r = s.Ok("update", "--memory", "96m", "--memory-swap", "192m", "--memory-reservation", "32m", "--cpu-shares", "300",
            "--cpus", "0.5", "--pids-limit", "40", "--cpuset-cpus", "0", "web");
        Assert.Equal("web\n", r.Stdout);
        void Limits()
        {
            Assert.Equal("100663296", Memory(id));
            Assert.Equal("40", Pids(id));
            Assert.Equal("50000 100000", CpuMax(id));
            Assert.Equal(V2 ? "12" : "300", Shares(id)); // v2: runc's shares → weight conversion
            Assert.Equal("0", Cg(id, "cpuset", "cpuset.cpus", "cpuset.cpus"));
            if (!V2)
            {
                Assert.Equal("201326592", Cg(id, "memory", "memory.memsw.limit_in_bytes", ""));
                Assert.Equal("33554432", Cg(id, "memory", "memory.soft_limit_in_bytes", ""));
            }
        }
        Limits();
        Assert.Equal("100663296 201326592 33554432 500000000 300 0 0 \"0\" 40", HostConfig(s, "web", Fields.Split(' ')));
        // stop + start: the new container cgroup gets the updated limits from the bundle
        s.Ok("stop", "-t", "0", "web");
        s.Ok("start", "web");
        Limits();
        // restart as well, and the limits can move again: no pids limit any more, fewer CPUs
        s.Ok("restart", "-t", "0", "web");
        Limits();
        Assert.Equal("web\n", s.Ok("update", "--pids-limit", "-1", "--cpus", "1.5", "web").Stdout);
        Assert.Equal("max", Pids(id));
        Assert.Equal("150000 100000", CpuMax(id));
        Assert.Equal("0 1500000000", HostConfig(s, "web", "PidsLimit", "NanoCpus"));
    });

    [Fact]
    public void Update_of_a_stopped_or_paused_container() => EngineSandbox.Run(s =>
    {
        // created, never started: the limits wait in the record and the bundle for the start
        var id = s.Berth(["create", "--name", "made", "--rootfs", s.Rootfs, "sleep", "1000"]).Stdout.Trim();
        Assert.Equal("made\n", s.Ok("update", "--memory", "48m", "--memory-swap", "96m", "--pids-limit", "20", "--cpu-period", "50000", "--cpu-quota", "25000", "made").Stdout);
        Assert.Equal("50331648 100663296 0 0 0 50000 25000 \"\" 20", HostConfig(s, "made", Fields.Split(' ')));
        s.Ok("start", "made");
        Assert.Equal("50331648", Memory(id));
        Assert.Equal("20", Pids(id));
        Assert.Equal("25000 50000", CpuMax(id));
        // paused: the cgroup changes while frozen, and the container runs on with it
        s.Ok("pause", "made");
        Assert.Equal("made\n", s.Ok("update", "--pids-limit", "30", "made").Stdout);
        Assert.Equal("30", Pids(id));
        s.Ok("unpause", "made");
        Assert.Equal("30", Pids(id));
        // --cpus cannot join a quota set already (dockerd's conflict), the restart policy can change
        EngineSandbox.AssertOneLineError(s.Berth("update", "--cpus", "1", "made"), 1, "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set");
        s.Ok("update", "--restart", "on-failure:3", "made");
        Assert.Equal("{\"Name\":\"on-failure\",\"MaximumRetryCount\":3}", HostConfig(s, "made", "RestartPolicy"));
    });

    [Fact]
    public void A_bad_update_changes_nothing() => EngineSandbox.Run(s =>
    {
        var id = s.RunDetached(["--name", "box", "--memory", "64m"], "sleep", "1000");
        // as dockerd: memory+swap defaults to twice the memory
        var before = HostConfig(s, "box", Fields.Split(' '));
        Assert.Equal("67108864 134217728 0 0 0 0 0 \"\" null", before);
        var spec = File.ReadAllText(Path.Combine(s.Root, "containers", id, "bundle", "config.json"));
        void Bad(string contains, params string[] args) => EngineSandbox.AssertOneLineError(s.Berth(["update", .. args]), 1, contains);
        Bad("Minimum memory limit allowed is 6MB", "--memory", "1k", "--pids-limit", "5", "box");
        Bad("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time", "--pids-limit", "5", "--memory", "200m", "box");
        Bad("Conflicting options: Nano CPUs and CPU Quota cannot both be set", "--cpus", "0.5", "--cpu-quota", "50000", "box");
        Bad("Requested CPUs are not available - requested 99", "--pids-limit", "5", "--cpus", "0.5", "--cpuset-cpus", "99", "box");
        Bad("Minimum memoryswap limit should be larger than memory limit", "--pids-limit", "5", "--memory-swap", "16m", "box");
        Bad("Minimum memory limit can not be less than memory reservation limit", "--memory", "10m", "--memory-reservation", "20m", "box");
        Bad("CPU cfs quota can not be less than 1ms", "--cpu-quota", "500", "box");
        Bad("The minimum allowed cpu-shares is 2", "--cpu-shares", "1", "--pids-limit", "5", "box");
        Bad("invalid restart policy 'sometimes'", "--restart", "sometimes", "--pids-limit", "5", "box");
        Bad("no such container: nosuch", "--pids-limit", "5", "nosuch");
        Bad("you must provide one or more flags when using this command", "box");
        // nothing half-applied: cgroup, record and bundle as before
        Assert.Equal("67108864", Memory(id));
        Assert.Equal("max", Pids(id));
        Assert.Equal("max 100000", CpuMax(id));
        Assert.Equal(before, HostConfig(s, "box", Fields.Split(' ')));
        Assert.Equal("{\"Name\":\"no\",\"MaximumRetryCount\":0}", HostConfig(s, "box", "RestartPolicy"));
        Assert.Equal(spec, File.ReadAllText(Path.Combine(s.Root, "containers", id, "bundle", "config.json")));
        // several containers: each success echoed, the failure reported, exit 1
        var r = s.Berth("update", "--pids-limit", "7", "box", "nosuch", "box");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("box\nbox\n", r.Stdout);
        Assert.Contains("no such container: nosuch", r.Stderr);
        Assert.Equal("7", Pids(id));
    });

    [Fact]
    public void A_runtime_failure_puts_a_never_set_cpuset_back()
    {
        if (V2 || Environment.ProcessorCount < 2) return; // v1 cpusets of two CPUs or more: what this checks
        EngineSandbox.Run(s =>
        {
            // 32 MiB in the container's shm (no swap here: it cannot be reclaimed), then a memory limit
            // below it: the runtime writes the cpuset first, then fails on memory.limit_in_bytes
            var id = s.RunDetached(["--name", "full"], "sh", "-c", "head -c 33554432 /dev/zero > /dev/shm/fill; echo filled > /tmp/filled; sleep 1000");
            EngineSandbox.WaitUntil(() => s.Berth("exec", "full", "cat", "/tmp/filled").Stdout.Contains("filled"), "the fill");
            var cpus = Cg(id, "cpuset", "cpuset.cpus", "");
            Assert.NotEqual("0", cpus);
            var before = HostConfig(s, "full", Fields.Split(' '));
            var r = s.Berth("update", "--cpuset-cpus", "0", "--memory", "8m", "--memory-swap", "8m", "full");
            Assert.Equal(1, r.ExitCode);
            Assert.Contains("Cannot update container", r.Stderr);
            // the cpuset it had from its parent, not the "0" of the failed request
            Assert.Equal(cpus, Cg(id, "cpuset", "cpuset.cpus", ""));
            Assert.Equal(before, HostConfig(s, "full", Fields.Split(' ')));
        });
    }

    [Fact]
    public void Realtime_budget_is_kept_for_the_next_start() => EngineSandbox.Run(s =>
    {
        s.Ok("create", "--name", "rt", "--rootfs", s.Rootfs, "sleep", "1000");
        // as dockerd 20.10: kept in HostConfig and the bundle for the next start (not applied live, and the
        // two not compared on update)
        var id = s.Inspect("rt")["Id"]!.GetValue<string>();
        s.Ok("update", "--cpu-rt-period", "1000000", "--cpu-rt-runtime", "2000000", "rt");
        Assert.Equal("1000000 2000000", HostConfig(s, "rt", "CpuRealtimePeriod", "CpuRealtimeRuntime"));
        var cpu = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(s.Root, "containers", id, "bundle", "config.json")))!["linux"]!["resources"]!["cpu"]!;
        Assert.Equal(1000000, cpu["realtimePeriod"]!.GetValue<long>());
        Assert.Equal(2000000, cpu["realtimeRuntime"]!.GetValue<long>());
        EngineSandbox.AssertOneLineError(s.Berth("update", "--cpu-rt-runtime", "x", "rt"), 125, "invalid argument \"x\" for \"--cpu-rt-runtime\" flag");
        s.Ok("rm", "rt");
    });
}
