using System.Runtime.InteropServices;
using System.Text;
using static Berth.Linux.Interop.Libc;

namespace Berth.Linux;

/// <summary>The metadata of one file as lstat reports it.</summary>
public readonly record struct FileStat(uint Mode, uint Uid, uint Gid, long Size, ulong Ino, uint Nlink,
    uint DevMajor, uint DevMinor, uint RdevMajor, uint RdevMinor, long MtimeSec, uint MtimeNsec, long AtimeSec, uint AtimeNsec)
{
    public uint Type => Mode & S_IFMT;
    public bool IsDirectory => Type == S_IFDIR;
    public bool IsSymlink => Type == S_IFLNK;
    public bool IsRegular => Type == S_IFREG;
}

/// <summary>
/// Operations on one name inside a directory fd, never following a symlink in the final component
/// (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW, or the procfs path of the parent plus l* calls). Callers resolve
/// the directory safely first (<see cref="RootfsPath"/>). "Try" calls return 0 or an errno for the
/// outcomes a caller handles (EEXIST, ENOENT); the rest throw naming the call and path.
/// </summary>
public static unsafe class FileAt
{
    static string Where(Fd dir, string name) => $"{name} (in fd {dir.Value})";

    static int Err() => Marshal.GetLastPInvokeError();

    public static int TryMkdir(Fd dir, string name, uint mode) => mkdirat(dir.Value, name, mode) == 0 ? 0 : Err();

