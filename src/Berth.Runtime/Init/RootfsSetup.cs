using Berth.Linux;
using Berth.Oci.Runtime;
using static Berth.Linux.Interop.Libc;

namespace Berth.Runtime.Init;

/// <summary>Compiles the container's filesystem into init's plan: propagation, the rootfs bind, the
/// configured mounts (each target resolved inside the rootfs by initexec with openat2
/// RESOLVE_IN_ROOT, missing mount points created), device nodes and /dev symlinks. Every decision
/// (flags, which remounts, file or directory, the error text) is made here; initexec carries the
/// ops out before pivot_root.</summary>
internal sealed class RootfsSetup(InitPlan plan, InitProgram w, Action beforeCgroupMount)
{
    readonly Spec _spec = plan.Spec;

    public static void PrepareRoot(InitProgram w, InitPlan plan)
    {
        if (plan.HostMountNs)
        {
            // The host's mount namespace: never touch its propagation; the rootfs still becomes a
            // mount point of its own so that a read-only root cannot reach the host's "/".
            HostMount(w, plan.Rootfs, plan.Rootfs, MS_BIND | MS_REC, $"rootfs {plan.Rootfs}");
            return;
        }
        var prop = plan.Spec.Linux?.RootfsPropagation is { Length: > 0 } rp ? MountOptions.Propagation[rp] : MS_SLAVE | MS_REC;
        // The spawning thread already made "/" rslave in this new mount namespace (to protect the
        // runtime binary); only a different propagation needs another pass over the mount tree.
        if (prop != (MS_SLAVE | MS_REC) || !plan.RootSlaveDone)
            HostMount(w, null, "/", prop, "/ (set propagation)");
        // pivot_root refuses a new root under a shared parent mount (rootfsPropagation "shared"):
        // make the rootfs' parent mount private in this namespace before binding it, as runc does.
        if ((prop & MS_SHARED) != 0 && ContainerInit.ParentMountPoint(plan.Rootfs) is { } parent)
            HostMount(w, null, parent, MS_PRIVATE, $"{parent} (private, for pivot_root)");
        // The rootfs must be a mount point of its own for pivot_root, and private enough that the
        // mounts made under it do not reach the host.
        HostMount(w, plan.Rootfs, plan.Rootfs, MS_BIND | MS_REC, $"rootfs {plan.Rootfs}");
    }

    static void HostMount(InitProgram w, string? source, string target, ulong flags, string what) =>
        w.Op(InitOp.Mount, n0: flags, s: [source, target, null, null, what]);

    public void MountAll()
    {
        foreach (var m in _spec.Mounts ?? [])
            MountOne(m);
    }

    /// <summary>A mount whose target initexec resolves (and creates) inside the rootfs; a failure
    /// reads "mount SOURCE to DESTINATION: error" (ENODEV adds the unknown filesystem type).</summary>
    void InRoot(Mount m, string? source, string dest, string? type, ulong flags, string? data, ulong create,
        uint opFlags = 0, ulong altOnEperm = 0, string? bindSource = null) =>
        w.Op(InitOp.MountInRoot, opFlags, flags, create, altOnEperm,
            s: [source, dest, type, data, $"mount {source ?? m.Type} to {m.Destination}", bindSource]);

    void MountOne(Mount m)
    {
        var o = MountOptions.Parse(m.Options);
        var bind = m.Type == "bind" || o.Bind;
        if (m.Type == "cgroup") { MountCgroup(m, o); return; }

        string? source = m.Source;
        var create = InitProgram.CreateDir;
        if (bind)
        {
            source = Path.IsPathRooted(source!) ? source : Path.GetFullPath(Path.Combine(plan.Bundle, source!));
            // The target is made a file or a directory as the source is (initexec stats it; a
            // missing source fails "mount DEST: source SRC does not exist").
            create = InitProgram.CreateLikeSource;
        }
        var data = o.Data.Length == 0 ? null : o.Data;
        if (bind)
        {
            InRoot(m, source, m.Destination, null, MS_BIND | (o.Recursive ? MS_REC : 0), null, create, bindSource: source);
            // Bind mounts ignore most flags on the first call: apply them with a remount, repeating
            // the flags the kernel keeps locked on the source (initexec reads them with statvfs).
            var extra = o.Flags & ~(MS_REMOUNT | MS_BIND | MS_REC);
            if (extra != 0) InRoot(m, null, m.Destination, null, MS_BIND | MS_REMOUNT | extra, null, create, InitProgram.Locked, bindSource: source);
        }
        else if (m.Type == "sysfs" && plan.UserNs)
        {
            // sysfs needs a network namespace owned by the container's user namespace; with the
            // host's network namespace (EPERM) bind the host's /sys instead (as runc does), then
            // apply the flags: the two ops after this one run only on EPERM.
            InRoot(m, source ?? m.Type, m.Destination, m.Type, o.Flags & ~MS_REMOUNT, data, create, altOnEperm: 2);
            InRoot(m, "/sys", m.Destination, null, MS_BIND | MS_REC, null, create);
            InRoot(m, null, m.Destination, null, MS_BIND | MS_REMOUNT | (o.Flags & ~(MS_REMOUNT | MS_BIND | MS_REC)), null, create, InitProgram.Locked);
        }
        else InRoot(m, source ?? m.Type, m.Destination, m.Type, o.Flags & ~MS_REMOUNT, data, create);
        if (o.Propagation != 0) InRoot(m, null, m.Destination, null, o.Propagation, null, create, bindSource: bind ? source : null);
    }

