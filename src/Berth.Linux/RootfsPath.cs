using static Berth.Linux.Interop.Libc;

namespace Berth.Linux;

/// <summary>Resolves paths inside a container rootfs against a directory fd with openat2
/// RESOLVE_IN_ROOT, so symlinks in the image can never lead out of it (CVE-2021-30465 class).
/// Missing components are created one at a time, each under a parent that was itself resolved
/// inside the root.</summary>
public static class RootfsPath
{
    const ulong Resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

    public static string[] Components(string path) =>
        path.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(c => c != ".").ToArray();

    /// <summary>Opens <paramref name="path"/> (relative to the root) as an O_PATH fd; null if missing.</summary>
    public static Fd? TryOpen(Fd root, string path)
    {
        var rel = string.Join('/', Components(path));
        if (rel.Length == 0) rel = ".";
        var rc = Sys.OpenAt2(root.Value, rel, (ulong)O_PATH, Resolve, out var fd);
        if (rc == -Errno.ENOENT) return null;
        if (rc < 0) throw new SyscallException("openat2", path, -rc);
        return fd;
    }

    /// <summary>Opens the path inside root, creating missing directories (0755) and, when
    /// <paramref name="file"/> is set, an empty final file. Returns an O_PATH fd.</summary>
    public static Fd OpenOrCreate(Fd root, string path, bool file, uint dirMode = 0x1ed) =>
        OpenOrCreate(root, path, file, dirMode, 0);

    /// <summary>Opens the directory at <paramref name="path"/> inside root as an O_PATH fd, resolved
    /// in-root (symlinks on the way stay inside). Missing directories are created (0755) when
    /// <paramref name="create"/> is set; otherwise null. A non-directory on the way is ENOTDIR.</summary>
    public static Fd? OpenDirectory(Fd root, string relPath, bool create)
    {
        var rel = relPath.Length == 0 ? "." : relPath;
        var rc = Sys.OpenAt2(root.Value, rel, (ulong)(O_PATH | O_DIRECTORY), Resolve, out var fd);
        if (rc == 0) return fd;
        if (rc != -Errno.ENOENT) throw new SyscallException("openat2", relPath, -rc);
        if (!create) return null;
        OpenOrCreate(root, relPath, file: false).Dispose();
        rc = Sys.OpenAt2(root.Value, rel, (ulong)(O_PATH | O_DIRECTORY), Resolve, out fd);
        if (rc < 0) throw new SyscallException("openat2", relPath, -rc);
        return fd;
    }

    /// <summary>Reads a regular file inside root (resolved in-root, so an image's symlinks cannot
    /// point it at the host); null when missing. A FIFO, device or file over
    /// <paramref name="maxBytes"/> is an error rather than a blocking or endless read.</summary>
    public static byte[]? ReadFile(Fd root, string path, int maxBytes)
    {
        using var fd = TryOpen(root, path);
        if (fd is null) return null;
        var st = FileAt.TryStat(fd, "") ?? throw new SyscallException("statx", path, Errno.ENOENT);
        if (!st.IsRegular) throw new SyscallException("open", path + " (not a regular file)", Errno.EINVAL);
        if (st.Size > maxBytes) throw new SyscallException("read", $"{path} ({st.Size} bytes, limit {maxBytes})", Errno.EINVAL);
        using var f = Sys.Open(ProcFdPath(fd), O_RDONLY);
        var buf = new byte[st.Size];
        var off = 0;
        while (off < buf.Length)
        {
            var n = Sys.Read(f.Value, buf.AsSpan(off));
            if (n == 0) break;
            off += n;
        }
        return buf[..off];
    }

    /// <summary>Lexically cleans a path as the rootfs sees it: ".." never climbs above "/".</summary>
    public static string CleanInRoot(string path)
    {
        var stack = new List<string>();
        foreach (var c in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (c == ".") continue;
            if (c == "..") { if (stack.Count > 0) stack.RemoveAt(stack.Count - 1); continue; }
            stack.Add(c);
        }
        return "/" + string.Join('/', stack);
    }

    static unsafe string? ReadLinkAt(Fd dir, string name)
    {
        var buf = stackalloc byte[4096];
        var n = readlinkat(dir.Value, name, buf, 4096);
        return n < 0 ? null : System.Text.Encoding.UTF8.GetString(buf, (int)n);
    }

    static Fd OpenOrCreate(Fd root, string path, bool file, uint dirMode, int depth)
    {
        if (depth > 40) throw new SyscallException("openat2", path, Errno.ELOOP);
        var existing = TryOpen(root, path);
        if (existing != null) return existing;
        var comps = Components(path);
        // Usually only the last component is missing (dev/pts, sys/fs/cgroup/cpu): start the walk at
        // its parent, opened in-root as the walk would have reached it, and at the last component,
        // which TryOpen just found missing.
        var start = 0;
        Fd? up = null;
        if (comps.Length > 1 && Array.IndexOf(comps, "..") < 0
            && Sys.OpenAt2(root.Value, string.Join('/', comps, 0, comps.Length - 1), (ulong)O_PATH, Resolve, out up) == 0)
            start = comps.Length - 1;
        Fd parent = up ?? (Sys.OpenAt2(root.Value, ".", (ulong)O_PATH, Resolve, out var r) == 0 ? r! : throw new SyscallException("openat2", ".", Errno.EINVAL));
        try
        {
            for (var i = start; i < comps.Length; i++)
            {
                if (comps[i] == "..") throw new ArgumentException($"path \"{path}\" contains \"..\"");
                var prefix = string.Join('/', comps, 0, i + 1);
                Fd? next = null;
                var rc = i == start && start > 0 ? -Errno.ENOENT : Sys.OpenAt2(root.Value, prefix, (ulong)O_PATH, Resolve, out next);
                if (rc == -Errno.ENOENT)
                {
                    // A dangling symlink: follow it inside the root (as runc does) and create what
                    // it names there. The new path is resolved from the root again, in-root.
                    if (ReadLinkAt(parent, comps[i]) is { } target)
                    {
                        var rest = string.Join('/', comps, i + 1, comps.Length - i - 1);
                        var dir = string.Join('/', comps, 0, i);
                        var followed = CleanInRoot((target.StartsWith('/') ? target : "/" + dir + "/" + target) + "/" + rest);
                        parent.Dispose();
                        parent = null!;
                        return OpenOrCreate(root, followed, file, dirMode, depth + 1);
                    }
                    var last = i == comps.Length - 1;
                    if (last && file)
                    {
                        var f = openat(parent.Value, comps[i], O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0x1a4);
                        if (f < 0) throw SyscallException.Last("create", path);
                        close(f);
                    }
                    else if (mkdirat(parent.Value, comps[i], dirMode) != 0 && System.Runtime.InteropServices.Marshal.GetLastPInvokeError() != Errno.EEXIST)
                        throw SyscallException.Last("mkdir", path);
                    rc = Sys.OpenAt2(root.Value, prefix, (ulong)O_PATH, Resolve, out next);
                }
                if (rc < 0) throw new SyscallException("openat2", prefix, -rc);
                parent.Dispose();
                parent = next!;
            }
            var result = parent;
            parent = null!;
            return result;
        }
        finally { parent?.Dispose(); }
    }

    /// <summary>The path to use as a mount target for an O_PATH fd (a magic link the kernel follows).</summary>
    public static string ProcFdPath(Fd fd) => $"/proc/self/fd/{fd.Value}";

    public static bool IsDirectory(Fd fd)
    {
        try { return Directory.Exists(ProcFdPath(fd)); } catch (IOException) { return false; }
    }
}
