using static Berth.Linux.Interop.Libc;

namespace Berth.Linux;

/// <summary>A pseudo-terminal pair opened from a given ptmx (the container's devpts instance).</summary>
public sealed unsafe class Pty : IDisposable
{
    public Fd Master { get; }
    public Fd Slave { get; }
    public string SlavePath { get; }

    Pty(Fd master, Fd slave, string slavePath) { Master = master; Slave = slave; SlavePath = slavePath; }

    /// <param name="ptmx">Path of the ptmx device to open.</param>
    /// <param name="ptsDirPrefix">Where that devpts is mounted, as seen now (rootfs prefix or null for "/").</param>
    public static Pty Open(string ptmx, string? ptsDirPrefix, Oci.Runtime.Box? size)
    {
        var master = Sys.Open(ptmx, O_RDWR | O_NOCTTY);
        int unlock = 0, n;
        if (ioctl(master.Value, TIOCSPTLCK, &unlock) != 0) throw SyscallException.Last("ioctl(TIOCSPTLCK)", ptmx);
        if (ioctl(master.Value, TIOCGPTN, &n) != 0) throw SyscallException.Last("ioctl(TIOCGPTN)", ptmx);
        var slavePath = Path.Combine(ptsDirPrefix ?? "/", "dev/pts", n.ToString());
        var slave = Sys.Open(slavePath, O_RDWR | O_NOCTTY);
        if (size is { Height: > 0 } || size is { Width: > 0 }) SetSize(master.Value, (ushort)size!.Height, (ushort)size.Width);
        return new Pty(master, slave, slavePath);
    }

    public static void SetSize(int fd, ushort rows, ushort cols)
    {
        var ws = new WinSize { Row = rows, Col = cols };
        if (ioctl(fd, TIOCSWINSZ, &ws) != 0) throw SyscallException.Last("ioctl(TIOCSWINSZ)");
    }

    public static bool TryGetSize(int fd, out ushort rows, out ushort cols)
    {
        var ws = new WinSize();
        var ok = ioctl(fd, TIOCGWINSZ, &ws) == 0;
        rows = ws.Row; cols = ws.Col;
        return ok;
    }

    public void Dispose() { Master.Dispose(); Slave.Dispose(); }
}
