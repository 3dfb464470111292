using System.Runtime.InteropServices;
using static Berth.Linux.Interop.Libc;

namespace Berth.Linux;

/// <summary>A sealed in-memory copy of an executable (memfd: no writes, no size change, seals locked).
/// Exec'ing it instead of the file leaves nothing a container could overwrite through /proc/PID/exe
/// (the runc CVE-2019-5736 class) when no read-only bind of the file can be made: a rootless caller
/// that owns its runtime binary cannot unshare a mount namespace for one.</summary>
public static partial class SealedExecutable
{
    const uint MFD_CLOEXEC = 1, MFD_ALLOW_SEALING = 2;
    const int F_ADD_SEALS = 1033, F_SEAL_SEAL = 1, F_SEAL_SHRINK = 2, F_SEAL_GROW = 4, F_SEAL_WRITE = 8;
    const int W_OK = 2;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int memfd_create(string name, uint flags);
    [LibraryImport("libc", SetLastError = true)]
    private static partial nint sendfile(int outFd, int inFd, nint offset, nuint count);
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int access(string path, int mode);

    /// <summary>True when the calling user may write <paramref name="path"/> (then so may a container
    /// running as that user).</summary>
    public static bool WritableByCaller(string path) => access(path, W_OK) == 0;

    /// <summary>The copy, as a close-on-exec descriptor; exec it as /proc/self/fd/N.</summary>
    public static Fd Copy(string path, string name)
    {
        using var src = Sys.Open(path, O_RDONLY | O_CLOEXEC);
        var fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0) throw SyscallException.Last("memfd_create", path);
        var mem = new Fd(fd);
        try
        {
            while (true)
            {
                var n = sendfile(fd, src.Value, 0, 1 << 30);
                if (n < 0) throw SyscallException.Last("sendfile", path);
                if (n == 0) break;
            }
            if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0)
                throw SyscallException.Last("fcntl(F_ADD_SEALS)", path);
            return mem;
        }
        catch
        {
            mem.Dispose();
            throw;
        }
    }
}