    void MountCgroup(Mount m, ParsedMount o)
    {
        // The container's cgroup directories must exist (and init be in them) before they are bound.
        beforeCgroupMount();
        var flags = o.Flags & ~(MS_REMOUNT | MS_RDONLY);
        var dir = InitProgram.CreateDir;
        if (plan.CgroupV2Path is not null && plan.CgroupMounts.Count == 0)
        {
            // Pure v2: with a cgroup namespace mount cgroup2 directly, else bind the container's dir.
            if (plan.NewCgroupNs) InRoot(m, "cgroup", m.Destination, "cgroup2", o.Flags, null, dir);
            else
            {
                InRoot(m, plan.CgroupV2Path, m.Destination, null, MS_BIND | MS_REC, null, dir);
                if ((o.Flags & MS_RDONLY) != 0) InRoot(m, null, m.Destination, null, MS_BIND | MS_REMOUNT | MS_RDONLY | flags, null, dir);
            }
            return;
        }
        // v1 / hybrid: a tmpfs with one directory per hierarchy holding the container's cgroup.
        InRoot(m, "tmpfs", m.Destination, "tmpfs", flags, "mode=755", dir);
        foreach (var h in plan.CgroupMounts)
        {
            var sub = Path.Combine(m.Destination, h.Name);
            InRoot(m, h.HostPath, sub, null, MS_BIND | MS_REC, null, dir);
            // Each op resolves the target anew: this one reaches the new bind mount itself.
            InRoot(m, null, sub, null, MS_BIND | MS_REMOUNT | flags | ((o.Flags & MS_RDONLY) != 0 ? MS_RDONLY : 0), null, dir);
            // "cpu,cpuacct" is also reachable as "cpu" and "cpuacct", as on a host.
            if (h.Name.Contains(','))
                foreach (var part in h.Name.Split(','))
                    w.Op(InitOp.Symlink, InitProgram.IgnoreAll, s: [h.Name, Path.Combine(m.Destination, part)]);
        }
        if ((o.Flags & MS_RDONLY) != 0)
            InRoot(m, null, m.Destination, null, MS_REMOUNT | MS_RDONLY | flags, "mode=755", dir);
    }

    static readonly (string Path, long Major, long Minor)[] DefaultDevices =
    [
        ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7), ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
    ];

    /// <summary>The default device nodes and linux.devices, unless /dev is bind-mounted from the host.</summary>
    public void CreateDevices()
    {
        var devBound = (_spec.Mounts ?? []).Any(m => Norm(m.Destination) == "/dev" && (m.Type == "bind" || MountOptions.Parse(m.Options).Bind));
        if (devBound) return;
        if (plan.UserNs)
        {
            // mknod is not permitted in a user namespace: bind the host's nodes instead, as runc does
            // (the host's mode and owner show through).
            foreach (var (p, _, _) in DefaultDevices) w.Op(InitOp.BindDev, s: [p]);
            foreach (var d in _spec.Linux?.Devices ?? []) w.Op(InitOp.BindDev, s: [d.Path]);
        }
        else
        {
            foreach (var (p, maj, min) in DefaultDevices)
                MakeNode(p, 'c', maj, min, 0x1b6, 0, 0);
            foreach (var d in _spec.Linux?.Devices ?? [])
                MakeNode(d.Path, d.Type[0], d.Major, d.Minor, d.FileMode ?? 0x1b6, d.Uid ?? 0, d.Gid ?? 0);
        }

        Link("/proc/self/fd", "/dev/fd");
        Link("/proc/self/fd/0", "/dev/stdin");
        Link("/proc/self/fd/1", "/dev/stdout");
        Link("/proc/self/fd/2", "/dev/stderr");
        if (File.Exists("/proc/kcore")) Link("/proc/kcore", "/dev/core");
        // /dev/ptmx -> pts/ptmx when the rootfs has a devpts instance at /dev/pts.
        w.Op(InitOp.Ptmx);
    }

    void Link(string target, string link) => w.Op(InitOp.Symlink, InitProgram.IgnoreExisting, s: [target, link]);

    static string Norm(string p) => "/" + string.Join('/', RootfsPath.Components(p));

    /// <summary>Replaces whatever the image has at the path with the node (chowned to uid:gid).</summary>
    void MakeNode(string path, char type, long major, long minor, uint mode, uint uid, uint gid) =>
        w.Op(InitOp.MkNod, gid, type, (ulong)major, (ulong)minor, (mode & 0xfff) | ((ulong)uid << 32), s: [path]);
}
