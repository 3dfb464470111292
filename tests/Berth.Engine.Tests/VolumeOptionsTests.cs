using System.Text.Json.Nodes;
using Berth.Engine.Tests.Support;

namespace Berth.Engine.Tests;

/// <summary>Volumes with the local driver's options (`volume create -o type=… -o device=… -o o=…`):
/// mounted at the volume's _data while at least one container uses it, unmounted when the last one
/// stops (stop, kill, rm -f, a failed start), counted right with two users, honoured after a reboot;
/// /proc/self/mountinfo is clean after each scenario.</summary>
public class VolumeOptionsTests
{
    /// <summary>Mount points of the host's namespace under <paramref name="path"/>, with their filesystem type.</summary>
    static List<string> MountsAt(string path) =>
        File.ReadLines("/proc/self/mountinfo").Select(l => l.Split(' ')).Where(f => f.Length > 4 && f[4] == path)
            .Select(f => f[Array.IndexOf(f, "-") + 1]).ToList();

    static (int ExitCode, string Stdout) Tool(string file, params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output + err.Result);
    }

    static string Data(EngineSandbox s, string vol) => Path.Combine(s.Root, "volumes", vol, "_data");

    static void WaitExited(EngineSandbox s, string name) =>
        EngineSandbox.WaitUntil(() => s.Ok("inspect", "--format", "{{.State.Status}}", name).Stdout.Trim() == "exited", name + " exited");

    [Fact]
    public void Mount_options_split_as_mount_8_does()
    {
        var (flags, prop, data) = Berth.Engine.Volumes.VolumeMounts.ParseOptions("bind,ro,rprivate,size=1m,nosuid,uid=1000");
        Assert.Equal(0x1000UL | 1UL | 2UL, flags); // MS_BIND | MS_RDONLY | MS_NOSUID
        Assert.Equal((1UL << 18) | 0x4000UL, prop); // MS_PRIVATE | MS_REC
        Assert.Equal("size=1m,uid=1000", data);
        Assert.Equal(0UL, Berth.Engine.Volumes.VolumeMounts.ParseOptions("ro,rw,defaults").Flags);
        Berth.Engine.Volumes.VolumeStore.Validate("v", "local", new Dictionary<string, string> { ["type"] = "nfs", ["device"] = ":/x", ["o"] = "addr=1.2.3.4" });
        Berth.Engine.Volumes.VolumeStore.Validate("v", null, new Dictionary<string, string> { ["size"] = "0" });
        var e = Assert.Throws<Berth.Engine.EngineException>(() => Berth.Engine.Volumes.VolumeStore.Validate("v", null, new Dictionary<string, string> { ["o"] = "x", ["type"] = "tmpfs" }));
        Assert.Equal("create v: missing required option: \"device\"", e.Message);
    }

    [Fact]
    public void Tmpfs_volume_is_mounted_while_used_and_counted_across_two_containers() => EngineSandbox.Run(s =>
    {
        Assert.Equal("vt\n", s.Ok("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=64m,uid=1000", "vt").Stdout);
        var info = JsonNode.Parse(s.Ok("volume", "inspect", "vt").Stdout)!.AsArray()[0]!;
        Assert.Equal("""{"device":"tmpfs","o":"size=64m,uid=1000","type":"tmpfs"}""", info["Options"]!.ToJsonString());
        var data = Data(s, "vt");
        Assert.Empty(MountsAt(data)); // nobody uses it yet

        s.RunDetached(["--name", "c1", "-v", "vt:/d"], "sleep", "1000");
        Assert.Equal(["tmpfs"], MountsAt(data));
        s.RunDetached(["--name", "c2", "-v", "vt:/d"], "sleep", "1000");
        Assert.Equal(["tmpfs"], MountsAt(data)); // still one mount, shared
        s.Ok("exec", "c1", "sh", "-c", "echo x > /d/x");
        Assert.Equal("x\n", s.Ok("exec", "c2", "cat", "/d/x").Stdout);
        Assert.Equal("1000 1777\n", s.Ok("exec", "c2", "stat", "-c", "%u %a", "/d").Stdout);
        Assert.Contains("size=65536k", s.Ok("exec", "c2", "grep", " /d ", "/proc/self/mountinfo").Stdout);

        // the first user stops: the second keeps the mount (and the data)
        s.Ok("stop", "-t", "0", "c1");
        Assert.Equal(["tmpfs"], MountsAt(data));
        Assert.Equal("x\n", s.Ok("exec", "c2", "cat", "/d/x").Stdout);
        // the last user is killed: the monitor's exit path unmounts
        s.Ok("kill", "c2");
        WaitExited(s, "c2");
        Assert.Empty(MountsAt(data));
        Assert.Empty(Directory.EnumerateFileSystemEntries(data));
        // started again: a fresh tmpfs, as dockerd mounts it again
        s.Ok("start", "c2");
        Assert.Equal(["tmpfs"], MountsAt(data));
        Assert.Equal("", s.Ok("exec", "c2", "ls", "/d").Stdout);
        // rm -f of a running user, then of a stopped one
        s.Ok("rm", "-f", "c2");
        Assert.Empty(MountsAt(data));
        s.Ok("rm", "c1");
        // a --rm container's exit
        Assert.Equal("tmpfs\n", s.Ok("run", "--rm", "-v", "vt:/d", "--rootfs", s.Rootfs, "sh", "-c", "grep ' /d ' /proc/self/mountinfo | cut -d' ' -f9").Stdout);
        Assert.Empty(MountsAt(data));
        s.Ok("volume", "rm", "vt");
        Assert.False(Directory.Exists(Path.Combine(s.Root, "volumes", "vt")));
    });

    [Fact]
    public void Bind_volume_of_a_host_directory_and_mount_flag_options() => EngineSandbox.Run(s =>
    {
        var host = Path.Combine(s.Dir, "hostdir");
        Directory.CreateDirectory(host);
        File.WriteAllText(Path.Combine(host, "f"), "hi\n");
        s.Ok("volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", $"device={host}", "vb");
        Assert.Equal("hi\n", s.Ok("run", "--rm", "-v", "vb:/d", "--rootfs", s.Rootfs, "sh", "-c", "cat /d/f; echo new > /d/g").Stdout);
        Assert.Equal("new\n", File.ReadAllText(Path.Combine(host, "g")));
        Assert.Empty(MountsAt(Data(s, "vb")));
        // removing the volume never touches the host directory
        s.Ok("volume", "rm", "vb");
        Assert.Equal(["f", "g"], Directory.EnumerateFiles(host).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        // --mount with volume-driver/volume-opt creates the volume with those options
        var r = s.Ok("run", "--rm", "--mount", "type=volume,src=mv,dst=/d,volume-driver=local,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-opt=o=size=2m",
            "--rootfs", s.Rootfs, "sh", "-c", "grep ' /d ' /proc/self/mountinfo");
        Assert.Contains("tmpfs tmpfs rw,size=2048k", r.Stdout);
        Assert.Equal("""{"device":"tmpfs","o":"size=2m","type":"tmpfs"}""", s.Ok("volume", "inspect", "--format", "{{json .Options}}", "mv").Stdout.Trim());
        Assert.Empty(MountsAt(Data(s, "mv")));
        // --mount type=tmpfs with size and mode, as docker
        var t = s.Ok("run", "--rm", "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770", "--rootfs", s.Rootfs, "sh", "-c", "grep ' /t ' /proc/self/mountinfo; stat -c %a /t").Lines;
        Assert.Contains("size=1024k,mode=1770", t[0]);
        Assert.Equal("1770", t[1]);
        s.Ok("volume", "rm", "mv");
    });

    [Fact]
    public void Bad_options_are_dockerd_s_errors_and_leave_nothing() => EngineSandbox.Run(s =>
    {
        EngineSandbox.AssertOneLineError(s.Berth("volume", "create", "-o", "foo=bar", "v0"), 125, "create v0: invalid option: \"foo\"");
        EngineSandbox.AssertOneLineError(s.Berth("volume", "create", "-o", "type=tmpfs", "v0"), 125, "create v0: missing required option: \"device\"");
        EngineSandbox.AssertOneLineError(s.Berth("volume", "create", "-o", "o=size=1m", "v0"), 125, "create v0: missing required option: \"device\"");
        EngineSandbox.AssertOneLineError(s.Berth("volume", "create", "-o", "size=1m", "v0"), 125, "create v0: quota size requested but no quota support");
        EngineSandbox.AssertOneLineError(s.Berth("volume", "create", "-d", "nosuch", "v0"), 125, "create v0: error looking up volume plugin nosuch: plugin \"nosuch\" not found");
        EngineSandbox.AssertOneLineError(s.RunC(["--rm", "--mount", "type=volume,src=v1,dst=/d,volume-opt=foo=bar"], "true"), 125, "create v1: invalid option: \"foo\"");
        Assert.Empty(s.Ok("volume", "ls", "-q").Lines);
        Assert.Empty(s.Ok("ps", "-aq").Lines);

        // a device that does not exist: the start fails with dockerd's words, no mount and no user stay
        s.Ok("volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device=/nonexistent-berth-dir", "vb");
        var r = s.RunC(["--name", "bad", "-v", "vb:/d"], "ls", "/d");
        Assert.Equal(127, r.ExitCode);
        Assert.Contains($"error while mounting volume '{Data(s, "vb")}': failed to mount local volume: mount /nonexistent-berth-dir:{Data(s, "vb")}, flags: 0x1000: no such file or directory", r.Stderr);
        Assert.Empty(MountsAt(Data(s, "vb")));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(s.RunRoot, "volume-users", "vb")));
        s.Ok("rm", "bad");
        s.Ok("volume", "rm", "vb");
    });

    [Fact]
    public void Ext4_volume_on_a_loop_device_keeps_its_data_between_users() => EngineSandbox.Run(s =>
    {
        var img = Path.Combine(s.Dir, "disk.img");
        using (var f = File.Create(img)) f.SetLength(16 << 20);
        Assert.Equal(0, Tool("mkfs.ext4", "-q", "-F", img).ExitCode);
        var loop = Tool("losetup", "-f", "--show", img);
        Assert.True(loop.ExitCode == 0, loop.Stdout);
        var dev = loop.Stdout.Trim();
        try
        {
            s.Ok("volume", "create", "-o", "type=ext4", "-o", $"device={dev}", "-o", "o=noatime", "vx");
            s.Ok("run", "--rm", "-v", "vx:/d", "--rootfs", s.Rootfs, "sh", "-c", "echo persisted > /d/file");
            Assert.Empty(MountsAt(Data(s, "vx")));
            var r = s.Ok("run", "--rm", "-v", "vx:/d", "--rootfs", s.Rootfs, "sh", "-c", "cat /d/file; grep ' /d ' /proc/self/mountinfo");
            Assert.Equal("persisted", r.Lines[0]);
            Assert.Contains("ext4", r.Lines[1]);
            Assert.Contains("noatime", r.Lines[1]);
            Assert.Empty(MountsAt(Data(s, "vx")));
            s.Ok("volume", "rm", "vx");
        }
        finally
        {
            foreach (var mp in File.ReadLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4]).Where(m => m.StartsWith(s.Dir, StringComparison.Ordinal)).ToList())
                Tool("umount", "-l", mp);
            Tool("losetup", "-d", dev);
        }
    });

    [Fact]
    public void Options_are_honoured_after_a_reboot_and_a_stale_mount_is_replaced() => EngineSandbox.Run(s =>
    {
        s.Ok("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=8m", "vt");
        s.RunDetached(["--name", "alw", "--restart", "always", "-v", "vt:/d"], "sleep", "1000");
        s.Ok("exec", "alw", "sh", "-c", "echo before > /d/x");
        var data = Data(s, "vt");
        // power loss: processes and /run go; the next command finds the monitor gone and releases the mount
        s.SimulateReboot();
        Assert.Empty(MountsAt(data));
        // a mount left behind with no user on record (say, by a monitor killed before a reboot of /run only)
        Assert.Equal(0, Tool("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", data).ExitCode);
        File.WriteAllText(Path.Combine(data, "stale"), "");
        s.Ok("system", "boot");
        EngineSandbox.WaitUntil(() => s.Ok("inspect", "--format", "{{.State.Running}}", "alw").Stdout.Trim() == "true", "alw running");
        Assert.Equal(["tmpfs"], MountsAt(data)); // one mount: the stale one was replaced
        Assert.Equal("", s.Ok("exec", "alw", "ls", "/d").Stdout);
        Assert.Contains("size=8192k", s.Ok("exec", "alw", "grep", " /d ", "/proc/self/mountinfo").Stdout);
        s.Ok("rm", "-f", "alw");
        Assert.Empty(MountsAt(data));
    });
}
