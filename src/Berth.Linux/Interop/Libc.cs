using System.Runtime.InteropServices;

namespace Berth.Linux.Interop;

/// <summary>
/// libc entry points used by Berth.Linux. Every import sets the last error, so callers read errno
/// with <see cref="Marshal.GetLastPInvokeError"/> right after a failing call.
/// </summary>
internal static unsafe partial class Libc
{
    const string Lib = "libc";

    public const int O_RDONLY = 0, O_WRONLY = 1, O_TRUNC = 0x200, O_DIRECTORY = 0x10000, O_CLOEXEC = 0x80000;

    [LibraryImport(Lib, EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int open(string path, int flags, int mode);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint write(int fd, byte* buf, nint count);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int mkdir(string path, uint mode);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int rmdir(string path);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial long syscall(long number, long arg1, void* arg2, long arg3);

    /// <summary>bpf(2) syscall number for the running architecture.</summary>
    public static long SysBpf => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 321,
        Architecture.Arm64 => 280,
        Architecture.RiscV64 => 280,
        Architecture.LoongArch64 => 280,
        var a => throw new PlatformNotSupportedException($"bpf(2): unsupported architecture {a}"),
    };

    /// <summary>open(2) returning an owned handle; throws <see cref="SyscallException"/> naming the path.</summary>
    public static SafeFdHandle Open(string path, int flags)
    {
        int fd = open(path, flags | O_CLOEXEC, 0);
        if (fd < 0) throw SyscallException.Last("open", path);
        return new SafeFdHandle(fd);
    }
}
