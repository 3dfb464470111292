using System.Runtime.InteropServices;

namespace Berth.Linux;

/// <summary>A failed system call: names the call, the object it acted on and the errno.</summary>
public class SyscallException : Exception
{
    public int Errno { get; }
    public string Call { get; }
    public string? Target { get; }

    public SyscallException(string call, string? target, int errno)
        : base(Format(call, target, errno))
    {
        Call = call;
        Target = target;
        Errno = errno;
    }

    static string Format(string call, string? target, int errno) =>
        target is null ? $"{call}: {Berth.Linux.Errno.Describe(errno)}" : $"{call} {target}: {Berth.Linux.Errno.Describe(errno)}";

    /// <summary>Reads errno at once (call right after the failing P/Invoke) and throws.</summary>
    public static SyscallException Last(string call, string? target = null) =>
        new(call, target, Marshal.GetLastPInvokeError());
}

public static class Errno
{
    public const int EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, EBADF = 9, ECHILD = 10,
        EAGAIN = 11, ENOMEM = 12, EACCES = 13, EFAULT = 14, EBUSY = 16, EEXIST = 17, EXDEV = 18,
        ENODEV = 19, ENOTDIR = 20, EISDIR = 21, EINVAL = 22, ENOSPC = 28, EROFS = 30, EPIPE = 32,
        ERANGE = 34, ENOSYS = 38, ENOTEMPTY = 39, ELOOP = 40, ENODATA = 61, EOPNOTSUPP = 95;

    public static string Describe(int errno) =>
        Marshal.GetPInvokeErrorMessage(errno) is { Length: > 0 } m ? m : $"errno {errno}";
}
