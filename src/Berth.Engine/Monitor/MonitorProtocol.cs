using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Berth.Linux;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.Monitor;

/// <summary>The monitor's control socket (RUNDIR/ctl.sock, SOCK_STREAM). A client sends one request
/// line, then reads frames: [type:1][length:4, big-endian][payload].
/// Requests: <c>attach STDIN STDOUT STDERR</c> (0/1 each; after the line, the client's bytes are the
/// container's stdin, its shutdown(SHUT_WR) closes it unless a fifth word <c>keep</c> asks to keep it open), <c>wait</c>, <c>stop SIGNAL TIMEOUT</c> (answered
/// when the container has exited), <c>kill SIGNAL</c>, <c>resize ROWS COLS</c>.</summary>
public static unsafe class MonitorProtocol
{
    public const byte Stdout = 1, Stderr = 2, Exit = 3, Ok = 4, Error = 5;

    public static byte[] Frame(byte type, ReadOnlySpan<byte> payload)
    {
        var f = new byte[5 + payload.Length];
        f[0] = type;
        BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(1), (uint)payload.Length);
        payload.CopyTo(f.AsSpan(5));
        return f;
    }

    public static byte[] Frame(byte type, string payload) => Frame(type, Encoding.UTF8.GetBytes(payload));

    /// <summary>sockaddr_un for a path (which must fit: callers pass /proc/self/fd/N/NAME or a relative name).</summary>
    public static byte[] Address(string path, out int len)
    {
        var p = Encoding.UTF8.GetBytes(path);
        if (p.Length >= 108) throw new EngineException(ErrorKind.Internal, $"socket path too long: {path}");
        var addr = new byte[110];
        addr[0] = AF_UNIX;
        p.CopyTo(addr, 2);
        len = 2 + p.Length + 1;
        return addr;
    }

    public static Fd Listen(string path)
    {
        try { File.Delete(path); } catch (IOException) { }
        var s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0) throw SyscallException.Last("socket");
        var fd = new Fd(s);
        var addr = Address(path, out var len);
        fixed (byte* a = addr)
            if (bind(s, a, len) != 0) { var e = SyscallException.Last("bind", path); fd.Dispose(); throw e; }
        if (listen(s, 64) != 0) { var e = SyscallException.Last("listen", path); fd.Dispose(); throw e; }
        return fd;
    }

    /// <summary>Connects to a socket in <paramref name="dir"/> (through /proc/self/fd, so long paths
    /// work); null when nothing listens there (the monitor is gone).</summary>
    public static Fd? TryConnect(string dir, string name)
    {
        int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
        if (dfd < 0) return null;
        using var d = new Fd(dfd);
        var s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0) throw SyscallException.Last("socket");
        var fd = new Fd(s);
        var addr = Address($"/proc/self/fd/{dfd}/{name}", out var len);
        fixed (byte* a = addr)
        {
            while (connect(s, a, len) != 0)
            {
                var err = Marshal.GetLastPInvokeError();
                if (err == Errno.EINTR) continue;
                fd.Dispose();
                return null;
            }
        }
        return fd;
    }

    /// <summary>Reads one frame; null at end of stream.</summary>
    public static (byte Type, byte[] Payload)? ReadFrame(int fd)
    {
        Span<byte> head = stackalloc byte[5];
        if (!ReadExact(fd, head)) return null;
        var len = (int)BinaryPrimitives.ReadUInt32BigEndian(head[1..]);
        var payload = new byte[len];
        if (len > 0 && !ReadExact(fd, payload)) return null;
        return (head[0], payload);
    }

    static bool ReadExact(int fd, Span<byte> buf)
    {
        var off = 0;
        while (off < buf.Length)
        {
            int n;
            try { n = Sys.Read(fd, buf[off..]); }
            catch (SyscallException) { return false; }
            if (n == 0) return false;
            off += n;
        }
        return true;
    }
}
