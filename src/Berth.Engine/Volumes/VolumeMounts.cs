using System.Runtime.InteropServices;
using Berth.Engine.Containers;
using Berth.Linux;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.Volumes;

/// <summary>
/// The mounts of volumes created with the local driver's options (type, device, o), as dockerd's
/// local driver makes them: the volume is mounted at its _data when the first container using it
/// starts and unmounted when the last one stops (each exit, restarts included, as dockerd's cleanup).
/// Daemonless, so the count is kept on disk: RUNROOT/volume-users/NAME/CONTAINER-ID holds the pid and
/// start time of that container's monitor, under a lock per volume. A user whose monitor is gone (killed,
/// or a reboot emptied the runroot) no longer counts; a mount found with no live user is stale and is
/// replaced by a fresh one.
/// </summary>
public static class VolumeMounts
{
    static string UsersDir(string runRoot, string name) => Path.Combine(runRoot, "volume-users", name);

    /// <summary>Mounts the container's volumes that have options (unless another container has them
    /// mounted) and records it as their user; an empty volume then gets the image's content, as docker
    /// copies it at each start. Called by the container's monitor (<paramref name="monitorPid"/>) before
    /// the runtime creates the container. On a failure nothing stays acquired.</summary>
    public static void Acquire(ContainerRecord c, string root, string runRoot, int monitorPid)
    {
        var store = new VolumeStore(root);
        var acquired = new List<string>();
        try
        {
            foreach (var name in VolumeNames(c))
            {
                var options = store.Options(name);
                if (options.Count == 0) continue;
                var data = store.DataPath(name);
                var users = UsersDir(runRoot, name);
                Directory.CreateDirectory(users);
                using (ContainerStore.LockFile(users + ".lock"))
                {
                    if (LiveUsers(users, except: c.Id) == 0)
                    {
                        if (MountInfo.IsMountPoint(data)) umount2(data, MNT_DETACH); // stale: nobody uses it
                        Mount(options, data);
                        foreach (var mp in c.Mounts.Where(m => m.Type == "volume" && m.Name == name && m.Mode != "nocopy"))
                            ContainerVolumes.FillIfEmpty(c, mp);
                    }
                    var start = ProcStat.Read(monitorPid)?.StartTime ?? 0;
                    File.WriteAllText(Path.Combine(users, c.Id), $"{monitorPid} {start}\n");
                    acquired.Add(name);
                }
            }
        }
        catch
        {
            Release(c, root, runRoot, acquired);
            throw;
        }
    }

    /// <summary>The container no longer uses its volumes: each one it was the last live user of is
    /// unmounted. Idempotent (every exit path may call it).</summary>
    public static void Release(ContainerRecord c, string root, string runRoot) => Release(c, root, runRoot, VolumeNames(c));

    static void Release(ContainerRecord c, string root, string runRoot, IEnumerable<string> names)
    {
        var store = new VolumeStore(root);
        foreach (var name in names)
        {
            var users = UsersDir(runRoot, name);
            if (!Directory.Exists(users)) continue;
            using (ContainerStore.LockFile(users + ".lock"))
            {
                File.Delete(Path.Combine(users, c.Id));
                if (LiveUsers(users, except: null) > 0) continue;
                var data = store.DataPath(name);
                if (MountInfo.IsMountPoint(data) && umount2(data, MNT_DETACH) != 0)
                    throw SyscallException.Last("umount", data);
            }
        }
    }

