using Berth.Linux;
using static Berth.Linux.Interop.Libc;

namespace Berth.Images.Content;

/// <summary>
/// flock on &lt;images&gt;/gc.lock. Writers (pull, push, tag) hold it shared, so they never wait for
/// each other; garbage collection and image removal hold it exclusive, so they never see a blob that a
/// running pull has stored but not yet recorded. A crashed holder's lock goes with its process.
/// </summary>
public sealed class StoreLock : IDisposable
{
    readonly Fd _fd;
    StoreLock(Fd fd) => _fd = fd;

    public static StoreLock Shared(string imagesRoot) => Take(imagesRoot, LOCK_SH);
    public static StoreLock Exclusive(string imagesRoot) => Take(imagesRoot, LOCK_EX);

    static StoreLock Take(string imagesRoot, int op)
    {
        Directory.CreateDirectory(imagesRoot);
        var path = Path.Combine(imagesRoot, "gc.lock");
        var fd = Sys.Open(path, O_RDWR | O_CREAT, 0x180);
        while (flock(fd.Value, op) != 0)
        {
            if (System.Runtime.InteropServices.Marshal.GetLastPInvokeError() == Errno.EINTR) continue;
            var e = SyscallException.Last("flock", path);
            fd.Dispose();
            throw e;
        }
        return new StoreLock(fd);
    }

    public void Dispose() => _fd.Dispose();
}
