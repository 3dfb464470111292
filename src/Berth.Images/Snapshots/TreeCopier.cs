using Berth.Linux;
using static Berth.Linux.Interop.Libc;

namespace Berth.Images.Snapshots;

/// <summary>
/// Copies a directory tree exactly (types, owners, modes, times, xattrs, hard links, device nodes),
/// as the vfs driver does. File data is reflinked where the file system can share extents (btrfs,
/// xfs), else copied inside the kernel (copy_file_range). Symlinks are copied, never followed.
/// </summary>
public static class TreeCopier
{
    public static void Copy(string source, string destination)
    {
        using var src = Sys.Open(source, O_RDONLY | O_DIRECTORY);
        using var dst = Sys.Open(destination, O_RDONLY | O_DIRECTORY);
        var links = new Dictionary<(uint, uint, ulong), string>();
        CopyChildren(src, dst, destination, links);
        var st = FileAt.TryStat(src, "") ?? throw new DirectoryNotFoundException(source);
        CopyMetadata(src, dst, "", source, st);
    }

    static void CopyChildren(Fd src, Fd dst, string dstPath, Dictionary<(uint, uint, ulong), string> links)
    {
        foreach (var name in FileAt.ListNames(src))
        {
            var st = FileAt.TryStat(src, name);
            if (st is not { } s) continue;
            var path = dstPath + "/" + name;
            if (s.Nlink > 1 && !s.IsDirectory && links.TryGetValue((s.DevMajor, s.DevMinor, s.Ino), out var first))
            {
                var r = FileAt.TryLink(first, dst, name);
                if (r != 0) throw new SyscallException("linkat", path, r);
                continue;
            }
            switch (s.Type)
            {
                case S_IFDIR:
                {
                    var r = FileAt.TryMkdir(dst, name, 0x1c0);
                    if (r != 0) throw new SyscallException("mkdirat", path, r);
                    using var sd = FileAt.OpenDirectory(src, name);
                    using var dd = FileAt.OpenDirectory(dst, name);
                    CopyChildren(sd, dd, path, links);
                    CopyFdMetadata(sd, dd, path, s);
                    FileAt.SetTimes(dst, name, s.AtimeSec, s.AtimeNsec, s.MtimeSec, s.MtimeNsec);
                    continue;
                }
                case S_IFREG:
                {
                    using var sf = FileAt.OpenRead(src, name);
                    using var df = FileAt.TryCreate(dst, name, 0x180, out var err) ?? throw new SyscallException("openat", path, err);
                    FileAt.CopyData(sf, df, s.Size, path);
                    CopyFdMetadata(sf, df, path, s);
                    FileAt.SetTimes(df, s.AtimeSec, s.AtimeNsec, s.MtimeSec, s.MtimeNsec, path);
                    break;
                }
                case S_IFLNK:
                {
                    var r = FileAt.TrySymlink(FileAt.ReadLink(src, name)!, dst, name);
                    if (r != 0) throw new SyscallException("symlinkat", path, r);
                    CopyMetadata(src, dst, name, path, s);
                    break;
                }
                case S_IFCHR:
                case S_IFBLK:
                case S_IFIFO:
                {
                    var r = FileAt.TryMknod(dst, name, s.Type | 0x180, s.RdevMajor, s.RdevMinor);
                    if (r != 0) throw new SyscallException("mknodat", path, r);
                    CopyMetadata(src, dst, name, path, s);
                    break;
                }
                default:
                    continue; // sockets are not part of an image
            }
            if (s.Nlink > 1) links[(s.DevMajor, s.DevMinor, s.Ino)] = path;
        }
    }

    static void CopyFdMetadata(Fd sf, Fd df, string path, FileStat s)
    {
        FileAt.Chown(df, s.Uid, s.Gid, path);
        FileAt.Chmod(df, s.Mode & 0xfff, path);
        foreach (var (k, v) in FileAt.ListXattrs(sf, path))
            FileAt.SetXattr(df, k, v, path);
    }

    /// <summary>Metadata by name (symlinks, devices; "" for the directory itself).</summary>
    static void CopyMetadata(Fd src, Fd dst, string name, string path, FileStat s)
    {
        if (name.Length == 0)
        {
            CopyFdMetadata(src, dst, path, s);
            FileAt.SetTimes(dst, s.AtimeSec, s.AtimeNsec, s.MtimeSec, s.MtimeNsec, path);
            return;
        }
        FileAt.Chown(dst, name, s.Uid, s.Gid);
        if (!s.IsSymlink) FileAt.Chmod(dst, name, s.Mode & 0xfff);
        foreach (var (k, v) in FileAt.ListXattrs($"/proc/self/fd/{src.Value}/{name}"))
            FileAt.SetXattr(dst, name, k, v);
        FileAt.SetTimes(dst, name, s.AtimeSec, s.AtimeNsec, s.MtimeSec, s.MtimeNsec);
    }
}
