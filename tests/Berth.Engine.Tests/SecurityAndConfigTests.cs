using Berth.Engine.Tests.Support;

namespace Berth.Engine.Tests;

/// <summary>Docker's defaults and the flags that change them, observed from inside the container.</summary>
public class SecurityAndConfigTests
{
    static string Status(EngineSandbox s, string[] opts, string field)
    {
        var r = s.RunC(["--rm", .. opts], "sh", "-c", $"grep '^{field}:' /proc/self/status");
        Assert.True(r.ExitCode == 0, r.ToString());
        return r.Stdout.Split(':', 2)[1].Trim();
    }

    [Fact]
    public void Default_capabilities_seccomp_and_no_new_privs() => EngineSandbox.Run(s =>
    {
        // docker's 14 default capabilities
        Assert.Equal("00000000a80425fb", Status(s, [], "CapBnd"));
        Assert.Equal("00000000a80425fb", Status(s, [], "CapEff"));
        Assert.Equal("2", Status(s, [], "Seccomp"));
        Assert.Equal("0", Status(s, [], "NoNewPrivs"));
        Assert.Equal("0", Status(s, ["--security-opt", "seccomp=unconfined"], "Seccomp"));
        Assert.Equal("1", Status(s, ["--security-opt", "no-new-privileges"], "NoNewPrivs"));
        Assert.Equal("00000000a80425fa", Status(s, ["--cap-drop", "chown"], "CapBnd"));
        Assert.Equal("00000000a82425fb", Status(s, ["--cap-add", "SYS_ADMIN"], "CapBnd"));
        Assert.Equal("0000000000000400", Status(s, ["--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE"], "CapBnd"));
        var all = Status(s, ["--privileged"], "CapBnd");
        Assert.Equal(File.ReadAllLines("/proc/self/status").First(l => l.StartsWith("CapBnd:")).Split(':')[1].Trim(), all);
        Assert.Equal("0", Status(s, ["--privileged"], "Seccomp"));
        // the default profile refuses what docker's refuses (unshare of a user namespace needs CAP_SYS_ADMIN there)
        var r = s.RunC(["--rm"], "unshare", "-U", "true");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Equal(0, s.RunC(["--rm", "--security-opt", "seccomp=unconfined"], "unshare", "-U", "true").ExitCode);
        EngineSandbox.AssertOneLineError(s.RunC(["--rm", "--cap-add", "CAP_NOPE"], "true"), 125, "unknown capability");
        EngineSandbox.AssertOneLineError(s.RunC(["--rm", "--security-opt", "apparmor=x"], "true"), 125, "--security-opt");
    });

    [Fact]
    public void Seccomp_profile_from_a_file() => EngineSandbox.Run(s =>
    {
        var prof = Path.Combine(s.Dir, "prof.json");
        File.WriteAllText(prof, """{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}""");
        var r = s.RunC(["--rm", "--security-opt", "seccomp=" + prof], "mkdir", "/tmp/x");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("Operation not permitted", r.Stderr);
        File.WriteAllText(prof, "{not json");
        EngineSandbox.AssertOneLineError(s.RunC(["--rm", "--security-opt", "seccomp=" + prof], "true"), 125, "seccomp");
        Assert.Empty(s.Ok("ps", "-aq").Lines);
    });

    [Fact]
    public void Masked_paths_and_read_only_root_tmpfs_and_binds() => EngineSandbox.Run(s =>
    {
        // /proc/keys is masked (a /dev/null bind: empty), /proc/sys read-only
        var masked = s.RunC(["--rm"], "sh", "-c", "grep -c ' /proc/keys ' /proc/self/mountinfo; wc -c < /proc/keys; echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo rw || echo ro");
        Assert.Equal(["1", "0", "ro"], masked.Lines.Select(l => l.Trim()).ToArray());
        var ro = s.RunC(["--rm", "--read-only", "--tmpfs", "/scratch:size=1m"], "sh", "-c", "touch /x 2>/dev/null && echo rw || echo ro; touch /scratch/y && echo tmp-ok; grep ' /scratch ' /proc/mounts");
        Assert.Equal("ro", ro.Lines[0]);
        Assert.Equal("tmp-ok", ro.Lines[1]);
        Assert.Contains("tmpfs", ro.Lines[2]);
        Assert.Contains("noexec", ro.Lines[2]);
        var host = Path.Combine(s.Dir, "shared");
        Directory.CreateDirectory(host);
        File.WriteAllText(Path.Combine(host, "in.txt"), "from host");
        var rw = s.RunC(["--rm", "-v", $"{host}:/shared"], "sh", "-c", "cat /shared/in.txt; echo back > /shared/out.txt");
        Assert.Equal("from host", rw.Stdout.Trim());
        Assert.Equal("back\n", File.ReadAllText(Path.Combine(host, "out.txt")));
        var rov = s.RunC(["--rm", "-v", $"{host}:/shared:ro"], "sh", "-c", "echo x > /shared/no.txt");
        Assert.NotEqual(0, rov.ExitCode);
        Assert.False(File.Exists(Path.Combine(host, "no.txt")));
        EngineSandbox.AssertOneLineError(s.RunC(["--rm", "-v", "/no/such/dir:/x"], "true"), 125, "does not exist");
        EngineSandbox.AssertOneLineError(s.RunC(["--rm", "-v", "./relative:/x"], "true"), 125, "invalid volume");
        Assert.Empty(s.Ok("ps", "-aq").Lines);
    });

