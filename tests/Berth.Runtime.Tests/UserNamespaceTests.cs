using System.Diagnostics;
using System.Text.Json.Nodes;
using Berth.Runtime.Tests.Support;

namespace Berth.Runtime.Tests;

/// <summary>User namespaces (native/nsexec.c clones init into them): what the kernel reports inside,
/// what the host sees, and the refusals of bad mappings.</summary>
public class UserNamespaceTests
{
    static string[] Lines(string s) => s.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    static JsonArray Map(uint containerId, uint hostId, uint size) =>
        new(new JsonObject { ["containerID"] = containerId, ["hostID"] = hostId, ["size"] = size });

    /// <summary>A bundle with a new user namespace mapping container 0..size-1 to host hostId..; the
    /// rootfs (this test's own copy) is chowned to hostId so that the container's root owns it.</summary>
    static Bundle UserNsBundle(Sandbox s, string id, string script, uint hostId, Action<JsonObject>? edit = null)
    {
        var b = s.NewBundle(id, script, c =>
        {
            c.SetNamespace("user", null);
            c.Linux()["uidMappings"] = Map(0, hostId, 65536);
            c.Linux()["gidMappings"] = Map(0, hostId, 65536);
            c["root"]!["readonly"] = false;
            edit?.Invoke(c);
        });
        if (hostId != 0) Chown(b.Rootfs, hostId);
        return b;
    }

    static void Chown(string path, uint id)
    {
        using var p = Process.Start("chown", ["-hR", $"{id}:{id}", path])!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }

    static uint HostOwner(string path)
    {
        using var p = Process.Start(new ProcessStartInfo("stat", ["-c", "%u:%g", path]) { RedirectStandardOutput = true })!;
        var text = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        var parts = text.Split(':');
        Assert.Equal(parts[0], parts[1]);
        return uint.Parse(parts[0]);
    }

