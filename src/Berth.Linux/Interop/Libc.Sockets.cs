using System.Runtime.InteropServices;

namespace Berth.Linux.Interop;

/// <summary>Pipes, listening unix sockets and pidfds: what a container monitor's event loop needs.</summary>
public static unsafe partial class Libc
{
    const string L2 = "libc";
    [LibraryImport(L2, SetLastError = true)] public static partial int pipe2(int* fds, int flags);
    [LibraryImport(L2, SetLastError = true)] public static partial int listen(int fd, int backlog);
    [LibraryImport(L2, SetLastError = true)] public static partial int accept4(int fd, byte* addr, int* len, int flags);
    [LibraryImport(L2, SetLastError = true)] public static partial int shutdown(int fd, int how);
    public const int SHUT_RD = 0, SHUT_WR = 1, SHUT_RDWR = 2;
    public const short POLLOUT = 4, POLLERR = 8, POLLNVAL = 0x20;
    public const int F_GETFL = 3, F_SETFL = 4, O_APPEND = 0x400;
}