    /// <summary>Counts the users whose monitor still runs; the files of the others are removed.</summary>
    static int LiveUsers(string users, string? except)
    {
        var live = 0;
        foreach (var f in Directory.EnumerateFiles(users))
        {
            var id = Path.GetFileName(f);
            var parts = (TryRead(f) ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var alive = id != except && parts.Length == 2 && int.TryParse(parts[0], out var pid) && ulong.TryParse(parts[1], out var start)
                && ProcStat.Read(pid) is { } s && s.StartTime == start && s.State is not ('Z' or 'X');
            if (alive) live++;
            else File.Delete(f);
        }
        return live;
    }

    static string? TryRead(string path)
    {
        try { return File.ReadAllText(path); }
        catch (IOException) { return null; }
    }

    static IEnumerable<string> VolumeNames(ContainerRecord c) =>
        c.Mounts.Where(m => m.Type == "volume" && !string.IsNullOrEmpty(m.Name)).Select(m => m.Name!).Distinct(StringComparer.Ordinal);

    // ------------------------------------------------------------------ mount(8)-style options

    /// <summary>moby's mount flag table: option → (clears the flag instead of setting it, flag).</summary>
    static readonly Dictionary<string, (bool Clear, ulong Flag)> Flags = new(StringComparer.Ordinal)
    {
        ["defaults"] = (false, 0), ["ro"] = (false, MS_RDONLY), ["rw"] = (true, MS_RDONLY),
        ["suid"] = (true, MS_NOSUID), ["nosuid"] = (false, MS_NOSUID), ["dev"] = (true, MS_NODEV), ["nodev"] = (false, MS_NODEV),
        ["exec"] = (true, MS_NOEXEC), ["noexec"] = (false, MS_NOEXEC), ["sync"] = (false, MS_SYNCHRONOUS), ["async"] = (true, MS_SYNCHRONOUS),
        ["dirsync"] = (false, MS_DIRSYNC), ["remount"] = (false, MS_REMOUNT), ["mand"] = (false, MS_MANDLOCK), ["nomand"] = (true, MS_MANDLOCK),
        ["atime"] = (true, MS_NOATIME), ["noatime"] = (false, MS_NOATIME), ["diratime"] = (true, MS_NODIRATIME), ["nodiratime"] = (false, MS_NODIRATIME),
        ["bind"] = (false, MS_BIND), ["rbind"] = (false, MS_BIND | MS_REC), ["relatime"] = (false, MS_RELATIME), ["norelatime"] = (true, MS_RELATIME),
        ["strictatime"] = (false, MS_STRICTATIME), ["nostrictatime"] = (true, MS_STRICTATIME),
    };

    static readonly Dictionary<string, ulong> Propagation = new(StringComparer.Ordinal)
    {
        ["private"] = MS_PRIVATE, ["rprivate"] = MS_PRIVATE | MS_REC, ["shared"] = MS_SHARED, ["rshared"] = MS_SHARED | MS_REC,
        ["slave"] = MS_SLAVE, ["rslave"] = MS_SLAVE | MS_REC, ["unbindable"] = MS_UNBINDABLE, ["runbindable"] = MS_UNBINDABLE | MS_REC,
    };

    /// <summary>Splits `o` as mount(8) does: flags, propagation, and the rest as the filesystem's data.</summary>
    public static (ulong Flags, ulong Propagation, string Data) ParseOptions(string o)
    {
        ulong flags = 0, prop = 0;
        var data = new List<string>();
        foreach (var opt in o.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            if (Flags.TryGetValue(opt, out var f)) flags = f.Clear ? flags & ~f.Flag : flags | f.Flag;
            else if (Propagation.TryGetValue(opt, out var p)) prop |= p;
            else data.Add(opt);
        }
        return (flags, prop, string.Join(',', data));
    }

    /// <summary>Mounts the volume's device at <paramref name="target"/> (dockerd's errors: "failed to
    /// mount local volume: mount DEVICE:TARGET, flags: 0x…: …").</summary>
    static void Mount(Dictionary<string, string> options, string target)
    {
        var device = options.GetValueOrDefault("device") ?? "";
        var type = options.GetValueOrDefault("type") ?? "";
        if (device.Length == 0) throw Failed(target, "missing device in volume options");
        var (flags, prop, data) = ParseOptions(options.GetValueOrDefault("o") ?? "");
        if ((flags & MS_REMOUNT) == 0 || data.Length > 0)
        {
            if (mount(device, target, type, flags, data.Length == 0 ? null : data) != 0)
                throw Failed(target, MountError(device, target, flags, data, Marshal.GetLastPInvokeError()));
        }
        if (prop != 0 && mount("", target, null, prop, null) != 0)
            throw Failed(target, MountError("", target, prop, "", Marshal.GetLastPInvokeError()));
        // a read-only bind needs a remount (the kernel ignores MS_RDONLY on the bind itself)
        if ((flags & (MS_BIND | MS_RDONLY)) == (MS_BIND | MS_RDONLY) && mount("", target, null, flags | MS_REMOUNT, null) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            umount2(target, MNT_DETACH);
            throw Failed(target, MountError("", target, flags | MS_REMOUNT, "", errno));
        }
    }

    static EngineException Failed(string data, string why) =>
        new(ErrorKind.FailedPrecondition, $"error while mounting volume '{data}': failed to mount local volume: {why}");

    static string MountError(string source, string target, ulong flags, string data, int errno) =>
        "mount " + (source.Length > 0 ? source + ":" + target : target)
        + (flags != 0 ? $", flags: 0x{flags:x}" : "")
        + (data.Length > 0 ? ", data: " + data : "")
        + ": " + GoErrno(errno);

    /// <summary>An errno as Go's syscall package words it (strerror with a lower-case first letter).</summary>
    static string GoErrno(int errno)
    {
        var m = Marshal.GetPInvokeErrorMessage(errno);
        return m.Length > 0 ? char.ToLowerInvariant(m[0]) + m[1..] : $"errno {errno}";
    }
}
