using System.Runtime.InteropServices;
using System.Text;
using static Berth.Linux.Interop.Libc;

namespace Berth.Linux;

/// <summary>A SOCK_SEQPACKET socket between the runtime and a container's init: one message per
/// packet, optionally carrying file descriptors (SCM_RIGHTS).</summary>
public sealed unsafe class SyncChannel(Fd fd) : IDisposable
{
    public const int MaxMessage = 1 << 20;
    [ThreadStatic] static byte[]? _buffer;
    public Fd Fd { get; } = fd;

    public void Send(string message, int passFd = -1) => Send(Encoding.UTF8.GetBytes(message), passFd);

    /// <summary>One binary message (init's plan).</summary>
    public void Send(ReadOnlySpan<byte> data, int passFd = -1)
    {
        if (data.Length > MaxMessage) throw new InvalidOperationException("sync message too large");
        byte* control = stackalloc byte[32];
        fixed (byte* p = data)
        {
            var iov = new IoVec { Base = p, Len = (nuint)data.Length };
            var msg = new MsgHdr { Iov = &iov, IovLen = 1 };
            if (passFd >= 0)
            {
                // struct cmsghdr { size_t len; int level; int type; } + int fd, padded to 8.
                new Span<byte>(control, 32).Clear();
                *(nuint*)control = (nuint)(16 + sizeof(int));
                *(int*)(control + 8) = SOL_SOCKET;
                *(int*)(control + 12) = SCM_RIGHTS;
                *(int*)(control + 16) = passFd;
                msg.Control = control;
                msg.ControlLen = 24;
            }
            while (sendmsg(Fd.Value, &msg, 0x4000 /* MSG_NOSIGNAL */) < 0)
            {
                if (Marshal.GetLastPInvokeError() != Errno.EINTR) throw SyscallException.Last("sendmsg", "sync socket");
            }
        }
    }

    /// <summary>Receives one message; null when the peer closed the socket.</summary>
    public string? Receive(out Fd? passedFd)
    {
        passedFd = null;
        // One buffer per process, uninitialized: a fresh zeroed 1 MiB array per message cost page
        // faults and a memset in every runtime command and every container's init.
        var buf = _buffer ??= GC.AllocateUninitializedArray<byte>(MaxMessage);
        byte* control = stackalloc byte[64];
        fixed (byte* p = buf)
        {
            var iov = new IoVec { Base = p, Len = (nuint)buf.Length };
            var msg = new MsgHdr { Iov = &iov, IovLen = 1, Control = control, ControlLen = 64 };
            nint n;
            while ((n = recvmsg(Fd.Value, &msg, 0x40000000 /* MSG_CMSG_CLOEXEC */)) < 0)
            {
                if (Marshal.GetLastPInvokeError() != Errno.EINTR) throw SyscallException.Last("recvmsg", "sync socket");
            }
            if (msg.ControlLen >= 20 && *(int*)(control + 8) == SOL_SOCKET && *(int*)(control + 12) == SCM_RIGHTS)
                passedFd = new Fd(*(int*)(control + 16));
            if (n == 0) return null;
            return Encoding.UTF8.GetString(buf, 0, (int)n);
        }
    }

    public string? Receive()
    {
        var m = Receive(out var fd);
        fd?.Dispose();
        return m;
    }

    public void Dispose() => Fd.Dispose();
}