    /// <summary>Creates a new regular file (O_EXCL|O_NOFOLLOW) open for writing; null with errno on failure.</summary>
    public static Fd? TryCreate(Fd dir, string name, uint mode, out int errno)
    {
        var fd = openat(dir.Value, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        errno = fd < 0 ? Err() : 0;
        return fd < 0 ? null : new Fd(fd);
    }

    /// <summary>Opens an existing directory (not a symlink to one) for reading and fd-based metadata calls.</summary>
    public static Fd OpenDirectory(Fd dir, string name)
    {
        var fd = openat(dir.Value, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
        if (fd < 0) throw SyscallException.Last("openat", name);
        return new Fd(fd);
    }

    public static Fd OpenRead(Fd dir, string name)
    {
        var fd = openat(dir.Value, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
        if (fd < 0) throw SyscallException.Last("openat", name);
        return new Fd(fd);
    }

    public static int TrySymlink(string target, Fd dir, string name) => symlinkat(target, dir.Value, name) == 0 ? 0 : Err();

    public static int TryLink(Fd fromDir, string fromName, Fd dir, string name) =>
        linkat(fromDir.Value, fromName, dir.Value, name, 0) == 0 ? 0 : Err();

    /// <summary>Hard-links an existing path (not following a final symlink) as dir/name.</summary>
    public static int TryLink(string from, Fd dir, string name) =>
        linkat(AT_FDCWD, from, dir.Value, name, 0) == 0 ? 0 : Err();

    public static string? ReadLink(Fd dir, string name)
    {
        var buf = stackalloc byte[4096];
        var n = readlinkat(dir.Value, name, buf, 4096);
        if (n < 0) throw SyscallException.Last("readlinkat", name);
        return Encoding.UTF8.GetString(buf, (int)n);
    }

    public static int TryMknod(Fd dir, string name, uint mode, uint major, uint minor) =>
        mknodat(dir.Value, name, mode, MakeDev(major, minor)) == 0 ? 0 : Err();

    public static int TryUnlink(Fd dir, string name, bool directory = false) =>
        unlinkat(dir.Value, name, directory ? AT_REMOVEDIR : 0) == 0 ? 0 : Err();

    public static void Chown(Fd dir, string name, uint uid, uint gid)
    {
        if (fchownat(dir.Value, name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0) throw SyscallException.Last("lchown", name);
    }

    public static void Chown(Fd fd, uint uid, uint gid, string what)
    {
        if (fchown(fd.Value, uid, gid) != 0) throw SyscallException.Last("fchown", what);
    }

    public static void Chmod(Fd fd, uint mode, string what)
    {
        if (fchmod(fd.Value, mode) != 0) throw SyscallException.Last("fchmod", what);
    }

    /// <summary>chmod of a non-symlink by name (fails rather than follow a symlink).</summary>
    public static void Chmod(Fd dir, string name, uint mode)
    {
        if (fchmodat(dir.Value, name, mode, AT_SYMLINK_NOFOLLOW) != 0) throw SyscallException.Last("fchmodat", name);
    }

    public static void SetTimes(Fd dir, string name, long atimeSec, uint atimeNsec, long mtimeSec, uint mtimeNsec)
    {
        var ts = stackalloc Timespec[2];
        ts[0] = new Timespec { Sec = atimeSec, Nsec = atimeNsec };
        ts[1] = new Timespec { Sec = mtimeSec, Nsec = mtimeNsec };
        if (utimensat(dir.Value, name, ts, AT_SYMLINK_NOFOLLOW) != 0) throw SyscallException.Last("utimensat", name);
    }

    public static void SetTimes(Fd fd, long atimeSec, uint atimeNsec, long mtimeSec, uint mtimeNsec, string what)
    {
        var ts = stackalloc Timespec[2];
        ts[0] = new Timespec { Sec = atimeSec, Nsec = atimeNsec };
        ts[1] = new Timespec { Sec = mtimeSec, Nsec = mtimeNsec };
        if (futimens(fd.Value, ts) != 0) throw SyscallException.Last("futimens", what);
    }

    public static void SetXattr(Fd fd, string attr, ReadOnlySpan<byte> value, string what)
    {
        fixed (byte* p = value)
            if (fsetxattr(fd.Value, attr, p, value.Length, 0) != 0) throw SyscallException.Last("fsetxattr", $"{what} {attr}");
    }

    /// <summary>Sets an xattr on the name itself (a symlink or device node): lsetxattr through the
    /// parent's procfs path, so only the final component is looked up, and not followed.</summary>
    public static void SetXattr(Fd dir, string name, string attr, ReadOnlySpan<byte> value)
    {
        fixed (byte* p = value)
            if (lsetxattr($"/proc/self/fd/{dir.Value}/{name}", attr, p, value.Length, 0) != 0) throw SyscallException.Last("lsetxattr", $"{name} {attr}");
    }

    /// <summary>The xattrs of a name (not following it); empty when the filesystem has none.</summary>
    public static List<KeyValuePair<string, byte[]>> ListXattrs(string path) =>
        ReadXattrs(path, (l, n) => llistxattr(path, l, n), (k, v, n) => lgetxattr(path, k, v, n));

    /// <summary>The xattrs of an open file.</summary>
    public static List<KeyValuePair<string, byte[]>> ListXattrs(Fd fd, string what) =>
        ReadXattrs(what, (l, n) => flistxattr(fd.Value, l, n), (k, v, n) => fgetxattr(fd.Value, k, v, n));

    delegate nint ListFn(byte* list, nint size);
    delegate nint GetFn(string name, byte* value, nint size);

    static List<KeyValuePair<string, byte[]>> ReadXattrs(string what, ListFn list, GetFn get)
    {
        var result = new List<KeyValuePair<string, byte[]>>();
        var size = list(null, 0);
        if (size <= 0) return result;
        var names = new byte[size];
        fixed (byte* l = names) size = list(l, size);
        if (size < 0) throw SyscallException.Last("listxattr", what);
        foreach (var n in Encoding.UTF8.GetString(names, 0, (int)size).Split('\0', StringSplitOptions.RemoveEmptyEntries))
        {
            var vs = get(n, null, 0);
            if (vs < 0) continue;
            var v = new byte[vs];
            fixed (byte* pv = v) vs = get(n, pv, vs);
            if (vs >= 0) result.Add(new(n, v.AsSpan(0, (int)vs).ToArray()));
        }
        return result;
    }

    public static void SetXattr(string path, string attr, ReadOnlySpan<byte> value)
    {
        fixed (byte* p = value)
            if (lsetxattr(path, attr, p, value.Length, 0) != 0) throw SyscallException.Last("lsetxattr", $"{path} {attr}");
    }

    /// <summary>Takes an exclusive flock on a lock file (created if missing); released when the Fd is disposed.</summary>
    public static Fd Lock(string path)
    {
        var fd = Sys.Open(path, O_RDWR | O_CREAT, 0x180);
        while (flock(fd.Value, LOCK_EX) != 0)
        {
            var e = Err();
            if (e == Errno.EINTR) continue;
            fd.Dispose();
            throw new SyscallException("flock", path, e);
        }
        return fd;
    }

    public static FileStat? TryStat(Fd dir, string name) => TryStat(dir.Value, name);

    public static FileStat? TryStat(string path) => TryStat(AT_FDCWD, path);

    static FileStat? TryStat(int dirfd, string name)
    {
        Statx st;
        if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | (name.Length == 0 ? AT_EMPTY_PATH : 0), STATX_BASIC_STATS, &st) != 0)
        {
            var e = Err();
            if (e is Errno.ENOENT or Errno.ENOTDIR) return null;
            throw new SyscallException("statx", name, e);
        }
        return new FileStat(st.Mode, st.Uid, st.Gid, (long)st.Size, st.Ino, st.Nlink, st.DevMajor, st.DevMinor,
            st.RdevMajor, st.RdevMinor, st.Mtime.Sec, st.Mtime.Nsec, st.Atime.Sec, st.Atime.Nsec);
    }

    public static void WriteAll(Fd fd, ReadOnlySpan<byte> data, string what) => Sys.WriteAll(fd.Value, data, what);

    /// <summary>Removes a name; a directory with all it holds (symlinks inside are unlinked, never followed).</summary>
    public static void RemoveAll(Fd dir, string name)
    {
        var r = TryUnlink(dir, name);
        if (r == 0 || r == Errno.ENOENT) return;
        if (r != Errno.EISDIR && r != Errno.EPERM) throw new SyscallException("unlinkat", name, r);
        using (var sub = OpenDirectory(dir, name))
            foreach (var child in ListNames(sub))
                RemoveAll(sub, child);
        r = TryUnlink(dir, name, directory: true);
        if (r != 0 && r != Errno.ENOENT) throw new SyscallException("rmdir", name, r);
    }

    /// <summary>The names in an open directory (getdents64), without "." and "..".</summary>
    public static List<string> ListNames(Fd dirFd)
    {
        var names = new List<string>();
        var buf = new byte[32 * 1024];
        // getdents continues from the fd's offset: use a private read fd for the walk.
        var fd = openat(dirFd.Value, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
        if (fd < 0) throw SyscallException.Last("openat", "directory to list");
        try
        {
            fixed (byte* p = buf)
            {
                while (true)
                {
                    var n = syscall(SYS_getdents64, fd, (long)p, buf.Length, 0, 0, 0);
                    if (n < 0) throw SyscallException.Last("getdents64");
                    if (n == 0) break;
                    var off = 0;
                    while (off < n)
                    {
                        var reclen = *(ushort*)(p + off + 16);
                        var nameStart = p + off + 19;
                        var len = 0;
                        while (nameStart[len] != 0) len++;
                        var s = Encoding.UTF8.GetString(nameStart, len);
                        if (s != "." && s != "..") names.Add(s);
                        off += reclen;
                    }
                }
            }
        }
        finally { close(fd); }
        return names;
    }

    /// <summary>Atomically renames; with <paramref name="noReplace"/> an existing target is EEXIST (returned).</summary>
    public static int TryRename(string from, string to, bool noReplace) =>
        renameat2(AT_FDCWD, from, AT_FDCWD, to, noReplace ? RENAME_NOREPLACE : 0) == 0 ? 0 : Err();

    // linux/fs.h: the inode flags chattr/lsattr show (FS_IOC_GETFLAGS/SETFLAGS pass an int).
    const ulong FS_IOC_GETFLAGS = 0x80086601, FS_IOC_SETFLAGS = 0x40086602;

    /// <summary>FS_TOPDIR_FL (chattr +T): the directory is the top of unrelated hierarchies, so ext2/3/4's
    /// Orlov allocator spreads each new subdirectory over the disk as it does the root's.</summary>
    public const int FS_TOPDIR_FL = 0x00020000;

    /// <summary>Reads a file's inode flags; 0, or an errno (ENOTTY/EOPNOTSUPP where the file system has none).</summary>
    public static int TryGetInodeFlags(string path, out int flags)
    {
        flags = 0;
        var fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, 0);
        if (fd < 0) return Err();
        try
        {
            int f = 0;
            if (ioctl(fd, FS_IOC_GETFLAGS, &f) != 0) return Err();
            flags = f;
            return 0;
        }
        finally { close(fd); }
    }

    /// <summary>Adds inode flags to a file (FS_IOC_SETFLAGS after reading the current ones); 0 when they
    /// are set (already or now), or an errno: ENOTTY/EOPNOTSUPP where the file system has no such flag.</summary>
    public static int TryAddInodeFlags(string path, int add)
    {
        var fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, 0);
        if (fd < 0) return Err();
        try
        {
            int f = 0;
            if (ioctl(fd, FS_IOC_GETFLAGS, &f) != 0) return Err();
            if ((f & add) == add) return 0;
            f |= add;
            return ioctl(fd, FS_IOC_SETFLAGS, &f) == 0 ? 0 : Err();
        }
        finally { close(fd); }
    }

    /// <summary>Copies a regular file's data: a reflink (FICLONE) where the filesystem shares extents,
    /// else copy_file_range in the kernel.</summary>
    public static void CopyData(Fd src, Fd dst, long size, string what)
    {
        if (size == 0) return;
        if (ioctl(dst.Value, FICLONE, (void*)src.Value) == 0) return;
        long left = size;
        while (left > 0)
        {
            var n = copy_file_range(src.Value, null, dst.Value, null, (nint)Math.Min(left, 1L << 30), 0);
            if (n < 0)
            {
                var e = Err();
                if (e == Errno.EINTR) continue;
                throw new SyscallException("copy_file_range", what, e);
            }
            if (n == 0) break;
            left -= n;
        }
    }
}
