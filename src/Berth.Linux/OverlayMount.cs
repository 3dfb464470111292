using System.Text;
using static Berth.Linux.Interop.Libc;

namespace Berth.Linux;

/// <summary>Mounts an overlay file system. mount(2) takes its options in one page, which limits the
/// number of lower layers; past that the new mount API adds lower layers one at a time
/// (fsconfig "lowerdir+", Linux 6.8+), which has no such limit.</summary>
public static unsafe class OverlayMount
{
    /// <summary>The option length mount(2) accepts (one page, less the NUL and some slack).</summary>
    public const int MaxDataLength = 4000;

    public static void Mount(IReadOnlyList<string> lowers, string? upper, string? work, string target, IEnumerable<string>? extra = null)
    {
        if (lowers.Count == 0) throw new ArgumentException("overlay needs at least one lower directory");
        foreach (var l in lowers)
            if (l.Contains(':') || l.Contains(',')) throw new ArgumentException($"overlay lower directory \"{l}\" contains ':' or ','");
        var opts = new List<string> { "lowerdir=" + string.Join(':', lowers) };
        if (upper != null) opts.Add("upperdir=" + upper);
        if (work != null) opts.Add("workdir=" + work);
        if (extra != null) opts.AddRange(extra);
        var data = string.Join(',', opts);
        if (data.Length <= MaxDataLength)
        {
            Sys.Mount("overlay", target, "overlay", 0, data, $"overlay on {target}");
            return;
        }
        int fs;
        fixed (byte* name = Z("overlay")) fs = (int)syscall(SYS_fsopen, (long)name, FSOPEN_CLOEXEC, 0, 0, 0, 0);
        if (fs < 0) throw SyscallException.Last("fsopen", "overlay");
        using var fsFd = new Fd(fs);
        Config(fs, "source", "overlay");
        foreach (var l in lowers) Config(fs, "lowerdir+", l);
        if (upper != null) Config(fs, "upperdir", upper);
        if (work != null) Config(fs, "workdir", work);
        foreach (var o in extra ?? [])
        {
            var eq = o.IndexOf('=');
            if (eq < 0) Flag(fs, o);
            else Config(fs, o[..eq], o[(eq + 1)..]);
        }
        if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, 0, 0, 0, 0) < 0) throw SyscallException.Last("fsconfig", $"create overlay for {target}");
        var mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0, 0, 0, 0);
        if (mnt < 0) throw SyscallException.Last("fsmount", target);
        using var mntFd = new Fd(mnt);
        fixed (byte* empty = Z(""), t = Z(target))
            if (syscall(SYS_move_mount, mnt, (long)empty, AT_FDCWD, (long)t, MOVE_MOUNT_F_EMPTY_PATH, 0) < 0)
                throw SyscallException.Last("move_mount", target);
    }

    static void Config(int fs, string key, string value)
    {
        fixed (byte* k = Z(key), v = Z(value))
            if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, (long)k, (long)v, 0, 0) < 0)
                throw SyscallException.Last("fsconfig", $"{key}={value}");
    }

    static void Flag(int fs, string key)
    {
        fixed (byte* k = Z(key))
            if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, (long)k, 0, 0, 0) < 0)
                throw SyscallException.Last("fsconfig", key);
    }

    static byte[] Z(string s) => Encoding.UTF8.GetBytes(s + "\0");

    public static void Unmount(string target, bool detach = false)
    {
        if (umount2(target, detach ? MNT_DETACH : 0) != 0) throw SyscallException.Last("umount", target);
    }
}
