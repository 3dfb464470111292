using System.Runtime.InteropServices;

namespace Berth.Linux.Interop;

/// <summary>An owned file descriptor; closed exactly once. -1 is the invalid value (0 is a valid fd).</summary>
public sealed class SafeFdHandle : SafeHandle
{
    public SafeFdHandle() : base(-1, ownsHandle: true) { }

    internal SafeFdHandle(int fd) : base(-1, ownsHandle: true) => SetHandle(fd);

    public override bool IsInvalid => handle == -1;

    /// <summary>The raw descriptor, for interop inside Berth.Linux only.</summary>
    internal int Fd => (int)handle;

    protected override bool ReleaseHandle() => Libc.close((int)handle) == 0;
}
