using Berth.Engine.Tests.Support;

namespace Berth.Engine.Tests;

/// <summary>--mount, --ulimit, --device and the resource flags, observed from inside the container
/// and in its cgroup; bad values refused with docker's one-line messages, nothing left behind.</summary>
public class ResourceAndMountTests
{
    static string[] Lines(BerthResult r)
    {
        Assert.True(r.ExitCode == 0, r.ToString());
        return r.Lines.Select(l => l.Trim()).ToArray();
    }

    [Fact]
    public void Mount_flag_bind_volume_and_tmpfs() => EngineSandbox.Run(s =>
    {
        var host = Path.Combine(s.Dir, "host");
        Directory.CreateDirectory(host);
        File.WriteAllText(Path.Combine(host, "in.txt"), "hello\n");
        var r = Lines(s.RunC(["--rm",
            "--mount", $"type=bind,source={host},target=/b,readonly",
            "--mount", "type=volume,source=data,target=/v",
            "--mount", "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770"], "sh", "-c",
            "cat /b/in.txt; touch /b/x 2>/dev/null && echo rw || echo ro; echo kept > /v/f; grep ' /t ' /proc/mounts; stat -c %a /t"));
        Assert.Equal("hello", r[0]);
        Assert.Equal("ro", r[1]);
        Assert.Contains("size=1024k", r[2]);
        Assert.Contains("mode=1770", r[2]);
        Assert.Equal("1770", r[3]);
        // the named volume persists, and a second container sees what the first wrote
        Assert.Equal("kept", s.RunC(["--rm", "--mount", "type=volume,src=data,dst=/v,ro"], "cat", "/v/f").Stdout.Trim());
        Assert.Contains("data", s.Ok("volume", "ls", "-q").Lines);
        // a bind with propagation: the runtime is asked for an rslave bind
        var id = s.RunDetached(["--mount", $"type=bind,src={host},dst=/b,bind-propagation=rslave"], "true");
        var spec = File.ReadAllText(Path.Combine(s.Root, "containers", id, "bundle", "config.json"));
        Assert.Matches("\"destination\": *\"/b\"[^}]*\"rslave\"", spec);
    });

    [Fact]
    public void Mount_flag_errors_are_docker_s() => EngineSandbox.Run(s =>
    {
        void Bad(string mount, string msg) => EngineSandbox.AssertOneLineError(s.RunC(["--rm", "--mount", mount], "true"), 125, msg);
        Bad("type=bind,target=/x", "field Source must not be empty");
        Bad("type=bind,source=/no/such,target=/x", "bind source path does not exist: /no/such");
        Bad("source=/tmp,target=/x", "type is required");
        Bad("type=volume,source=v", "target is required");
        Bad("type=bind,source=/tmp,target=/x,volume-nocopy", "cannot mix 'volume-*' options with mount type 'bind'");
        Bad("type=volume,target=/x,tmpfs-size=1m", "cannot mix 'tmpfs-*' options with mount type 'volume'");
        Bad("type=tmpfs,source=/tmp,target=/x", "field Source must not be specified");
        Bad("type=tmpfs,target=/x,tmpfs-mode=99", "invalid value for tmpfs-mode: 99");
        Bad("type=bind,src=/tmp,target=/x,bogus=1", "unexpected key 'bogus' in 'bogus=1'");
        Bad("type=bind,src=/tmp,target=/x,junk", "invalid field 'junk' must be a key=value pair");
        Bad("type=nfs,target=/x", "mount type unknown");
        Bad("type=tmpfs,target=relative", "mount path must be absolute");
        EngineSandbox.AssertOneLineError(s.RunC(["--rm", "--mount", "type=tmpfs,target=/x", "--tmpfs", "/x"], "true"), 125, "Duplicate mount point: /x");
        Assert.Empty(s.Ok("ps", "-aq").Lines);
        Assert.Empty(s.Ok("volume", "ls", "-q").Lines);
    });

