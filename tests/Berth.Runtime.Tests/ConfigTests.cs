using System.Text.Json.Nodes;
using Berth.Runtime.Tests.Support;

namespace Berth.Runtime.Tests;

/// <summary>config.json settings, checked by what the kernel reports inside the container.</summary>
public class ConfigTests
{
    static string[] Lines(string s) => s.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    static RuncResult RunToCompletion(Sandbox s, string id, Bundle b)
    {
        var r = s.Runc("run", "-b", b.Dir, id);
        Assert.True(r.ExitCode == 0, r.ToString());
        return r;
    }

    [Fact]
    public void Process_settings_are_applied() => Sandbox.Run(s =>
    {
        var id = s.NewId("proc");
        var b = s.NewBundle(id,
            "hostname; echo \"$GREETING\"; pwd; id -u; id -g; id -G; umask; ulimit -n; ulimit -Hn; grep NoNewPrivs /proc/self/status; cat /proc/self/oom_score_adj",
            c =>
            {
                c["hostname"] = "box-1";
                var p = c.Proc();
                p["env"] = ConfigJson.Arr("PATH=/bin", "GREETING=hello world");
                p["cwd"] = "/tmp";
                p["user"] = new JsonObject { ["uid"] = 1000, ["gid"] = 1001, ["additionalGids"] = new JsonArray(2000, 2001), ["umask"] = 23 /* 0027 */ };
                p["rlimits"] = new JsonArray(new JsonObject { ["type"] = "RLIMIT_NOFILE", ["soft"] = 1000, ["hard"] = 1010 });
                p["noNewPrivileges"] = true;
                p["oomScoreAdj"] = 123;
            });
        var r = RunToCompletion(s, id, b);
        Assert.Equal(["box-1", "hello world", "/tmp", "1000", "1001", "1001 2000 2001", "0027", "1000", "1010", "NoNewPrivs:\t1", "123"], Lines(r.Stdout));
    });

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Seccomp_filter_is_applied(bool noNewPrivileges) => Sandbox.Run(s =>
    {
        var id = s.NewId("seccomp");
        // mkdir gets errno 42 (ENOMSG), mkdir with mode 0700 on x86_64's mkdirat path too; everything else allowed.
        var b = s.NewBundle(id, "grep Seccomp: /proc/self/status; mkdir /tmp/a 2>&1; echo mkdir=$?; touch /dev/shm/f && echo touch-ok",
            c =>
            {
                c.Proc()["noNewPrivileges"] = noNewPrivileges;
                c.Linux()["seccomp"] = new JsonObject
                {
                    ["defaultAction"] = "SCMP_ACT_ALLOW",
                    ["architectures"] = new JsonArray("SCMP_ARCH_X86_64"),
                    ["syscalls"] = new JsonArray(new JsonObject
                    {
                        ["names"] = new JsonArray("mkdir", "mkdirat"), ["action"] = "SCMP_ACT_ERRNO", ["errnoRet"] = 42,
                    }),
                };
            });
        var r = RunToCompletion(s, id, b);
        var lines = Lines(r.Stdout);
        Assert.Equal("Seccomp:\t2", lines[0]);
        Assert.Contains("No message of desired type", r.Stdout); // strerror(42)
        Assert.Contains("mkdir=1", r.Stdout);
        Assert.Contains("touch-ok", r.Stdout);
    });

    [Fact]
    public void Signals_start_at_their_defaults() => Sandbox.Run(s =>
    {
        // The runtime (.NET) ignores SIGPIPE; execve would pass that on to the container.
        var id = s.NewId("sig");
        var b = s.NewBundle(id, "cat /proc/self/status");
        var r = RunToCompletion(s, id, b);
        var status = Lines(r.Stdout).ToDictionary(l => l.Split(':')[0], l => l.Split(':', 2)[1].Trim());
        // busybox sh (the bundle's wrapper) ignores SIGQUIT itself, as runc's containers show too;
        // SIGPIPE (bit 12) must not be ignored and nothing may be blocked.
        Assert.Equal(0UL, Convert.ToUInt64(status["SigIgn"], 16) & (1UL << 12));
        Assert.Equal("0000000000000000", status["SigBlk"]);
    });

    [Fact]
    public void Capabilities_match_the_requested_set() => Sandbox.Run(s =>
    {
        var id = s.NewId("caps");
        var b = s.NewBundle(id,
            "grep -E '^Cap(Eff|Prm|Bnd|Inh)|NoNewPrivs' /proc/self/status; hostname other 2>/dev/null && echo sysadmin || echo no-sysadmin",
            c => { c.SetCaps("CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"); c.Proc()["noNewPrivileges"] = false; });
        var r = RunToCompletion(s, id, b);
        // CAP_CHOWN=0, CAP_KILL=5, CAP_NET_BIND_SERVICE=10
        Assert.Equal(["CapInh:\t0000000000000421", "CapPrm:\t0000000000000421", "CapEff:\t0000000000000421", "CapBnd:\t0000000000000421",
            "NoNewPrivs:\t0", "no-sysadmin"], Lines(r.Stdout));
    });

