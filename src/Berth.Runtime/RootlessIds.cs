using Berth.Linux;
using Berth.Oci.Runtime;
using static Berth.Linux.Interop.Libc;

namespace Berth.Runtime;

/// <summary>Id maps for a runtime without the host's root (rootless). The kernel lets an unprivileged
/// process map only its own uid/gid (and gid only after denying setgroups); anything more goes
/// through the setuid helpers newuidmap/newgidmap (Debian's uidmap), which allow the ranges
/// /etc/subuid and /etc/subgid delegate to the caller. runc does the same.</summary>
public static class RootlessIds
{
    const string SubUid = "/etc/subuid", SubGid = "/etc/subgid";

    /// <summary>Refuses, before anything exists, a config that an unprivileged caller cannot have.</summary>
    public static void Validate(Spec spec)
    {
        var linux = spec.Linux!;
        var userNs = linux.Namespaces?.FirstOrDefault(n => n.Type == "user");
        if (userNs is null)
            throw RuntimeException.Invalid("rootless: running without the host's root needs a user namespace (namespace \"user\" with linux.uidMappings/gidMappings; see `berth-runc spec --rootless`)");
        if (userNs.Path is { Length: > 0 }) return; // joined: mapped already by whoever made it
        Check(linux.UidMappings ?? [], "uidMappings", geteuid(), SubUid, "newuidmap");
        Check(linux.GidMappings ?? [], "gidMappings", getegid(), SubGid, "newgidmap");
        // Mapping only its own gid, the caller must deny setgroups in the namespace (the kernel's rule).
        if (SelfOnly(linux.GidMappings!, getegid()) && spec.Process?.User.AdditionalGids is { Count: > 0 })
            throw RuntimeException.Invalid("rootless: process.user.additionalGids cannot be set when linux.gidMappings maps only the caller's gid (setgroups is denied then); map a range with newgidmap");
    }

    static bool SelfOnly(List<IdMapping> maps, uint own) => maps is [{ Size: 1 } m] && m.HostId == own;

    static void Check(List<IdMapping> maps, string what, uint own, string subFile, string helper)
    {
        if (SelfOnly(maps, own)) return;
        var delegated = Delegated(subFile, own);
        for (var i = 0; i < maps.Count; i++)
        {
            var m = maps[i];
            ulong start = m.HostId, end = (ulong)m.HostId + m.Size;
            var ok = (start == own && end == (ulong)own + 1) || delegated.Any(d => start >= d.Start && end <= d.Start + d.Count);
            if (!ok)
                throw RuntimeException.Invalid($"rootless: linux.{what}[{i}]: host ids {start}-{end - 1} are neither the caller's id {own} nor delegated to it in {subFile}");
        }
        if (FindHelper(helper) is null)
            throw RuntimeException.Invalid($"rootless: linux.{what} maps more than the caller's own id {own}: that needs {helper} (Debian package uidmap), which is not installed");
    }

    /// <summary>The caller's ranges in /etc/subuid or /etc/subgid ("name-or-id:start:count" lines).</summary>
    static List<(ulong Start, ulong Count)> Delegated(string file, uint own)
    {
        var result = new List<(ulong, ulong)>();
        if (!File.Exists(file)) return result;
        var names = new HashSet<string> { own.ToString() };
        if (UserName(geteuid()) is { } n) names.Add(n);
        foreach (var line in File.ReadLines(file))
        {
            var parts = line.Split(':');
            if (parts.Length != 3 || !names.Contains(parts[0])) continue;
            if (ulong.TryParse(parts[1], out var start) && ulong.TryParse(parts[2], out var count)) result.Add((start, count));
        }
        return result;
    }

    static string? UserName(uint uid)
    {
        if (!File.Exists("/etc/passwd")) return null;
        foreach (var line in File.ReadLines("/etc/passwd"))
        {
            var parts = line.Split(':');
            if (parts.Length > 2 && parts[2] == uid.ToString()) return parts[0];
        }
        return null;
    }

    static string? FindHelper(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/bin").Append("/usr/sbin"))
        {
            if (dir.Length == 0) continue;
            var p = Path.Combine(dir, name);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>Writes init's maps: the caller's own id directly (gid after denying setgroups), ranges
    /// through newuidmap/newgidmap. <paramref name="scratchDir"/> (the container's state dir) holds
    /// the helper's error output for the message.</summary>
    public static void WriteMaps(int pid, Berth.Oci.Runtime.Linux linux, string scratchDir)
    {
        if (SelfOnly(linux.UidMappings!, geteuid())) Sys.WriteFile($"/proc/{pid}/uid_map", ContainerRuntime.MapText(linux.UidMappings!));
        else RunHelper("newuidmap", pid, linux.UidMappings!, scratchDir);
        if (SelfOnly(linux.GidMappings!, getegid()))
        {
            Sys.WriteFile($"/proc/{pid}/setgroups", "deny");
            Sys.WriteFile($"/proc/{pid}/gid_map", ContainerRuntime.MapText(linux.GidMappings!));
        }
        else RunHelper("newgidmap", pid, linux.GidMappings!, scratchDir);
    }

    static void RunHelper(string name, int pid, List<IdMapping> maps, string scratchDir)
    {
        var path = FindHelper(name) ?? throw RuntimeException.Invalid($"rootless: {name} (Debian package uidmap) is not installed");
        var argv = new List<string> { name, pid.ToString() };
        foreach (var m in maps) { argv.Add(m.ContainerId.ToString()); argv.Add(m.HostId.ToString()); argv.Add(m.Size.ToString()); }
        var errPath = Path.Combine(scratchDir, name + ".err");
        int status;
        using (var err = Sys.Open(errPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0x180))
        {
            var child = Spawn.Start(path, argv, ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"], [(err.Value, 1), (err.Value, 2)]);
            status = Sys.Wait(child);
        }
        var text = File.ReadAllText(errPath).Trim().Replace('\n', ' ');
        File.Delete(errPath);
        if (status != 0)
            throw RuntimeException.Precondition($"rootless: {string.Join(' ', argv)} failed (exit {status}){(text.Length > 0 ? ": " + text : "")}");
    }
}
