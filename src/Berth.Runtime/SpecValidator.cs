using Berth.Linux;
using Berth.Oci.Runtime;

namespace Berth.Runtime;

/// <summary>Checks a config before anything is created. Every field is either applied by Berth or
/// refused here with one clear line; nothing is silently ignored.</summary>
public static class SpecValidator
{
    public static readonly string[] NamespaceTypes = ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"];

    public static void Validate(Spec spec, string rootfs, bool requireProcess = true)
    {
        if (string.IsNullOrEmpty(spec.OciVersion)) throw Bad("ociVersion is required");
        if (!spec.OciVersion.StartsWith("1.", StringComparison.Ordinal)) throw Bad($"unsupported ociVersion \"{spec.OciVersion}\" (this runtime implements 1.x)");
        if (spec.Root is null || string.IsNullOrEmpty(spec.Root.Path)) throw Bad("root.path is required");
        if (!Directory.Exists(rootfs)) throw Bad($"rootfs {rootfs} does not exist or is not a directory");
        if (requireProcess) ValidateProcess(spec.Process ?? throw Bad("process is required"), "process");
        var linux = spec.Linux ?? throw Bad("linux section is required on Linux");

        var seen = new HashSet<string>();
        foreach (var ns in linux.Namespaces ?? [])
        {
            if (!NamespaceTypes.Contains(ns.Type)) throw Bad($"unknown namespace type \"{ns.Type}\"");
            if (!seen.Add(ns.Type)) throw Bad($"namespace \"{ns.Type}\" is listed twice");
            if (ns.Path is { Length: > 0 } p)
            {
                if (!File.Exists(p)) throw Bad($"namespace path {p} for \"{ns.Type}\" does not exist");
                CheckNamespaceType(p, ns.Type);
            }
        }
        ValidateUserNamespace(linux, seen);
        ValidateTimeNamespace(linux, seen);
        if (linux.IntelRdt is not null) throw Unsupported("linux.intelRdt");
        if (linux.Personality is not null) throw Unsupported("linux.personality");
        if (linux.MemoryPolicy is not null) throw Unsupported("linux.memoryPolicy");
        if (linux.NetDevices is not null) throw Unsupported("linux.netDevices");
        if (!string.IsNullOrEmpty(linux.MountLabel)) throw Unsupported("linux.mountLabel (SELinux)");
        if (linux.Resources?.Network is not null) throw Unsupported("linux.resources.network (net_cls/net_prio)");
        if (linux.Resources?.Rdma is { Count: > 0 }) throw Unsupported("linux.resources.rdma");

        var hasNs = (string t) => seen.Contains(t);
        if (!string.IsNullOrEmpty(spec.Hostname) && !hasNs("uts")) throw Bad("unable to set hostname without a new UTS namespace");
        if (!string.IsNullOrEmpty(spec.Domainname) && !hasNs("uts")) throw Bad("unable to set domainname without a new UTS namespace");

        foreach (var (key, _) in linux.Sysctl ?? [])
            ValidateSysctl(key, hasNs);

        if (linux.RootfsPropagation is { Length: > 0 } rp && !MountOptions.Propagation.ContainsKey(rp))
            throw Bad($"invalid rootfsPropagation \"{rp}\"");

        foreach (var m in spec.Mounts ?? [])
        {
            if (string.IsNullOrEmpty(m.Destination)) throw Bad("mount destination is required");
            if (m.UidMappings is { Count: > 0 } || m.GidMappings is { Count: > 0 }) throw Unsupported($"id-mapped mount at {m.Destination}");
            var parsed = MountOptions.Parse(m.Options);
            if (parsed.Unsupported is { } u) throw Unsupported($"mount option \"{u}\" at {m.Destination}");
            var isBind = m.Type == "bind" || parsed.Bind;
            if (isBind && string.IsNullOrEmpty(m.Source)) throw Bad($"bind mount at {m.Destination} has no source");
            if (isBind && m.Source is { } src && !Path.Exists(src) && !Path.Exists(Path.Combine(rootfs, "..", src)))
                throw Bad($"bind mount source {src} for {m.Destination} does not exist");
            if (!isBind && string.IsNullOrEmpty(m.Type)) throw Bad($"mount at {m.Destination} has no type");
        }

        foreach (var d in linux.Devices ?? [])
        {
            if (d.Type is not ("c" or "b" or "u" or "p")) throw Bad($"device {d.Path}: invalid type \"{d.Type}\"");
            if (!d.Path.StartsWith('/')) throw Bad($"device path \"{d.Path}\" must be absolute");
        }

        foreach (var h in AllHooks(spec.Hooks))
            if (!h.Path.StartsWith('/')) throw Bad($"hook path \"{h.Path}\" must be absolute");
    }

