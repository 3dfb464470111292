using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using static Berth.Linux.Interop.Libc;

namespace Berth.Linux;

/// <summary>An owned file descriptor (always O_CLOEXEC unless deliberately handed to a child).</summary>
public sealed class Fd : SafeHandleZeroOrMinusOneIsInvalid
{
    public Fd(int fd) : base(true) => SetHandle(fd);
    public int Value => (int)handle;
    protected override bool ReleaseHandle() => close((int)handle) == 0;
    /// <summary>Gives up ownership: the caller is now responsible for the descriptor.</summary>
    public int Release() { var v = (int)handle; SetHandleAsInvalid(); return v; }
}

/// <summary>Throwing wrappers over <see cref="Interop.Libc"/>: each failure names call, path and errno.</summary>
public static unsafe class Sys
{
    public static Fd Open(string path, int flags, uint mode = 0)
    {
        var fd = open(path, flags | O_CLOEXEC, mode);
        if (fd < 0) throw SyscallException.Last("open", path);
        return new Fd(fd);
    }

    public static Fd OpenAt(Fd dir, string path, int flags, uint mode = 0)
    {
        var fd = openat(dir.Value, path, flags | O_CLOEXEC, mode);
        if (fd < 0) throw SyscallException.Last("openat", path);
        return new Fd(fd);
    }