    [Fact]
    public void Resource_limits_reach_the_cgroup() => EngineSandbox.Run(s =>
    {
        var r = s.RunC(["--rm", "--memory", "64m", "--pids-limit", "50", "--cpus", "0.5"], "sh", "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(["67108864", "50", "50000"], r.Lines.Select(l => l.Split(' ')[0]).ToArray());
    });

    [Fact]
    public void Network_none_has_only_loopback_and_host_shares_the_hosts() => EngineSandbox.Run(s =>
    {
        var none = s.RunC(["--rm", "--network", "none"], "ls", "/sys/class/net");
        Assert.Equal(["lo"], none.Lines);
        // and that loopback is up, as docker's and podman's: a server and its client talk over 127.0.0.1
        var lo = s.RunC(["--rm", "--network", "none"], "sh", "-c", "ip -o link show lo; mkdir /w; echo hi > /w/i; httpd -p 127.0.0.1:8080 -h /w && wget -qO- http://127.0.0.1:8080/i");
        Assert.True(lo.ExitCode == 0, lo.ToString());
        Assert.Contains(",UP", lo.Stdout);
        Assert.EndsWith("hi\n", lo.Stdout);
        // The default is docker's: the bridge network, eth0 (tests/Berth.Network.Tests cover it).
        Assert.Equal(["eth0", "lo"], s.RunC(["--rm"], "ls", "/sys/class/net").Lines);
        // --network host: the host's network namespace (other helpers add and remove veths, so the
        // namespace's identity is compared, not its list of interfaces)
        var hostNs = new FileInfo("/proc/self/ns/net").LinkTarget;
        Assert.Equal(hostNs, s.RunC(["--rm", "--network", "host"], "readlink", "/proc/self/ns/net").Stdout.Trim());
        Assert.NotEqual(hostNs, s.RunC(["--rm"], "readlink", "/proc/self/ns/net").Stdout.Trim());
        EngineSandbox.AssertOneLineError(s.RunC(["--rm", "--network", "nosuch"], "true"), 125, "network nosuch not found");
    });

    [Fact]
    public void Stdin_is_attached_with_i() => EngineSandbox.Run(s =>
    {
        var r = s.BerthIn("line one\nline two\n", "run", "--rm", "-i", "--rootfs", s.Rootfs, "sh", "-c", "cat; echo done");
        Assert.Equal("line one\nline two\ndone\n", r.Stdout);
        var n = s.BerthIn("ignored\n", "run", "--rm", "--rootfs", s.Rootfs, "sh", "-c", "cat; echo done");
        Assert.Equal("done\n", n.Stdout);
    });

    [Fact]
    public void Tty_gives_the_container_a_terminal() => EngineSandbox.Run(s =>
    {
        var r = s.RunC(["--rm", "-t"], "sh", "-c", "tty; echo $TERM");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.StartsWith("/dev/pts/", r.Lines[0]);
        Assert.Equal("xterm", r.Lines[1].TrimEnd('\r'));
    });

    [Fact]
    public void Log_rotation_with_max_size_and_max_file() => EngineSandbox.Run(s =>
    {
        s.RunC(["--name", "rot", "--log-opt", "max-size=1k", "--log-opt", "max-file=3"], "sh", "-c", "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done");
        var log = (string)s.Inspect("rot")["LogPath"]!;
        Assert.True(File.Exists(log + ".1") && File.Exists(log + ".2") && !File.Exists(log + ".3"));
        foreach (var f in new[] { log, log + ".1", log + ".2" }) Assert.InRange(new FileInfo(f).Length, 1, 1024);
        var lines = s.Ok("logs", "rot").Lines;
        Assert.Equal("line-199", lines[^1]);
        Assert.True(lines.Length < 200);
        Assert.Equal(["line-198", "line-199"], s.Ok("logs", "--tail", "2", "rot").Lines);
    });
}
