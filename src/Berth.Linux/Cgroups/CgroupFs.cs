using System.Runtime.InteropServices;
using System.Text;
using Berth.Linux.Interop;

namespace Berth.Linux.Cgroups;

/// <summary>
/// The one place that writes cgroup files, creates and removes cgroup directories. Reads are one
/// open/read/close (<see cref="Sys.TryReadText"/>): no FileStream, no advisory lock.
/// </summary>
internal static class CgroupFs
{
    /// <summary>
    /// Writes <paramref name="value"/> to an existing file in one write(2). The file is opened
    /// O_WRONLY|O_CLOEXEC|O_TRUNC without O_CREAT: a missing file is an error, never created. O_TRUNC
    /// is a no-op on cgroupfs (kernfs) and makes regular-file fixtures hold exactly the last value.
    /// </summary>
    public static unsafe void Write(string path, string value)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(value);
        int fd = Libc.open(path, Libc.O_WRONLY | Libc.O_CLOEXEC | Libc.O_TRUNC, 0u);
        if (fd < 0) throw WriteError(path, value, Marshal.GetLastPInvokeError());
        try
        {
            nint n;
            fixed (byte* p = bytes)
            {
                do n = Libc.write(fd, p, bytes.Length);
                while (n < 0 && Marshal.GetLastPInvokeError() == Errno.EINTR);
            }
            if (n < 0) throw WriteError(path, value, Marshal.GetLastPInvokeError());
            // cgroup files take a value in one write; a short write means it was not applied whole.
            if (n != bytes.Length)
                throw new CgroupException($"writing \"{value}\" to {path}: short write ({n} of {bytes.Length} bytes)", path);
        }
        finally
        {
            Libc.close(fd);
        }
    }

    static CgroupException WriteError(string path, string value, int errno) =>
        new($"writing \"{value}\" to {path}: {Errno.Describe(errno)}", path, errno);

    /// <summary>mkdir(2) with mode 0755; returns false when it already existed.</summary>
    public static bool Mkdir(string path)
    {
        if (Libc.mkdir(path, 0x1ed) == 0) return true;
        int errno = Marshal.GetLastPInvokeError();
        if (errno == Errno.EEXIST && Directory.Exists(path)) return false;
        throw new CgroupException($"mkdir {path}: {Errno.Describe(errno)}", path, errno);
    }

    /// <summary>mkdir(2) with mode 0755 of a directory whose parent usually exists: true when made,
    /// false when it already existed, null when the parent is missing (ENOENT).</summary>
    public static bool? MkdirIfParentExists(string path)
    {
        if (Libc.mkdir(path, 0x1ed) == 0) return true;
        int errno = Marshal.GetLastPInvokeError();
        if (errno == Errno.ENOENT) return null;
        if (errno == Errno.EEXIST && Directory.Exists(path)) return false;
        throw new CgroupException($"mkdir {path}: {Errno.Describe(errno)}", path, errno);
    }

    /// <summary>
    /// rmdir(2), retrying while the kernel reports EBUSY (a cgroup stays busy for a moment after its
    /// last process exits). Returns false when the directory was already gone.
    /// </summary>
    public static bool Rmdir(string path, TimeSpan busyTimeout)
    {
        var deadline = DateTime.UtcNow + busyTimeout;
        int delayMs = 10;
        while (true)
        {
            if (Libc.rmdir(path) == 0) return true;
            int errno = Marshal.GetLastPInvokeError();
            if (errno == Errno.ENOENT) return false;
            if (errno != Errno.EBUSY || DateTime.UtcNow >= deadline)
                throw new CgroupException($"rmdir {path}: {Errno.Describe(errno)}", path, errno);
            Thread.Sleep(delayMs);
            delayMs = Math.Min(delayMs * 2, 200);
        }
    }

    /// <summary>Reads a file and trims the trailing newline; throws a <see cref="CgroupException"/>.</summary>
    public static string Read(string path) =>
        Sys.TryReadText(path, out var errno) is { } text ? text.TrimEnd('\n', ' ')
            : throw new CgroupException($"reading {path}: {Errno.Describe(errno)}", path, errno);

    /// <summary>Reads a file, or returns null when it does not exist.</summary>
    public static string? TryRead(string path)
    {
        if (Sys.TryReadText(path, out var errno) is { } text) return text.TrimEnd('\n', ' ');
        if (errno is Errno.ENOENT or Errno.ENOTDIR) return null;
        throw new CgroupException($"reading {path}: {Errno.Describe(errno)}", path, errno);
    }
}
