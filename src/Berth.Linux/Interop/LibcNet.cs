using System.Runtime.InteropServices;

namespace Berth.Linux.Interop;

/// <summary>Socket calls and constants for netlink (rtnetlink), kept beside <see cref="Libc"/>.</summary>
public static unsafe partial class Libc
{
    [LibraryImport(L, SetLastError = true)] public static partial int bind(int fd, byte* addr, int len);
    [LibraryImport(L, SetLastError = true)] public static partial nint send(int fd, byte* buf, nint len, int flags);
    [LibraryImport(L, SetLastError = true)] public static partial nint recv(int fd, byte* buf, nint len, int flags);
    [LibraryImport(L, SetLastError = true)] public static partial int setsockopt(int fd, int level, int name, void* value, int len);

    public const int AF_NETLINK = 16, AF_INET = 2, AF_INET6 = 10, AF_UNSPEC = 0;
    public const int SOCK_RAW = 3, NETLINK_ROUTE = 0, SOL_NETLINK = 270, NETLINK_EXT_ACK = 11;
    public const int MSG_TRUNC = 0x20, MSG_PEEK = 0x2;
}