    [Fact]
    public void Filesystem_settings_are_applied() => Sandbox.Run(s =>
    {
        var id = s.NewId("fs");
        var ro = s.HostDir("ro");
        var rw = s.HostDir("rw");
        File.WriteAllText(Path.Combine(ro, "data"), "hello-ro\n");
        var b = s.NewBundle(id, string.Join("\n",
            "touch /newfile 2>/dev/null && echo root-writable || echo root-ro",
            "cat /ro/data",
            "touch /ro/x 2>/dev/null && echo ro-writable || echo ro-ro",
            "echo written > /rw/out && echo rw-ok",
            "grep ' /scratch ' /proc/mounts | grep -o 'size=[0-9a-z]*'",
            "head -c 2000000 /dev/zero > /scratch/big 2>/dev/null && echo scratch-unbounded || echo scratch-full",
            "echo kcore=$(cat /proc/kcore 2>/dev/null | wc -c) keys=$(cat /proc/keys | wc -c) timer_list=$(cat /proc/timer_list | wc -c) version=$(cat /proc/version | wc -c)",
            "echo firmware=$(ls -A /sys/firmware | wc -l)",
            "echo name > /proc/sys/kernel/hostname 2>/dev/null && echo procsys-writable || echo procsys-ro",
            "hostname"),
            c =>
            {
                c["root"]!["readonly"] = true;
                c.AddMount("/ro", "bind", ro, "rbind", "ro");
                c.AddMount("/rw", "bind", rw, "rbind", "rw");
                c.AddMount("/scratch", "tmpfs", "tmpfs", "size=1m", "mode=1777");
                c.Linux()["maskedPaths"]!.AsArray().Add("/proc/version");
            });
        var r = RunToCompletion(s, id, b);
        Assert.Equal(["root-ro", "hello-ro", "ro-ro", "rw-ok", "size=1024k", "scratch-full",
            "kcore=0 keys=0 timer_list=0 version=0", "firmware=0", "procsys-ro", "berth"], Lines(r.Stdout));
        Assert.Equal("written\n", File.ReadAllText(Path.Combine(rw, "out")));
        Assert.False(File.Exists(Path.Combine(ro, "x")));
        Assert.False(File.Exists(Path.Combine(b.Rootfs, "newfile")));
    });

    static readonly string[] NsNames = ["ipc", "uts", "net", "mnt", "cgroup"];

    static string HostNs(string ns) => new FileInfo($"/proc/self/ns/{ns}").LinkTarget!;

    [Fact]
    public void Namespaces_are_new_unless_left_out() => Sandbox.Run(s =>
    {
        var script = "echo $$; for n in ipc uts net mnt cgroup; do readlink /proc/self/ns/$n; done; tail -n +3 /proc/net/dev | cut -d: -f1";
        var id = s.NewId("ns");
        var r = RunToCompletion(s, id, s.NewBundle(id, script));
        var lines = Lines(r.Stdout);
        Assert.Equal("1", lines[0]);
        for (var i = 0; i < NsNames.Length; i++) Assert.NotEqual(HostNs(NsNames[i]), lines[1 + i]);
        Assert.Equal(["lo"], lines.Skip(1 + NsNames.Length).Select(l => l.Trim()));

        // Without a network namespace in the config, the container shares the host's.
        var id2 = s.NewId("nonet");
        r = RunToCompletion(s, id2, s.NewBundle(id2, script, c => c.RemoveNamespace("network")));
        Assert.Equal(HostNs("net"), Lines(r.Stdout)[3]);
        Assert.NotEqual(HostNs("uts"), Lines(r.Stdout)[2]);
    });

    [Fact]
    public void A_namespace_can_be_joined_by_path() => Sandbox.Run(s =>
    {
        var a = s.NewId("nsa");
        s.Ok("run", "-d", "-b", s.NewBundle(a, "exec sleep 1000").Dir, a);
        var pidA = (int)s.State(a)["pid"]!;
        var netA = OperationsTests.NsLink(pidA, "net");
        Assert.NotEqual(HostNs("net"), netA);

        var b = s.NewId("nsb");
        var r = RunToCompletion(s, b, s.NewBundle(b, "readlink /proc/self/ns/net; readlink /proc/self/ns/uts",
            c => c.SetNamespace("network", $"/proc/{pidA}/ns/net")));
        Assert.Equal(netA, Lines(r.Stdout)[0]);
        Assert.NotEqual(OperationsTests.NsLink(pidA, "uts"), Lines(r.Stdout)[1]);
    });

    [Fact]
    public void Sysctls_are_set_in_the_container_network_namespace() => Sandbox.Run(s =>
    {
        var hostForward = File.ReadAllText("/proc/sys/net/ipv4/ip_forward").Trim();
        var id = s.NewId("sysctl");
        var r = RunToCompletion(s, id, s.NewBundle(id, "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/core/somaxconn",
            c => c.Linux()["sysctl"] = new JsonObject { ["net.ipv4.ip_forward"] = hostForward == "1" ? "0" : "1", ["net.core.somaxconn"] = "1234" }));
        Assert.Equal([hostForward == "1" ? "0" : "1", "1234"], Lines(r.Stdout));
        Assert.Equal(hostForward, File.ReadAllText("/proc/sys/net/ipv4/ip_forward").Trim());
    });