    /// <summary>A new user namespace needs uid and gid mappings (and a new mount namespace); mappings
    /// need a user namespace. A user namespace joined by path needs no mappings.</summary>
    static void ValidateUserNamespace(Berth.Oci.Runtime.Linux linux, HashSet<string> seen)
    {
        var userNs = linux.Namespaces?.FirstOrDefault(n => n.Type == "user");
        var hasMaps = linux.UidMappings is { Count: > 0 } || linux.GidMappings is { Count: > 0 };
        if (userNs is null)
        {
            if (hasMaps) throw Bad("linux.uidMappings/gidMappings need a user namespace (namespace \"user\")");
            return;
        }
        if (userNs.Path is { Length: > 0 })
        {
            // Joined: its maps were written by whoever made it; mappings given here only describe it.
            if (linux.UidMappings is { Count: > 0 }) CheckMappings(linux.UidMappings, "uidMappings");
            if (linux.GidMappings is { Count: > 0 }) CheckMappings(linux.GidMappings, "gidMappings");
            foreach (var ns in linux.Namespaces!)
                if (ns.Type == "mount" && ns.Path is { Length: > 0 })
                    throw Unsupported("joining a mount namespace by path together with a user namespace");
            if (!seen.Contains("mount")) throw Bad("a user namespace needs a new mount namespace (namespace \"mount\")");
            return;
        }
        if (linux.UidMappings is not { Count: > 0 }) throw Bad("a user namespace needs linux.uidMappings");
        if (linux.GidMappings is not { Count: > 0 }) throw Bad("a user namespace needs linux.gidMappings");
        CheckMappings(linux.UidMappings, "uidMappings");
        CheckMappings(linux.GidMappings, "gidMappings");
        if (!seen.Contains("mount")) throw Bad("a user namespace needs a new mount namespace (namespace \"mount\")");
        foreach (var ns in linux.Namespaces!)
            if (ns.Type != "user" && ns.Path is { Length: > 0 })
                throw Unsupported($"joining namespace \"{ns.Type}\" by path together with a new user namespace");
    }

    /// <summary>A namespace path must name a namespace of that type (setns is called with type 0, "any").</summary>
    static unsafe void CheckNamespaceType(string path, string type)
    {
        Fd fd;
        try { fd = Sys.Open(path, Berth.Linux.Interop.Libc.O_RDONLY); }
        catch (SyscallException e) { throw Bad($"namespace path {path} for \"{type}\": {Errno.Describe(e.Errno)}"); }
        using (fd)
        {
            var actual = Berth.Linux.Interop.Libc.ioctl(fd.Value, 0xb703 /* NS_GET_NSTYPE */, null);
            var expected = type switch
            {
                "pid" => 0x20000000, "network" => 0x40000000, "mount" => 0x00020000, "ipc" => 0x08000000,
                "uts" => 0x04000000, "user" => 0x10000000, "cgroup" => 0x02000000, "time" => 0x00000080, _ => -1,
            };
            if (actual < 0) throw Bad($"namespace path {path} for \"{type}\" is not a namespace file");
            if (actual != expected) throw Bad($"namespace path {path} for \"{type}\" is a namespace of another type");
        }
    }

    /// <summary>linux.timeOffsets (monotonic, boottime) need a new time namespace; one joined by path
    /// keeps its own offsets. Joining other namespaces by path beside a new time namespace is
    /// limited to those nsexec can join before cloning (not mount).</summary>
    static void ValidateTimeNamespace(Berth.Oci.Runtime.Linux linux, HashSet<string> seen)
    {
        var timeNs = linux.Namespaces?.FirstOrDefault(n => n.Type == "time");
        foreach (var (clock, offset) in linux.TimeOffsets ?? [])
        {
            if (clock is not ("monotonic" or "boottime")) throw Bad($"linux.timeOffsets: unknown clock \"{clock}\" (monotonic or boottime)");
            if (offset.Nanosecs >= 1_000_000_000) throw Bad($"linux.timeOffsets.{clock}.nanosecs {offset.Nanosecs} is out of range [0, 999999999]");
        }
        if (linux.TimeOffsets is { Count: > 0 } && timeNs is null) throw Bad("linux.timeOffsets need a time namespace (namespace \"time\")");
        if (linux.TimeOffsets is { Count: > 0 } && timeNs?.Path is { Length: > 0 }) throw Bad("linux.timeOffsets cannot be set when joining a time namespace by path");
        if (timeNs is not null && linux.Namespaces!.Any(n => n.Type == "mount" && n.Path is { Length: > 0 }))
            throw Unsupported("joining a mount namespace by path together with a time namespace");
    }

