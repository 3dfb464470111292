using System.Runtime.InteropServices;
using Berth.Linux;
using Berth.Oci.Runtime;
using static Berth.Linux.Interop.Libc;

namespace Berth.Runtime.Init;

/// <summary>Builds the container's filesystem inside its new mount namespace: propagation, the
/// rootfs bind, the configured mounts (each target resolved inside the rootfs), device nodes and
/// /dev symlinks. Runs in init before pivot_root.</summary>
internal sealed unsafe partial class RootfsSetup(InitPlan plan, Fd root)
{
    readonly Spec _spec = plan.Spec;
    readonly string _rootfs = plan.Rootfs;

    public static void PrepareRoot(InitPlan plan)
    {
        if (plan.HostMountNs)
        {
            // The host's mount namespace: never touch its propagation; the rootfs still becomes a
            // mount point of its own so that a read-only root cannot reach the host's "/".
            Sys.Mount(plan.Rootfs, plan.Rootfs, null, MS_BIND | MS_REC, null, $"rootfs {plan.Rootfs}");
            return;
        }
        var prop = plan.Spec.Linux?.RootfsPropagation is { Length: > 0 } rp ? MountOptions.Propagation[rp] : MS_SLAVE | MS_REC;
        // The spawning thread already made "/" rslave in this new mount namespace (to protect the
        // runtime binary); only a different propagation needs another pass over the mount tree.
        if (prop != (MS_SLAVE | MS_REC) || !plan.RootSlaveDone)
            Sys.Mount(null, "/", null, prop, null, "/ (set propagation)");
        // pivot_root refuses a new root under a shared parent mount (rootfsPropagation "shared"):
        // make the rootfs' parent mount private in this namespace before binding it, as runc does.
        if ((prop & MS_SHARED) != 0 && ContainerInit.ParentMountPoint(plan.Rootfs) is { } parent)
            Sys.Mount(null, parent, null, MS_PRIVATE, null, $"{parent} (private, for pivot_root)");
        // The rootfs must be a mount point of its own for pivot_root, and private enough that the
        // mounts made under it do not reach the host.
        Sys.Mount(plan.Rootfs, plan.Rootfs, null, MS_BIND | MS_REC, null, $"rootfs {plan.Rootfs}");
    }

    public void MountAll()
    {
        foreach (var m in _spec.Mounts ?? [])
            MountOne(m);
    }

    void MountOne(Mount m)
    {
        var o = MountOptions.Parse(m.Options);
        var bind = m.Type == "bind" || o.Bind;
        if (m.Type == "cgroup") { MountCgroup(m, o); return; }

        string? source = m.Source;
        var srcIsDir = true;
        if (bind)
        {
            source = Path.IsPathRooted(source!) ? source : Path.GetFullPath(Path.Combine(plan.Bundle, source!));
            srcIsDir = Directory.Exists(source);
            if (!srcIsDir && !File.Exists(source)) throw Fail(m, $"source {source} does not exist");
        }
        using var target = RootfsPath.OpenOrCreate(root, m.Destination, file: bind && !srcIsDir);
        var t = RootfsPath.ProcFdPath(target);
        if (bind)
        {
            Mount(m, source, t, null, MS_BIND | (o.Recursive ? MS_REC : 0), null);
            // Bind mounts ignore most flags on the first call: apply them with a remount.
            var extra = o.Flags & ~(MS_REMOUNT | MS_BIND | MS_REC);
            if (extra != 0)
            {
                // Reopen the target: the fd names the mount underneath, not the new bind.
                using var t2 = RootfsPath.OpenOrCreate(root, m.Destination, file: !srcIsDir);
                var locked = LockedFlags(RootfsPath.ProcFdPath(t2));
                Mount(m, null, RootfsPath.ProcFdPath(t2), null, MS_BIND | MS_REMOUNT | extra | locked, null);
            }
        }
        else if (m.Type == "sysfs" && plan.UserNs)
        {
            if (mount(source ?? m.Type, t, m.Type, o.Flags & ~MS_REMOUNT, o.Data.Length == 0 ? null : o.Data) != 0)
            {
                var e = Marshal.GetLastPInvokeError();
                if (e != Errno.EPERM) throw new RuntimeException(ErrorKind.InvalidArgument, $"mount {source ?? m.Type} to {m.Destination}: {Errno.Describe(e)}");
                // sysfs needs a network namespace owned by the container's user namespace; with the
                // host's network namespace bind the host's /sys instead (as runc does), then apply the flags.
                Mount(m, "/sys", t, null, MS_BIND | MS_REC, null);
                using var t2 = RootfsPath.OpenOrCreate(root, m.Destination, file: false);
                var p2 = RootfsPath.ProcFdPath(t2);
                Mount(m, null, p2, null, MS_BIND | MS_REMOUNT | (o.Flags & ~(MS_REMOUNT | MS_BIND | MS_REC)) | LockedFlags(p2), null);
            }
        }
        else
        {
            Mount(m, source ?? m.Type, t, m.Type, o.Flags & ~MS_REMOUNT, o.Data.Length == 0 ? null : o.Data);
        }
        if (o.Propagation != 0)
        {
            using var t3 = RootfsPath.OpenOrCreate(root, m.Destination, file: bind && !srcIsDir);
            Mount(m, null, RootfsPath.ProcFdPath(t3), null, o.Propagation, null);
        }
    }