    [Fact]
    public void Resource_flags_reach_the_cgroup_and_the_process() => EngineSandbox.Run(s =>
    {
        var cpus = File.ReadAllText("/sys/devices/system/cpu/online").Trim();
        var r = Lines(s.RunC(["--rm", "--memory", "64m", "--memory-swap", "128m", "--memory-reservation", "32m", "--cpu-shares", "512",
            "--cpuset-cpus", "0", "--cpuset-mems", "0", "--ulimit", "nofile=1024:2048", "--oom-score-adj", "300", "--shm-size", "8m",
            "--group-add", "extra", "--group-add", "4242", "--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shmmax=1234567",
            "--domainname", "example.org"], "sh", "-c",
            "cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes /sys/fs/cgroup/memory/memory.soft_limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares" +
            " /sys/fs/cgroup/cpuset/cpuset.cpus /sys/fs/cgroup/cpuset/cpuset.mems; ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj;" +
            " grep ' /dev/shm ' /proc/mounts; id -G; cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax /proc/sys/kernel/domainname"));
        Assert.Equal(["134217728", "33554432", "512", "0", "0", "1024", "2048", "300"], r[..8]);
        Assert.Contains("size=8192k", r[8]);
        Assert.Contains("2000", r[9].Split(' '));
        Assert.Contains("4242", r[9].Split(' '));
        Assert.Equal(["1", "1234567", "example.org"], r[10..]);
        Assert.NotEqual("", cpus);
    });

    [Fact]
    public void Device_flag_adds_the_node_and_the_cgroup_rule() => EngineSandbox.Run(s =>
    {
        // /dev/loop-control is not in the default set: absent and refused without --device
        var without = s.RunC(["--rm"], "sh", "-c", "ls /dev/loop-control");
        Assert.NotEqual(0, without.ExitCode);
        var r = Lines(s.RunC(["--rm", "--device", "/dev/loop-control:/dev/lc:rw"], "sh", "-c",
            "stat -c '%t:%T %F' /dev/lc; grep 'c 10:237' /sys/fs/cgroup/devices/devices.list"));
        Assert.Equal("a:ed character special file", r[0]);
        Assert.StartsWith("c 10:237 rw", r[1]);
    });

    [Fact]
    public void Bad_resource_values_are_one_line_errors() => EngineSandbox.Run(s =>
    {
        void Bad(string[] opts, string msg) => EngineSandbox.AssertOneLineError(s.RunC(["--rm", .. opts], "true"), 125, msg);
        Bad(["--ulimit", "nofile"], "invalid ulimit argument: nofile");
        Bad(["--ulimit", "bogus=1"], "invalid ulimit type: bogus");
        Bad(["--ulimit", "nofile=10:5"], "ulimit soft limit must be less than or equal to hard limit: 10 > 5");
        Bad(["--device", "/dev/null:/dev/x:rwq"], "bad mode specified: rwq");
        Bad(["--device", "/dev/nope"], "error gathering device information while adding custom device \"/dev/nope\"");
        Bad(["--device", "/etc/passwd"], "not a device node");
        Bad(["--memory-swap", "64m"], "You should always set the Memory limit when using Memoryswap limit");
        Bad(["--memory", "64m", "--memory-swap", "32m"], "Minimum memoryswap limit should be larger than memory limit");
        Bad(["--memory", "16m", "--memory-reservation", "32m"], "Minimum memory limit can not be less than memory reservation limit");
        Bad(["--memory-reservation", "1k"], "Minimum memory reservation allowed is 6MB");
        Bad(["--shm-size", "lots"], "invalid argument \"lots\" for \"--shm-size\" flag");
        Bad(["--oom-score-adj", "5000"], "Invalid value 5000, range for oom score adj is [-1000, 1000]");
        Bad(["--cpuset-cpus", "a-b"], "Invalid value a-b for cpuset cpus");
        Bad(["--cpuset-cpus", "999"], "Requested CPUs are not available - requested 999");
        Bad(["--sysctl", "kernel.panic=1"], "sysctl 'kernel.panic' is not allowed");
        Bad(["--sysctl", "net.ipv4.ip_forward=1", "--network", "host"], "not allowed in host network namespace");
        Bad(["--group-add", "nosuchgroup"], "unable to find group nosuchgroup");
        Assert.Empty(s.Ok("ps", "-aq").Lines);
    });
}