    [Fact]
    public void Devices_are_created_and_the_device_cgroup_denies_others() => Sandbox.Run(s =>
    {
        var id = s.NewId("dev");
        var b = s.NewBundle(id, string.Join("\n",
            "stat -c '%F %t:%T %a' /dev/myfuse",
            "(exec 3</dev/myfuse) && echo fuse-open-ok",
            "mknod /dev/blk b 7 0 && echo mknod-ok",
            "head -c 1 /dev/blk 2>&1; echo blk-rc=$?"),
            c =>
            {
                c.SetCaps("CAP_MKNOD", "CAP_CHOWN", "CAP_DAC_OVERRIDE");
                c.Linux()["devices"] = new JsonArray(new JsonObject { ["path"] = "/dev/myfuse", ["type"] = "c", ["major"] = 10, ["minor"] = 229, ["fileMode"] = 416 /* 0640 */ });
            });
        var r = RunToCompletion(s, id, b);
        var lines = Lines(r.Stdout);
        Assert.Equal("character special file a:e5 640", lines[0]);
        Assert.Equal("fuse-open-ok", lines[1]);
        Assert.Equal("mknod-ok", lines[2]);
        Assert.Contains("Operation not permitted", lines[3]);
        Assert.Equal("blk-rc=1", lines[4]);
    });

    [Fact]
    public void Memory_limit_is_enforced_by_the_oom_killer() => Sandbox.Run(s =>
    {
        var id = s.NewId("oom");
        // One hog, no pipe: with `head | tail` the kernel could pick the container's shell as a
        // second victim while the first one's memory (and the pipe's) was still being freed.
        var b = s.NewBundle(id, "tail /dev/zero > /dev/null; echo rc=$?; exec sleep 1000",
            c => c.Resources()["memory"] = new JsonObject { ["limit"] = 32L << 20, ["swap"] = 32L << 20 });
        var create = s.Ok("create", "-b", b.Dir, id);
        Assert.Equal((32L << 20).ToString(), Sandbox.CgroupFile("memory", id, "memory.limit_in_bytes"));
        s.Ok("start", id);
        var text = Sandbox.WaitForText(create.StdoutPath, "rc=");
        Assert.Contains("rc=137", text);
        var oom = Sandbox.CgroupFile("memory", id, "memory.oom_control");
        Assert.Contains("oom_kill 1", oom);
        Assert.True(long.Parse(Sandbox.CgroupFile("memory", id, "memory.max_usage_in_bytes")) <= 32L << 20);
    });

    [Fact]
    public void A_one_mebibyte_memory_limit_still_runs_true() => Sandbox.Run(s =>
    {
        var id = s.NewId("tiny");
        var b = s.NewBundle(id, edit: c =>
        {
            c.SetArgs("true");
            c.Resources()["memory"] = new JsonObject { ["limit"] = 1L << 20 };
        });
        var r = s.Runc("run", "-b", b.Dir, id);
        Assert.True(r.ExitCode == 0, r.ToString());
    });

    [Fact]
    public void Pids_limit_bounds_a_fork_loop() => Sandbox.Run(s =>
    {
        var id = s.NewId("pids");
        var b = s.NewBundle(id, "(for i in $(seq 50); do sleep 30 & done; echo loop-finished) 2>&1; echo done; exec sleep 1000",
            c => c.Resources()["pids"] = new JsonObject { ["limit"] = 20 });
        var create = s.Ok("create", "-b", b.Dir, id);
        s.Ok("start", id);
        var text = Sandbox.WaitForText(create.StdoutPath, "done");
        Assert.Contains("can't fork", text);
        Assert.DoesNotContain("loop-finished", text);
        Assert.Equal("20", Sandbox.CgroupFile("pids", id, "pids.max"));
        Assert.True(int.Parse(Sandbox.CgroupFile("pids", id, "pids.current")) <= 20);
        var events = Sandbox.CgroupFile("pids", id, "pids.events");
        Assert.StartsWith("max ", events);
        Assert.True(int.Parse(events[4..]) > 0, events);
    });

    [Fact]
    public void Cpu_shares_and_quota_reach_the_cgroup() => Sandbox.Run(s =>
    {
        var id = s.NewId("cpu");
        var b = s.NewBundle(id, "exec sleep 1000",
            c => c.Resources()["cpu"] = new JsonObject { ["shares"] = 512, ["quota"] = 50000, ["period"] = 100000 });
        s.Ok("create", "-b", b.Dir, id);
        Assert.Equal("512", Sandbox.CgroupFile("cpu", id, "cpu.shares"));
        Assert.Equal("50000", Sandbox.CgroupFile("cpu", id, "cpu.cfs_quota_us"));
        Assert.Equal("100000", Sandbox.CgroupFile("cpu", id, "cpu.cfs_period_us"));
        var pid = (int)s.State(id)["pid"]!;
        Assert.Contains(pid.ToString(), File.ReadAllLines(Path.Combine(Sandbox.CgroupDir("cpu", id), "cgroup.procs")));
    });
}