    /// <summary>Flags the kernel keeps locked on an existing mount (nosuid/nodev/noexec/ro inherited
    /// from a host bind source) must be repeated in a remount or it fails with EPERM.</summary>
    static ulong LockedFlags(string path)
    {
        StatVfs st;
        if (statvfs(path, &st) != 0) return 0;
        ulong f = 0;
        const ulong ST_NOSUID = 2, ST_NODEV = 4, ST_NOEXEC = 8;
        if ((st.Flag & ST_NOSUID) != 0) f |= MS_NOSUID;
        if ((st.Flag & ST_NODEV) != 0) f |= MS_NODEV;
        if ((st.Flag & ST_NOEXEC) != 0) f |= MS_NOEXEC;
        return f;
    }

    void MountCgroup(Mount m, ParsedMount o)
    {
        using var target = RootfsPath.OpenOrCreate(root, m.Destination, file: false);
        var t = RootfsPath.ProcFdPath(target);
        var flags = o.Flags & ~(MS_REMOUNT | MS_RDONLY);
        if (plan.CgroupV2Path is not null && plan.CgroupMounts.Count == 0)
        {
            // Pure v2: with a cgroup namespace mount cgroup2 directly, else bind the container's dir.
            if (plan.NewCgroupNs) Mount(m, "cgroup", t, "cgroup2", o.Flags, null);
            else
            {
                Mount(m, plan.CgroupV2Path, t, null, MS_BIND | MS_REC, null);
                if ((o.Flags & MS_RDONLY) != 0) Mount(m, null, t, null, MS_BIND | MS_REMOUNT | MS_RDONLY | flags, null);
            }
            return;
        }
        // v1 / hybrid: a tmpfs with one directory per hierarchy holding the container's cgroup.
        Mount(m, "tmpfs", t, "tmpfs", flags, "mode=755");
        foreach (var h in plan.CgroupMounts)
        {
            using var dir = RootfsPath.OpenOrCreate(root, Path.Combine(m.Destination, h.Name), file: false);
            Mount(m, h.HostPath, RootfsPath.ProcFdPath(dir), null, MS_BIND | MS_REC, null);
            // The fd names the directory under the new bind mount: reopen to reach the mount itself.
            using (var bound = RootfsPath.OpenOrCreate(root, Path.Combine(m.Destination, h.Name), file: false))
                Mount(m, null, RootfsPath.ProcFdPath(bound), null, MS_BIND | MS_REMOUNT | flags | ((o.Flags & MS_RDONLY) != 0 ? MS_RDONLY : 0), null);
            // "cpu,cpuacct" is also reachable as "cpu" and "cpuacct", as on a host.
            if (h.Name.Contains(','))
                foreach (var part in h.Name.Split(','))
                {
                    var link = Path.Combine(m.Destination, part).TrimStart('/');
                    if (RootfsPath.TryOpen(root, link) is { } existing) { existing.Dispose(); continue; }
                    using var parent = RootfsPath.OpenOrCreate(root, m.Destination, file: false);
                    symlinkat(h.Name, parent.Value, part);
                }
        }
        if ((o.Flags & MS_RDONLY) != 0)
        {
            using var t2 = RootfsPath.OpenOrCreate(root, m.Destination, file: false);
            Mount(m, null, RootfsPath.ProcFdPath(t2), null, MS_REMOUNT | MS_RDONLY | flags, "mode=755");
        }
    }

