using Berth.Linux;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.Monitor;

/// <summary>The AF_UNIX socket a runtime sends a process's pty master to (`--console-socket`, as runc
/// and crun do): listened on before the runtime starts, one connection carrying the master as
/// SCM_RIGHTS. Used by the monitor for a container's terminal and by the API for `exec -t`.</summary>
internal sealed unsafe class ConsoleSocket : IDisposable
{
    readonly Lock _lock = new();
    Fd? _fd;

    /// <summary>Where the runtime connects (relative paths are the caller's working directory).</summary>
    public string Path { get; }

    public ConsoleSocket(string path)
    {
        Path = path;
        _fd = MonitorProtocol.Listen(path);
    }

    /// <summary>A socket in <paramref name="dir"/>, or the temp directory when that path is too long
    /// for a socket address (108 bytes with its terminator).</summary>
    public static ConsoleSocket In(string dir, string name)
    {
        var p = System.IO.Path.Combine(dir, $"console-{name}.sock");
        if (System.Text.Encoding.UTF8.GetByteCount(p) >= 100) p = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"berth-console-{name}.sock");
        return new ConsoleSocket(p);
    }

    /// <summary>The master the runtime sent; null when it ended (or was <see cref="Abandon"/>ed)
    /// without sending one.</summary>
    public Fd? Receive()
    {
        int listener;
        lock (_lock) { if (_fd is null) return null; listener = _fd.Value; }
        var c = accept4(listener, null, null, SOCK_CLOEXEC);
        if (c < 0) return null;
        using var ch = new SyncChannel(new Fd(c));
        try { ch.Receive(out var master); return master; }
        catch (SyscallException) { return null; }
    }

    /// <summary>The runtime has exited: a <see cref="Receive"/> still waiting for it returns.</summary>
    public void Abandon()
    {
        lock (_lock) if (_fd is not null) shutdown(_fd.Value, SHUT_RDWR);
    }

    /// <summary>Closes the socket and removes its path.</summary>
    public void Dispose()
    {
        lock (_lock) { _fd?.Dispose(); _fd = null; }
        try { File.Delete(Path); } catch (IOException) { }
    }
}
