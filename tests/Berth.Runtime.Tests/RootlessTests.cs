using System.Diagnostics;
using System.Text.Json.Nodes;
using Berth.Runtime.Tests.Support;

namespace Berth.Runtime.Tests;

/// <summary>berth-runc run by an unprivileged user (created for this class, removed after): user
/// namespaces with the caller's own id or with its /etc/subuid ranges through newuidmap/newgidmap,
/// cgroups it cannot write skipped, limits it cannot have refused, the whole lifecycle.</summary>
public sealed class RootlessTests(UnprivilegedUser user) : IClassFixture<UnprivilegedUser>
{
    static string[] Lines(string s) => s.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    static string Squeeze(string l) => string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries));

    static JsonArray Map(uint containerId, uint hostId, uint size) =>
        new(new JsonObject { ["containerID"] = containerId, ["hostID"] = hostId, ["size"] = size });

    /// <summary>What `berth-runc spec --rootless` gives (a user namespace mapping root to the caller,
    /// no network namespace, /sys bound from the host), with the default cgroupsPath (the test
    /// parent under the root is not the user's to write either way).</summary>
    Bundle RootlessBundle(Sandbox s, string id, string script, Action<JsonObject>? edit = null)
    {
        var b = s.NewBundle(id, script, c =>
        {
            c.SetNamespace("user", null);
            c.RemoveNamespace("network");
            c.Linux()["uidMappings"] = Map(0, user.Uid, 1);
            c.Linux()["gidMappings"] = Map(0, user.Gid, 1);
            c.Linux().Remove("resources");
            c["root"]!["readonly"] = false;
            c.Linux().Remove("cgroupsPath");
            var mounts = (JsonArray)c["mounts"]!;
            foreach (var m in mounts.ToList())
                if ((string?)m!["destination"] is "/sys" or "/sys/fs/cgroup") mounts.Remove(m);
            c.AddMount("/sys", "none", "/sys", "rbind", "nosuid", "noexec", "nodev", "ro");
            foreach (var m in mounts)
                if (m!["options"] is JsonArray opts)
                    foreach (var o in opts.ToList())
                        if ((string?)o == "gid=5") opts.Remove(o);
            edit?.Invoke(c);
        });
        // Mount points the container's root (the user) could not create in a root-owned rootfs.
        foreach (var d in new[] { "proc", "dev", "sys" }) Directory.CreateDirectory(Path.Combine(b.Rootfs, d));
        user.Own(b.Dir);
        return b;
    }

    [Fact]
    public void Single_id_mapping_runs_as_root_inside_and_the_user_outside() => Sandbox.Run(user, s =>
    {
        var id = s.NewId("rl");
        var log = Path.Combine(s.Dir, "log.json");
        var b = RootlessBundle(s, id, "id -u; id -g; cat /proc/self/uid_map; cat /proc/self/gid_map; cat /proc/self/setgroups; echo $$; touch /tmp/made; stat -c %u /tmp/made");
        user.Own(b.Rootfs);
        Directory.CreateDirectory(Path.Combine(b.Rootfs, "tmp"));
        user.Own(Path.Combine(b.Rootfs, "tmp"));
        var r = s.Runc("--log", log, "--log-format", "json", "run", "-b", b.Dir, id);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("", r.Stderr); // cgroups skipped quietly on the terminal (runc alike) …
        Assert.Equal(["0", "0", $"0 {user.Uid} 1", $"0 {user.Gid} 1", "deny", "1", "0"], Lines(r.Stdout).Select(Squeeze).ToArray());
        // … but said in the log.
        Assert.Contains("rootless: cannot create cgroup", File.ReadAllText(log));
        // On the host the file belongs to the user.
        Assert.Equal(user.Uid, OwnerOf(Path.Combine(b.Rootfs, "tmp/made")));
    });

    static uint OwnerOf(string path)
    {
        using var p = Process.Start(new ProcessStartInfo("stat", ["-c", "%u", path]) { RedirectStandardOutput = true })!;
        var t = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        return uint.Parse(t);
    }

    [Fact]
    public void Subordinate_ranges_are_mapped_through_newuidmap() => Sandbox.Run(user, s =>
    {
        var id = s.NewId("rlrange");
        var b = RootlessBundle(s, id, "id -u; cat /proc/self/uid_map; cat /proc/self/gid_map; cat /proc/self/setgroups; touch /tmp/made; chown 1000:1000 /tmp/made && echo chown-ok", c =>
        {
            c.SetCaps("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER");
            // Container root is the caller; 1..65536 come from the subordinate range.
            c.Linux()["uidMappings"] = new JsonArray(
                new JsonObject { ["containerID"] = 0, ["hostID"] = user.Uid, ["size"] = 1 },
                new JsonObject { ["containerID"] = 1, ["hostID"] = user.SubStart, ["size"] = UnprivilegedUser.SubCount });
            c.Linux()["gidMappings"] = new JsonArray(
                new JsonObject { ["containerID"] = 0, ["hostID"] = user.Gid, ["size"] = 1 },
                new JsonObject { ["containerID"] = 1, ["hostID"] = user.SubStart, ["size"] = UnprivilegedUser.SubCount });
        });
        Directory.CreateDirectory(Path.Combine(b.Rootfs, "tmp"));
        user.Own(Path.Combine(b.Rootfs, "tmp"));
        var r = s.Runc("run", "-b", b.Dir, id);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(["0", $"0 {user.Uid} 1", $"1 {user.SubStart} {UnprivilegedUser.SubCount}", $"0 {user.Gid} 1",
            $"1 {user.SubStart} {UnprivilegedUser.SubCount}", "allow", "chown-ok"], Lines(r.Stdout).Select(Squeeze).ToArray());
        // Container uid 1000 is host uid SubStart+999.
        Assert.Equal(user.SubStart + 999, OwnerOf(Path.Combine(b.Rootfs, "tmp/made")));
    });

    [Fact]
    public void Lifecycle_create_start_ps_exec_kill_delete() => Sandbox.Run(user, s =>
    {
        var id = s.NewId("rllife");
        var b = RootlessBundle(s, id, "exec sleep 1000");
        s.Ok("create", "-b", b.Dir, id);
        Assert.True(Directory.Exists(Path.Combine(s.Root, id)));
        Assert.Equal("created", s.Status(id));
        var pid = (int)s.State(id)["pid"]!;
        Assert.Contains(File.ReadAllLines($"/proc/{pid}/status"), l => l.StartsWith("Uid:") && l.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1] == user.Uid.ToString());
        s.Ok("start", id);
        s.WaitForStatus(id, "running");
        var ex = s.Runc("exec", id, "sh", "-c", "id -u; readlink /proc/self/ns/user; readlink /proc/1/ns/user; echo $$; sleep 1000 &");
        Assert.True(ex.ExitCode == 0, ex.ToString());
        var lines = Lines(ex.Stdout);
        Assert.Equal("0", lines[0]);
        Assert.Equal(lines[2], lines[1]);
        Assert.Equal(new FileInfo($"/proc/{pid}/ns/user").LinkTarget, lines[1]);
        Assert.True(int.Parse(lines[3]) < 100, "exec'd shell not in the container's pid namespace");
        // No cgroup: ps finds the container's processes through its pid namespace.
        Thread.Sleep(200);
        var ps = s.Ok("ps", "--format", "json", id);
        var pids = JsonNode.Parse(ps.Stdout)!.AsArray().Select(n => (int)n!).ToList();
        Assert.Contains(pid, pids);
        Assert.True(pids.Count >= 2, "ps missed the background sleep: " + ps.Stdout);
        foreach (var p in pids) Assert.Equal(new FileInfo($"/proc/{pid}/ns/pid").LinkTarget, new FileInfo($"/proc/{p}/ns/pid").LinkTarget);
        s.Ok("kill", "--all", id, "KILL");
        s.WaitForStatus(id, "stopped");
        foreach (var p in pids) Assert.False(Sandbox.IsAlive(p), $"process {p} survived kill --all");
        s.Ok("delete", id);
        s.AssertNothingLeft(id);
    });

    [Fact]
    public void Default_root_is_under_XDG_RUNTIME_DIR() => Sandbox.Run(user, s =>
    {
        var id = s.NewId("rlxdg");
        var b = RootlessBundle(s, id, "exec sleep 1000");
        var psi = new ProcessStartInfo(user.Prefix[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in user.Prefix.Skip(1)) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add("sh");
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("\"$0\" create -b \"$1\" \"$2\" </dev/null >/dev/null 2>&1 && ls \"$XDG_RUNTIME_DIR/berth-runc\"; \"$0\" delete --force \"$2\"");
        psi.ArgumentList.Add(Runc.Binary);
        psi.ArgumentList.Add(b.Dir);
        psi.ArgumentList.Add(id);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEnd();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, stdout + stderr);
        Assert.Equal([id], Lines(stdout));
        Assert.False(Directory.Exists(Path.Combine(user.RuntimeDir, "berth-runc", id)));
    });

    // ---------------------------------------------------------------- what an unprivileged user cannot have

    void Refused(string expected, Action<JsonObject> spoil) => Sandbox.Run(user, s =>
    {
        var id = s.NewId("rlbad");
        var b = RootlessBundle(s, id, "true", spoil);
        Sandbox.AssertOneLineError(s.Runc("create", "-b", b.Dir, id), expected);
        s.AssertNothingLeft(id);
        Assert.Empty(Directory.EnumerateFileSystemEntries(s.Root));
    });

    [Fact]
    public void Ids_not_delegated_to_the_user_are_refused() =>
        Refused("are neither the caller's id", c => c.Linux()["uidMappings"] = Map(0, 100, 1000));

    [Fact]
    public void Gids_beyond_the_subordinate_range_are_refused() =>
        Refused("delegated to it in /etc/subgid", c => c.Linux()["gidMappings"] = Map(0, user.SubStart, UnprivilegedUser.SubCount + 1));

    [Fact]
    public void No_user_namespace_is_refused() =>
        Refused("needs a user namespace", c => { c.RemoveNamespace("user"); c.Linux().Remove("uidMappings"); c.Linux().Remove("gidMappings"); });

    [Fact]
    public void A_memory_limit_without_a_writable_cgroup_is_refused() =>
        Refused("cannot set memory limit: container could not join or create cgroup", c => c.Resources()["memory"] = new JsonObject { ["limit"] = 64 << 20 });

    [Fact]
    public void A_pids_limit_without_a_writable_cgroup_is_refused() =>
        Refused("cannot set pids limit", c => c.Resources()["pids"] = new JsonObject { ["limit"] = 10 });

    [Fact]
    public void Overlapping_ranges_are_refused() =>
        Refused("overlap", c => c.Linux()["uidMappings"] = new JsonArray(
            new JsonObject { ["containerID"] = 0, ["hostID"] = user.Uid, ["size"] = 1 },
            new JsonObject { ["containerID"] = 0, ["hostID"] = user.SubStart, ["size"] = 10 }));

    [Fact]
    public void Supplementary_groups_with_setgroups_denied_are_refused() => Sandbox.Run(user, s =>
    {
        var id = s.NewId("rlgroups");
        var b = RootlessBundle(s, id, "true", c => c.Proc()["user"] = new JsonObject { ["uid"] = 0, ["gid"] = 0, ["additionalGids"] = new JsonArray(0) });
        Sandbox.AssertOneLineError(s.Runc("run", "-b", b.Dir, id), "additionalGids cannot be set");
        s.AssertNothingLeft(id);
    });

    /// <summary>A time namespace for an unprivileged caller: it can only be made inside the new user
    /// namespace (nsexec's two-stage clone), and is owned by it, as runc does.</summary>
    [Fact]
    public void A_time_namespace_with_offsets_works_rootless() => Sandbox.Run(user, s =>
    {
        var id = s.NewId("rltime");
        var b = RootlessBundle(s, id, "id -u; cut -d' ' -f1 /proc/uptime; echo $$", c =>
        {
            c.SetNamespace("time", null);
            c.Linux()["timeOffsets"] = new JsonObject
            {
                ["monotonic"] = new JsonObject { ["secs"] = 0, ["nanosecs"] = 0 },
                ["boottime"] = new JsonObject { ["secs"] = 7_000_000, ["nanosecs"] = 0 },
            };
        });
        var before = double.Parse(File.ReadAllText("/proc/uptime").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        var r = s.Runc("run", "-b", b.Dir, id);
        var after = double.Parse(File.ReadAllText("/proc/uptime").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(r.ExitCode == 0, r.ToString());
        var lines = Lines(r.Stdout);
        Assert.Equal("0", lines[0]);
        Assert.InRange(double.Parse(lines[1], System.Globalization.CultureInfo.InvariantCulture) - 7_000_000, before - 1, after + 1);
        Assert.Equal("1", lines[2]); // init is PID 1 of its pid namespace: cloned after the time namespace
        s.AssertNothingLeft(id);

        // exec joins it (after the user namespace that owns it).
        var id2 = s.NewId("rltimex");
        var b2 = RootlessBundle(s, id2, "exec sleep 1000", c =>
        {
            c.SetNamespace("time", null);
            c.Linux()["timeOffsets"] = new JsonObject { ["boottime"] = new JsonObject { ["secs"] = 7_000_000, ["nanosecs"] = 0 } };
        });
        s.Ok("run", "-d", "-b", b2.Dir, id2);
        var pid = (int)s.State(id2)["pid"]!;
        var ex = s.Runc("exec", id2, "sh", "-c", "cut -d' ' -f1 /proc/uptime; readlink /proc/self/ns/time");
        Assert.True(ex.ExitCode == 0, ex.ToString());
        var xl = Lines(ex.Stdout);
        Assert.True(double.Parse(xl[0], System.Globalization.CultureInfo.InvariantCulture) > 7_000_000, ex.Stdout);
        Assert.Equal(new FileInfo($"/proc/{pid}/ns/time").LinkTarget, xl[1]);
        s.Ok("delete", "-f", id2);
        s.AssertNothingLeft(id2);
    });

    /// <summary>CVE-2019-5736 for a rootless caller that owns its runtime binary (a copy in its home,
    /// say): no read-only bind can be made without a mount namespace, so init runs from a sealed
    /// in-memory copy and /proc/PID/exe leads to nothing writable. A binary the caller cannot write is
    /// exec'd directly (the container, running as the caller, cannot write it either).</summary>
    [Fact]
    public void A_runtime_binary_the_caller_owns_is_run_from_a_sealed_copy() => Sandbox.Run(user, s =>
    {
        var id = s.NewId("rlexe");
        var b = RootlessBundle(s, id, "exec sleep 1000");
        s.Ok("create", "-b", b.Dir, id);
        var pid = (int)s.State(id)["pid"]!;
        Assert.Equal(Path.GetFullPath(Support.Runc.Binary), new FileInfo($"/proc/{pid}/exe").LinkTarget);
        s.Ok("delete", "--force", id);

        var own = Path.Combine(s.HostDir("userbin"), "berth-runc");
        File.Copy(Support.Runc.Binary, own);
        user.Own(Path.GetDirectoryName(own)!);
        user.Own(own);
        var before = File.ReadAllBytes(own);
        var id2 = s.NewId("rlexe2");
        var b2 = RootlessBundle(s, id2, "exec sleep 1000");
        RunAs(own, "--root", s.Root, "create", "-b", b2.Dir, id2);
        var pid2 = (int)s.State(id2)["pid"]!;
        var exe = new FileInfo($"/proc/{pid2}/exe").LinkTarget!;
        Assert.StartsWith("/memfd:berth-runc", exe);
        // Even the host's root cannot change what init runs from: the copy is sealed against writes.
        var wrote = true;
        try { using var f = new FileStream($"/proc/{pid2}/exe", FileMode.Open, FileAccess.Write); f.Write("#!/bin/sh\n"u8); f.Flush(); }
        catch (IOException) { wrote = false; }
        catch (UnauthorizedAccessException) { wrote = false; }
        Assert.False(wrote, "the sealed copy was writable");
        RunAs(own, "--root", s.Root, "start", id2);
        var ex = RunAs(own, "--root", s.Root, "exec", id2, "true");
        Assert.Equal(0, ex);
        RunAs(own, "--root", s.Root, "delete", "--force", id2);
        Assert.Equal(before, File.ReadAllBytes(own));
        s.AssertNothingLeft(id2);
    });

    /// <summary>Runs <paramref name="binary"/> as the user; stdio to files (a created container's init
    /// inherits them and would hold a pipe open).</summary>
    int RunAs(string binary, params string[] args)
    {
        var outFile = Path.GetTempFileName();
        try
        {
            var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add("exec \"$0\" \"$@\" </dev/null >\"$BT_OUT\" 2>&1");
            foreach (var a in user.Prefix) psi.ArgumentList.Add(a);
            psi.ArgumentList.Add(binary);
            foreach (var a in args) psi.ArgumentList.Add(a);
            psi.Environment["BT_OUT"] = outFile;
            using var p = Process.Start(psi)!;
            var code = Support.Runc.Wait(p, string.Join(' ', args));
            Assert.True(code == 0, $"{binary} {string.Join(' ', args)}: exit {code}: {File.ReadAllText(outFile)}");
            return code;
        }
        finally { File.Delete(outFile); }
    }
}