    /// <summary>openat2(2); returns -errno instead of throwing so callers can walk and create.</summary>
    public static int OpenAt2(int dirfd, string path, ulong flags, ulong resolve, out Fd? fd)
    {
        var how = new OpenHow { Flags = flags | (ulong)O_CLOEXEC, Mode = 0, Resolve = resolve };
        var bytes = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = bytes)
        {
            var r = syscall(SYS_openat2, dirfd, (long)p, (long)&how, sizeof(OpenHow), 0, 0);
            if (r < 0) { fd = null; return -Marshal.GetLastPInvokeError(); }
            fd = new Fd((int)r);
            return 0;
        }
    }

    public static void Mount(string? source, string target, string? fstype, ulong flags, string? data, string? what = null)
    {
        if (mount(source, target, fstype, flags, data) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new SyscallException("mount", what ?? $"{source ?? fstype} on {target}", errno);
        }
    }

    public static void Unshare(int flags)
    {
        if (unshare(flags) != 0) throw SyscallException.Last("unshare", $"0x{flags:x}");
    }

    public static void SetNs(Fd fd, int type, string what)
    {
        if (setns(fd.Value, type) != 0) throw SyscallException.Last("setns", what);
    }

    public static void Prctl(int option, ulong a2, ulong a3 = 0, ulong a4 = 0, ulong a5 = 0)
    {
        if (prctl(option, a2, a3, a4, a5) != 0) throw SyscallException.Last("prctl", option.ToString());
    }

    public static void WriteAll(int fd, ReadOnlySpan<byte> data, string what)
    {
        fixed (byte* p = data)
        {
            var off = 0;
            while (off < data.Length)
            {
                var n = write(fd, p + off, data.Length - off);
                if (n < 0)
                {
                    if (Marshal.GetLastPInvokeError() == Errno.EINTR) continue;
                    throw SyscallException.Last("write", what);
                }
                off += (int)n;
            }
        }
    }

    /// <summary>Writes a value to a kernel control file (cgroup, /proc/sys) in one write(2).</summary>
    public static void WriteFile(string path, string value)
    {
        using var fd = Open(path, O_WRONLY);
        WriteAll(fd.Value, Encoding.UTF8.GetBytes(value), $"\"{value}\" to {path}");
    }

    /// <summary>
    /// Reads a small kernel or state file (cgroup, /proc) whole with open/read/close: no FileStream,
    /// no advisory lock, no buffers beyond the text. Returns null and the errno when it cannot be opened
    /// or read.
    /// </summary>
    public static string? TryReadText(string path, out int errno)
    {
        var fd = open(path, O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0) { errno = Marshal.GetLastPInvokeError(); return null; }
        try
        {
            Span<byte> small = stackalloc byte[4096];
            byte[]? big = null;
            var buf = small;
            var len = 0;
            while (true)
            {
                if (len == buf.Length)
                {
                    var grown = new byte[buf.Length * 2];
                    buf.CopyTo(grown);
                    big = grown;
                    buf = big;
                }
                nint n;
                fixed (byte* p = buf) n = read(fd, p + len, buf.Length - len);
                if (n < 0)
                {
                    errno = Marshal.GetLastPInvokeError();
                    if (errno == Errno.EINTR) continue;
                    return null;
                }
                if (n == 0) break;
                len += (int)n;
            }
            errno = 0;
            return Encoding.UTF8.GetString(buf[..len]);
        }
        finally { close(fd); }
    }

    /// <summary><see cref="TryReadText"/> that throws a <see cref="SyscallException"/> naming the file.</summary>
    public static string ReadText(string path) =>
        TryReadText(path, out var errno) ?? throw new SyscallException("read", path, errno);

    public static int Read(int fd, Span<byte> buf)
    {
        fixed (byte* p = buf)
        {
            while (true)
            {
                var n = read(fd, p, buf.Length);
                if (n >= 0) return (int)n;
                if (Marshal.GetLastPInvokeError() != Errno.EINTR) throw SyscallException.Last("read");
            }
        }
    }

    public static void SetCloexec(int fd, bool on)
    {
        var flags = fcntl(fd, F_GETFD, 0);
        if (flags < 0) throw SyscallException.Last("fcntl", fd.ToString());
        flags = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
        if (fcntl(fd, F_SETFD, flags) < 0) throw SyscallException.Last("fcntl", fd.ToString());
    }

    public static (Fd parent, Fd child) SocketPair()
    {
        int* sv = stackalloc int[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) throw SyscallException.Last("socketpair");
        return (new Fd(sv[0]), new Fd(sv[1]));
    }

    public static int GetTid() => (int)syscall(SYS_gettid, 0, 0, 0, 0, 0, 0);

    /// <summary>Process exists and is not a zombie.</summary>
    public static bool IsAlive(int pid)
    {
        if (pid <= 0) return false;
        if (kill(pid, 0) != 0 && Marshal.GetLastPInvokeError() == Errno.ESRCH) return false;
        var st = ProcStat.Read(pid);
        return st is { } s && s.State != 'Z' && s.State != 'X';
    }

    /// <summary>Wait for a child; returns the shell-style exit status (128+signal when killed).</summary>
    public static int Wait(int pid)
    {
        int status;
        while (true)
        {
            var r = waitpid(pid, &status, WALL);
            if (r == pid) break;
            if (r < 0 && Marshal.GetLastPInvokeError() == Errno.EINTR) continue;
            throw SyscallException.Last("waitpid", pid.ToString());
        }
        return DecodeStatus(status);
    }

    public static int DecodeStatus(int status)
    {
        var sig = status & 0x7f;
        return sig == 0 ? (status >> 8) & 0xff : 128 + sig;
    }
}

/// <summary>The parts of /proc/PID/stat Berth needs.</summary>
public readonly record struct ProcStat(int Pid, char State, int PPid, ulong StartTime)
{
    public static ProcStat? Read(int pid)
    {
        if (Sys.TryReadText($"/proc/{pid}/stat", out _) is not { } text) return null;
        // comm may contain spaces and parentheses: parse after the last ')'.
        var close = text.LastIndexOf(')');
        if (close < 0) return null;
        var f = text[(close + 2)..].Split(' ');
        // f[0]=state f[1]=ppid ... starttime is field 22 overall => index 19 here.
        return new ProcStat(pid, f[0][0], int.Parse(f[1]), ulong.Parse(f[19]));
    }
}