    [Fact]
    public void Mapped_root_is_root_inside_and_100000_on_the_host() => Sandbox.Run(s =>
    {
        var id = s.NewId("userns");
        var b = UserNsBundle(s, id,
            "id -u; id -g; cat /proc/self/uid_map; cat /proc/self/gid_map; echo $$; echo hello > /made-inside; cat /made-inside; head -c 3 /dev/zero | wc -c; cat /dev/null && echo null-ok",
            100000);
        var r = s.Runc("run", "-b", b.Dir, id);
        Assert.True(r.ExitCode == 0, r.ToString());
        var lines = Lines(r.Stdout).Select(l => string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries))).ToArray();
        Assert.Equal(["0", "0", "0 100000 65536", "0 100000 65536", "1", "hello", "3", "null-ok"], lines);
        var made = Path.Combine(b.Rootfs, "made-inside");
        Assert.True(File.Exists(made), "the file written in the container is not in the rootfs");
        Assert.Equal(100000u, HostOwner(made));
    });

    [Fact]
    public void Full_capabilities_inside_do_not_reach_the_host() => Sandbox.Run(s =>
    {
        var id = s.NewId("usercaps");
        var b = UserNsBundle(s, id,
            "grep CapEff /proc/self/status; mkdir -p /mnt/t; mount -t tmpfs none /mnt/t && echo mount-ok; " +
            "mknod /tmp/x c 1 3 2>/dev/null && echo mknod-ok || echo mknod-refused; " +
            "touch /tmp/f; chown 70000 /tmp/f 2>/dev/null && echo chown-ok || echo chown-refused",
            100000, c => c.SetCaps("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_MKNOD", "CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID"));
        var r = s.Runc("run", "-b", b.Dir, id);
        Assert.True(r.ExitCode == 0, r.ToString());
        var lines = Lines(r.Stdout);
        // CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, SETGID 6, SETUID 7, MKNOD 27, SYS_ADMIN 21 → 0x82000cb
        Assert.Equal("CapEff:\t00000000082000cb", lines[0]);
        // CAP_MKNOD in a user namespace does not create device nodes; ids outside the mapping do not exist.
        Assert.Equal(["mount-ok", "mknod-refused", "chown-refused"], lines[1..]);
        Assert.False(File.Exists(Path.Combine(b.Rootfs, "tmp/x")));
    });

    [Fact]
    public void Identity_mapping_works() => Sandbox.Run(s =>
    {
        var id = s.NewId("useridentity");
        var b = UserNsBundle(s, id, "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user; touch /made-inside", 0);
        var r = s.Runc("run", "-b", b.Dir, id);
        Assert.True(r.ExitCode == 0, r.ToString());
        var lines = Lines(r.Stdout);
        Assert.Equal("0", lines[0]);
        Assert.Equal("0 0 65536", string.Join(' ', lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries)));
        // A user namespace of its own, not the host's.
        Assert.NotEqual(new FileInfo("/proc/self/ns/user").LinkTarget, lines[2]);
        Assert.Equal(0u, HostOwner(Path.Combine(b.Rootfs, "made-inside")));
    });

    [Fact]
    public void Create_start_delete_with_a_user_namespace() => Sandbox.Run(s =>
    {
        var id = s.NewId("userlife");
        var b = UserNsBundle(s, id, "exec sleep 1000", 100000);
        s.Ok("create", "-b", b.Dir, id);
        Assert.Equal("created", s.Status(id));
        var pid = (int)s.State(id)["pid"]!;
        // The host's pid of the container's init: it runs as the mapped root, in its own user namespace.
        var status = File.ReadAllLines($"/proc/{pid}/status");
        Assert.Contains(status, l => l.StartsWith("Uid:") && l.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1] == "100000");
        Assert.NotEqual(new FileInfo("/proc/self/ns/user").LinkTarget, new FileInfo($"/proc/{pid}/ns/user").LinkTarget);
        Assert.Contains(pid, Sandbox.ProcessesInCgroupOf(id));
        s.Ok("start", id);
        s.WaitForStatus(id, "running");
        // exec joins the container's user namespace (nsexec), not just the others: root inside is the
        // mapped root, never the host's.
        var ex = s.Runc("exec", id, "sh", "-c",
            "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user; readlink /proc/1/ns/user; echo $$; sleep 1000 &");
        Assert.True(ex.ExitCode == 0, ex.ToString());
        var lines = Lines(ex.Stdout);
        Assert.Equal("0", lines[0]);
        Assert.Equal("0 100000 65536", string.Join(' ', lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries)));
        Assert.Equal(lines[3], lines[2]);
        Assert.Equal(new FileInfo($"/proc/{pid}/ns/user").LinkTarget, lines[2]);
        Assert.NotEqual("1", lines[4]); // in the container's pid namespace, not its init
        Assert.True(int.Parse(lines[4]) < 100, $"exec'd shell has pid {lines[4]}: not in the container's pid namespace?");
        // The background sleep left by exec: on the host it runs as uid 100000, in the container's cgroup.
        var hostSleep = Sandbox.ProcessesInCgroupOf(id).Where(p => p != pid).ToList();
        Assert.NotEmpty(hostSleep);
        foreach (var p in hostSleep)
            Assert.Contains(File.ReadAllLines($"/proc/{p}/status"), l => l.StartsWith("Uid:") && l.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1] == "100000");
        s.Ok("kill", id, "KILL");
        s.WaitForStatus(id, "stopped");
        s.Ok("delete", id);
        s.AssertNothingLeft(id);
    });

    /// <summary>A second container joins the first one's user (and network) namespace by path, as
    /// podman's pods do: same namespaces, no maps written (they exist), its own pid and mount
    /// namespaces owned by the joined user namespace; exec into it joins that user namespace too.</summary>
    [Fact]
    public void Joining_a_user_namespace_by_path() => Sandbox.Run(s =>
    {
        var first = s.NewId("userowner");
        var a = UserNsBundle(s, first, "exec sleep 1000", 100000);
        s.Ok("run", "-d", "-b", a.Dir, first);
        var owner = (int)s.State(first)["pid"]!;
        var second = s.NewId("userjoin");
        var b = UserNsBundle(s, second, "exec sleep 1000", 100000, c =>
        {
            c.SetNamespace("user", $"/proc/{owner}/ns/user");
            c.SetNamespace("network", $"/proc/{owner}/ns/net");
            c.Linux().Remove("uidMappings");
            c.Linux().Remove("gidMappings");
        });
        s.Ok("run", "-d", "-b", b.Dir, second);
        var pid = (int)s.State(second)["pid"]!;
        foreach (var ns in new[] { "user", "net" })
            Assert.Equal(new FileInfo($"/proc/{owner}/ns/{ns}").LinkTarget, new FileInfo($"/proc/{pid}/ns/{ns}").LinkTarget);
        foreach (var ns in new[] { "pid", "mnt", "uts", "ipc" })
            Assert.NotEqual(new FileInfo($"/proc/{owner}/ns/{ns}").LinkTarget, new FileInfo($"/proc/{pid}/ns/{ns}").LinkTarget);
        var ex = s.Runc("exec", second, "sh", "-c", "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user; echo $$");
        Assert.True(ex.ExitCode == 0, ex.ToString());
        var lines = Lines(ex.Stdout);
        Assert.Equal("0", lines[0]);
        Assert.Equal("0 100000 65536", string.Join(' ', lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries)));
        Assert.Equal(new FileInfo($"/proc/{owner}/ns/user").LinkTarget, lines[2]);
        Assert.True(int.Parse(lines[3]) < 100);
        Assert.Contains(File.ReadAllLines($"/proc/{pid}/status"), l => l.StartsWith("Uid:") && l.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1] == "100000");
        s.Ok("delete", "--force", second);
        s.Ok("delete", "--force", first);
        s.AssertNothingLeft(second);
    });

    /// <summary>CVE-2019-5736 defence with a user namespace too (it matters most with an identity
    /// mapping, where the container's root owns the host's files): init's /proc/PID/exe names the
    /// runtime binary on a read-only bind mount.</summary>
    [Fact]
    public void Runtime_binary_is_read_only_to_init_in_a_user_namespace() => Sandbox.Run(s =>
    {
        var binary = EscapeTests.RealBinary();
        Assert.False(EscapeTests.IsReadOnlyMount(binary), "the host's binary is itself on a read-only mount: the test cannot tell");
        var id = s.NewId("userexe");
        var b = UserNsBundle(s, id, "exec sleep 1000", 0);
        s.Ok("create", "-b", b.Dir, id);
        var pid = (int)s.State(id)["pid"]!;
        using (var exe = File.OpenHandle($"/proc/{pid}/exe", FileMode.Open, FileAccess.Read))
            Assert.True(EscapeTests.IsReadOnlyMount((int)exe.DangerousGetHandle()), "init's exe is not on a read-only mount");
        s.Ok("start", id);
        s.Ok("delete", "--force", id);
    });

    /// <summary>A container with a user namespace but the host's cgroup namespace (what podman does on
    /// cgroup v1), exec'd from a caller in another cgroup namespace: the host-owned namespace must be
    /// joined before the user namespace (after it, the host's CAP_SYS_ADMIN is gone: EPERM).</summary>
    [Fact]
    public void Exec_joins_host_owned_namespaces_before_the_user_namespace() => Sandbox.Run(s =>
    {
        var id = s.NewId("userorder");
        var b = UserNsBundle(s, id, "exec sleep 1000", 100000, c => c.RemoveNamespace("cgroup"));
        s.Ok("run", "-d", "-b", b.Dir, id);
        var pid = (int)s.State(id)["pid"]!;
        var psi = new ProcessStartInfo("unshare", ["--cgroup", Runc.Binary, "--root", s.Root, "exec", id, "sh", "-c", "id -u; readlink /proc/self/ns/cgroup"])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEnd();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"exit {p.ExitCode}: {stdout} {stderr}");
        Assert.Equal(["0", new FileInfo($"/proc/{pid}/ns/cgroup").LinkTarget!], Lines(stdout));
    });

    /// <summary>sysfs cannot be mounted in a user namespace that does not own the network namespace:
    /// with the host's network, /sys is the host's, bound read-only (as runc does).</summary>
    [Fact]
    public void Host_network_with_a_user_namespace_gets_a_read_only_bind_of_sys() => Sandbox.Run(s =>
    {
        var id = s.NewId("usersys");
        var b = UserNsBundle(s, id, "ls /sys/class/net | grep -c .; touch /sys/x 2>/dev/null && echo writable || echo read-only; awk '$5 == \"/sys\" { print $6 }' /proc/self/mountinfo",
            100000, c => c.RemoveNamespace("network"));
        var r = s.Runc("run", "-b", b.Dir, id);
        Assert.True(r.ExitCode == 0, r.ToString());
        var lines = Lines(r.Stdout);
        Assert.Equal(Directory.GetFileSystemEntries("/sys/class/net").Length.ToString(), lines[0]); // the host's interfaces
        Assert.Equal("read-only", lines[1]);
        Assert.Single(lines[2..]); // one mount at /sys, the bind
        Assert.Contains("ro", lines[2].Split(','));
    });

    /// <summary>linux.devices cannot be mknod'ed in a user namespace: the host's node is bound in.</summary>
    [Fact]
    public void Linux_devices_are_bound_from_the_host() => Sandbox.Run(s =>
    {
        Assert.True(File.Exists("/dev/fuse"), "this test needs the host's /dev/fuse");
        var id = s.NewId("userdev");
        var b = UserNsBundle(s, id, "stat -c '%t:%T %F' /dev/fuse /dev/null; grep -c ' /dev/fuse ' /proc/self/mountinfo", 100000, c =>
            c.Linux()["devices"] = new JsonArray(new JsonObject { ["path"] = "/dev/fuse", ["type"] = "c", ["major"] = 10, ["minor"] = 229 }));
        var r = s.Runc("run", "-b", b.Dir, id);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(["a:e5 character special file", "1:3 character special file", "1"], Lines(r.Stdout));
    });

    [Fact]
    public void Failing_init_in_a_user_namespace_leaves_nothing() => Sandbox.Run(s =>
    {
        var id = s.NewId("userfail");
        var b = UserNsBundle(s, id, "true", 100000, c => c.SetArgs("/no/such/program"));
        Sandbox.AssertOneLineError(s.Runc("create", "-b", b.Dir, id), "/no/such/program");
        s.AssertNothingLeft(id);
    });

    static void CreateIsRefused(Action<JsonObject> spoil, string expected) => Sandbox.Run(s =>
    {
        var id = s.NewId("userbad");
        var b = s.NewBundle(id, "exec sleep 1000", c =>
        {
            c.SetNamespace("user", null);
            c.Linux()["uidMappings"] = Map(0, 100000, 65536);
            c.Linux()["gidMappings"] = Map(0, 100000, 65536);
            spoil(c);
        });
        var r = s.Runc("create", "-b", b.Dir, id);
        Sandbox.AssertOneLineError(r, expected);
        s.AssertNothingLeft(id);
    });

    [Fact]
    public void User_namespace_without_mappings() =>
        CreateIsRefused(c => { c.Linux().Remove("uidMappings"); c.Linux().Remove("gidMappings"); }, "needs linux.uidMappings");

    [Fact]
    public void User_namespace_without_gid_mappings() =>
        CreateIsRefused(c => c.Linux().Remove("gidMappings"), "needs linux.gidMappings");

    [Fact]
    public void Mappings_without_a_user_namespace() =>
        CreateIsRefused(c => c.RemoveNamespace("user"), "need a user namespace");

    [Fact]
    public void Overlapping_container_ranges() =>
        CreateIsRefused(c => c.Linux()["uidMappings"] = new JsonArray(
            new JsonObject { ["containerID"] = 0, ["hostID"] = 100000, ["size"] = 1000 },
            new JsonObject { ["containerID"] = 500, ["hostID"] = 300000, ["size"] = 1000 }), "overlap");

    [Fact]
    public void Size_zero() => CreateIsRefused(c => c.Linux()["gidMappings"] = Map(0, 100000, 0), "size must not be 0");

    [Fact]
    public void Container_root_not_mapped() =>
        CreateIsRefused(c => c.Linux()["uidMappings"] = Map(1, 100000, 65536), "container id 0 (root) is not mapped");

    [Fact]
    public void Joining_a_user_namespace_by_a_path_that_is_another_namespace() =>
        CreateIsRefused(c => c.SetNamespace("user", "/proc/self/ns/net"), "is a namespace of another type");

    [Fact]
    public void Joining_a_user_namespace_by_a_path_that_is_no_namespace() =>
        CreateIsRefused(c => c.SetNamespace("user", "/etc/hostname"), "is not a namespace file");

    [Fact]
    public void Joining_another_namespace_by_path_with_a_new_user_namespace() =>
        CreateIsRefused(c => c.SetNamespace("network", "/proc/self/ns/net"), "together with a new user namespace");

}
