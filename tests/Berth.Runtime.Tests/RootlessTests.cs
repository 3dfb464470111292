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
}