    static readonly (string Path, long Major, long Minor)[] DefaultDevices =
    [
        ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7), ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
    ];

    /// <summary>Creates the default device nodes and linux.devices, unless /dev is bind-mounted from the host.</summary>
    public void CreateDevices()
    {
        var devBound = (_spec.Mounts ?? []).Any(m => Norm(m.Destination) == "/dev" && (m.Type == "bind" || MountOptions.Parse(m.Options).Bind));
        if (devBound) return;
        if (plan.UserNs)
        {
            // mknod is not permitted in a user namespace: bind the host's nodes instead, as runc does
            // (the host's mode and owner show through).
            foreach (var (p, _, _) in DefaultDevices) BindNode(p);
            foreach (var d in _spec.Linux?.Devices ?? []) BindNode(d.Path);
        }
        else
        {
            foreach (var (p, maj, min) in DefaultDevices)
                MakeNode(p, 'c', maj, min, 0x1b6, 0, 0);
            foreach (var d in _spec.Linux?.Devices ?? [])
                MakeNode(d.Path, d.Type[0], d.Major, d.Minor, d.FileMode ?? 0x1b6, d.Uid ?? 0, d.Gid ?? 0);
        }

        Symlink("/proc/self/fd", "/dev/fd");
        Symlink("/proc/self/fd/0", "/dev/stdin");
        Symlink("/proc/self/fd/1", "/dev/stdout");
        Symlink("/proc/self/fd/2", "/dev/stderr");
        if (File.Exists("/proc/kcore")) Symlink("/proc/kcore", "/dev/core");
        if (RootfsPath.TryOpen(root, "/dev/pts/ptmx") is { } ptmx)
        {
            ptmx.Dispose();
            if (RootfsPath.TryOpen(root, "/dev/ptmx") is { } old)
            {
                old.Dispose();
                using var dev = RootfsPath.OpenOrCreate(root, "/dev", file: false);
                unlinkat(dev.Value, "ptmx", 0);
            }
            Symlink("pts/ptmx", "/dev/ptmx");
        }
    }

    static string Norm(string p) => "/" + string.Join('/', RootfsPath.Components(p));

    void MakeNode(string path, char type, long major, long minor, uint mode, uint uid, uint gid)
    {
        var dir = Path.GetDirectoryName(path) ?? "/";
        using var parent = RootfsPath.OpenOrCreate(root, dir, file: false);
        var name = Path.GetFileName(path);
        unlinkat(parent.Value, name, 0); // replace whatever the image put there
        var kind = type switch { 'b' => S_IFBLK, 'p' => S_IFIFO, _ => S_IFCHR };
        var dev = type == 'p' ? 0 : MakeDev(major, minor);
        var old = umask(0);
        var rc = mknodat(parent.Value, name, kind | (mode & 0xfff), dev);
        var errno = Marshal.GetLastPInvokeError();
        umask(old);
        if (rc != 0) throw new SyscallException("mknod", path, errno);
        if (fchownat(parent.Value, name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0) throw SyscallException.Last("chown", path);
    }

    /// <summary>Binds the host's node at <paramref name="path"/> onto an empty file at the same path in the rootfs.</summary>
    void BindNode(string path)
    {
        if (!Path.Exists(path)) throw new RuntimeException(ErrorKind.InvalidArgument, $"device {path}: no such device on the host to bind in a user namespace");
        using (var parent = RootfsPath.OpenOrCreate(root, Path.GetDirectoryName(path) ?? "/", file: false))
            unlinkat(parent.Value, Path.GetFileName(path), 0); // replace whatever the image put there
        using var target = RootfsPath.OpenOrCreate(root, path, file: true);
        if (mount(path, RootfsPath.ProcFdPath(target), null, MS_BIND, null) != 0)
            throw new SyscallException("mount", $"device {path} (bind)", Marshal.GetLastPInvokeError());
    }

    void Symlink(string target, string link)
    {
        using var parent = RootfsPath.OpenOrCreate(root, Path.GetDirectoryName(link)!, file: false);
        var name = Path.GetFileName(link);
        if (symlinkat(target, parent.Value, name) != 0 && Marshal.GetLastPInvokeError() != Errno.EEXIST)
            throw SyscallException.Last("symlink", link);
    }

    void Mount(Mount m, string? source, string target, string? type, ulong flags, string? data)
    {
        if (mount(source, target, type, flags, data) != 0)
        {
            var e = Marshal.GetLastPInvokeError();
            var hint = e == Errno.ENODEV && type is not null ? $" (unknown filesystem type \"{type}\")" : "";
            throw new RuntimeException(ErrorKind.InvalidArgument, $"mount {source ?? m.Type} to {m.Destination}: {Errno.Describe(e)}{hint}");
        }
    }

    static RuntimeException Fail(Mount m, string why) => new(ErrorKind.InvalidArgument, $"mount {m.Destination}: {why}");

    [StructLayout(LayoutKind.Sequential)]
    struct StatVfs
    {
        public ulong Bsize, Frsize, Blocks, Bfree, Bavail, Files, Ffree, Favail, Fsid, Flag, Namemax;
        public unsafe fixed int Spare[6];
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int statvfs(string path, StatVfs* buf);
}