    static void CheckMappings(List<IdMapping> maps, string what)
    {
        // The kernel takes at most 340 lines (5 before 4.15); refuse what it would refuse, clearly.
        if (maps.Count > 340) throw Bad($"linux.{what}: {maps.Count} ranges (the kernel allows at most 340)");
        for (var i = 0; i < maps.Count; i++)
        {
            var m = maps[i];
            if (m.Size == 0) throw Bad($"linux.{what}[{i}]: size must not be 0");
            if ((ulong)m.ContainerId + m.Size > 1UL << 32) throw Bad($"linux.{what}[{i}]: containerID {m.ContainerId} + size {m.Size} is out of range");
            if ((ulong)m.HostId + m.Size > 1UL << 32) throw Bad($"linux.{what}[{i}]: hostID {m.HostId} + size {m.Size} is out of range");
            for (var j = 0; j < i; j++)
            {
                var o = maps[j];
                if (m.ContainerId < (ulong)o.ContainerId + o.Size && o.ContainerId < (ulong)m.ContainerId + m.Size)
                    throw Bad($"linux.{what}[{i}]: container ids {m.ContainerId}-{(ulong)m.ContainerId + m.Size - 1} overlap linux.{what}[{j}]");
                if (m.HostId < (ulong)o.HostId + o.Size && o.HostId < (ulong)m.HostId + m.Size)
                    throw Bad($"linux.{what}[{i}]: host ids {m.HostId}-{(ulong)m.HostId + m.Size - 1} overlap linux.{what}[{j}]");
            }
        }
        if (!maps.Any(m => m.ContainerId == 0))
            throw Bad($"linux.{what}: container id 0 (root) is not mapped");
    }

    public static void ValidateProcess(Process p, string what)
    {
        if (p.Args is not { Count: > 0 }) throw Bad($"{what}.args must not be empty");
        if (!string.IsNullOrEmpty(p.Cwd) && !p.Cwd.StartsWith('/')) throw Bad($"{what}.cwd \"{p.Cwd}\" must be an absolute path");
        if (!string.IsNullOrEmpty(p.ApparmorProfile)) throw Unsupported($"{what}.apparmorProfile (AppArmor)");
        if (!string.IsNullOrEmpty(p.SelinuxLabel)) throw Unsupported($"{what}.selinuxLabel (SELinux)");
        if (p.Scheduler is not null) throw Unsupported($"{what}.scheduler");
        if (p.ExecCpuAffinity is not null) throw Unsupported($"{what}.execCPUAffinity");
        if (p.IoPriority is not null) throw Unsupported($"{what}.ioPriority");
        if (p.OomScoreAdj is < -1000 or > 1000) throw Bad($"{what}.oomScoreAdj {p.OomScoreAdj} is out of range [-1000, 1000]");
        var seenLimits = new HashSet<string>();
        foreach (var r in p.Rlimits ?? [])
        {
            try { Rlimits.Parse(r.Type); }
            catch (ArgumentException e) { throw Bad(e.Message); }
            if (!seenLimits.Add(r.Type)) throw Bad($"rlimit {r.Type} is listed twice");
            if (r.Soft > r.Hard) throw Bad($"rlimit {r.Type}: soft limit {r.Soft} exceeds hard limit {r.Hard}");
        }
        var c = p.Capabilities;
        if (c is not null)
        {
            try
            {
                Caps.Parse(c.Bounding, "bounding"); Caps.Parse(c.Effective, "effective");
                Caps.Parse(c.Permitted, "permitted"); Caps.Parse(c.Inheritable, "inheritable");
                Caps.Parse(c.Ambient, "ambient");
            }
            catch (ArgumentException e) { throw Bad(e.Message); }
        }
    }

    static void ValidateSysctl(string key, Func<string, bool> hasNs)
    {
        if (key.Contains("..") || key.Contains('/') && key.Contains('.')) throw Bad($"invalid sysctl \"{key}\"");
        var k = key.Replace('/', '.');
        bool ipc = k is "kernel.msgmax" or "kernel.msgmnb" or "kernel.msgmni" or "kernel.sem" or "kernel.shmall"
            or "kernel.shmmax" or "kernel.shmmni" or "kernel.shm_rmid_forced" || k.StartsWith("fs.mqueue.", StringComparison.Ordinal);
        if (ipc)
        {
            if (!hasNs("ipc")) throw Bad($"sysctl \"{key}\" is not allowed in the host's ipc namespace");
            return;
        }
        if (k.StartsWith("net.", StringComparison.Ordinal))
        {
            if (!hasNs("network")) throw Bad($"sysctl \"{key}\" is not allowed in the host's network namespace");
            return;
        }
        if (k is "kernel.hostname" or "kernel.domainname")
        {
            if (!hasNs("uts")) throw Bad($"sysctl \"{key}\" is not allowed in the host's uts namespace");
            return;
        }
        throw Bad($"sysctl \"{key}\" is not in a separate kernel namespace");
    }

    public static IEnumerable<Hook> AllHooks(Hooks? h) =>
        h is null ? [] : new[] { h.Prestart, h.CreateRuntime, h.CreateContainer, h.StartContainer, h.Poststart, h.Poststop }
            .Where(l => l is not null).SelectMany(l => l!);

    static RuntimeException Bad(string m) => RuntimeException.Invalid(m);
    static RuntimeException Unsupported(string what) => RuntimeException.Invalid($"{what} is not supported by this version of berth-runc");
}
