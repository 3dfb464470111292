using System.Runtime.InteropServices;
using System.Text;
using Berth.Engine.Containers;
using Berth.Linux;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.Monitor;

/// <summary>`berth-shim`: one per running container, like conmon. Started detached (own session) by
/// `berth start/run`; runs `berth-runc create` + `start`, becomes the container's subreaper, owns its
/// stdio (pipes, or the pty master received on the console socket), writes the json-file log,
/// serves the control socket, records the exit status and finish time in the container's record,
/// runs `berth-runc delete`, removes the container when --rm, and exits. It reports the outcome of
/// the start on fd 3 ("ok PID" or "error CODE MESSAGE") to whoever started it.
/// One thread, one poll loop, no managed allocations on the steady path beyond the read buffers.</summary>
public sealed unsafe class ContainerMonitor
{
    readonly ContainerStore _store;
    readonly RuntimeClient _runtime;
    readonly string _id;
    readonly bool _hold;
    ContainerRecord _rec = null!;
    string _runDir = "";

    Fd? _stdinW, _stdoutR, _stderrR, _pty, _pidfd, _listener;
    int _initPid;
    int? _exitStatus;
    DateTime _drainDeadline;
    long _stopDeadline = long.MaxValue; // Environment.TickCount64
    JsonFileLog? _log;
    readonly List<Client> _clients = [];
    readonly List<(byte Stream, byte[] Data)> _held = [];
    int _heldBytes;
    bool _holding;
    readonly List<byte> _stdinPending = [];
    // The one read buffer (output, control clients), allocated before start-up memory is released.
    // 16 KiB as conmon's 8 KiB: a 64 KiB pipe drains in a few reads, and every monitor keeps it for good.
    readonly byte[] _buf = new byte[16 * 1024];
    bool _stdinEofRequested;

    sealed class Client(Fd fd)
    {
        public Fd Fd = fd;
        public readonly List<byte> Line = [];
        public string? Request;
        public bool Attached, WantStdin, WantStdout, WantStderr, Waiter, Closed, InputDone, KeepStdin;
    }

    ContainerMonitor(ContainerStore store, RuntimeClient runtime, string id, bool hold)
    {
        _store = store; _runtime = runtime; _id = id; _hold = hold; _holding = hold;
    }

    /// <summary>Entry point: berth-shim --root R --runroot RR --runtime PATH --id ID [--hold].</summary>
    public static int Main(string[] args)
    {
        string? root = null, runRoot = null, runtime = null, id = null;
        var hold = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--root": root = args[++i]; break;
                case "--runroot": runRoot = args[++i]; break;
                case "--runtime": runtime = args[++i]; break;
                case "--id": id = args[++i]; break;
                case "--hold": hold = true; break;
                default: Console.Error.WriteLine($"berth-shim: unknown argument {args[i]}"); return 125;
            }
        }
        if (root is null || runRoot is null || runtime is null || id is null)
        {
            Console.Error.WriteLine("berth-shim: usage: berth-shim --root DIR --runroot DIR --runtime PATH --id ID [--hold]");
            return 125;
        }
        var store = new ContainerStore(root, runRoot);
        var m = new ContainerMonitor(store, new RuntimeClient(runtime, store.RuntimeRoot), id, hold);
        try { return m.Run(); }
        catch (Exception e)
        {
            m.Report($"error 125 monitor: {e.Message.Replace('\n', ' ')}");
            try { File.AppendAllText(System.IO.Path.Combine(m._runDir, "shim.log"), e + "\n"); } catch (IOException) { }
            return 1;
        }
    }

    int _starter = 3;

    /// <summary>fd 3 is the pipe to the starter: one line. With --hold it stays open until the starter
    /// attaches (or goes away: POLLERR on the write end), so output held for it is not lost.</summary>
    void Report(string line, bool keepOpen = false)
    {
        if (_starter < 0) return;
        var b = Encoding.UTF8.GetBytes(line + "\n");
        fixed (byte* p = b) write(_starter, p, b.Length);
        if (!keepOpen) CloseStarter();
    }

    void CloseStarter()
    {
        if (_starter < 0) return;
        close(_starter);
        _starter = -1;
    }

    int Run()
    {
        Sys.Prctl(PR_SET_CHILD_SUBREAPER, 1);
        Timing.Mark("shim: main");
        _runDir = _store.RunDir(_id);
        Directory.CreateDirectory(_runDir);
        Directory.CreateDirectory(_store.RuntimeRoot);
        if (chdir(_runDir) != 0) throw SyscallException.Last("chdir", _runDir);
        foreach (var f in new[] { "init.pid", "runc.log" }) File.Delete(f);
        _listener = MonitorProtocol.Listen("ctl.sock");
        var self = ProcStat.Read(Environment.ProcessId);
        using (_store.Lock(_id))
        {
            // The starter recorded this monitor's pid under the lock before releasing it.
            var r = _store.Load(_id);
            if (r.Monitor is not { } m || m.Pid != Environment.ProcessId)
                throw new EngineException(ErrorKind.FailedPrecondition, $"container {_id} is being started by another monitor");
            _rec = r;
        }

        _health = HealthChecker.Create(_rec, _runtime, UpdateIfOurs);
        var logOpts = _rec.HostConfig.LogConfig.Config;
        _log = new JsonFileLog(_rec.LogPath, ParseSize(logOpts.GetValueOrDefault("max-size")), int.TryParse(logOpts.GetValueOrDefault("max-file"), out var mf) ? mf : 1);

        Timing.Mark("shim: record loaded, socket bound");
        var err = CreateAndStart();
        if (err is not null)
        {
            var code = RuntimeClient.ExitCodeFor(err);
            UpdateIfOurs(r =>
            {
                r.State.Status = "created"; r.State.Running = false; r.State.Pid = 0;
                r.State.ExitCode = code; r.State.Error = err; r.Monitor = null;
            });
            if (_rec.HostConfig.AutoRemove) { _store.Remove(_id, _rec.BareName); Volumes.ContainerVolumes.RemoveAnonymous(_rec, _store.Root); }
            else CleanRunDir();
            Report($"error {code} {err}");
            return 0;
        }
        Report($"ok {_initPid}", keepOpen: _holding);
        ReleaseMemory();
        var backoff = 100;
        while (true)
        {
            var started = Environment.TickCount64;
            Loop();
            if (!ShouldRestart()) break;
            // Restart policy: record the exit, clean the runtime's state, back off (doubling from
            // 100 ms, reset after 10 s of running, at most 10 s), start again.
            if (Environment.TickCount64 - started > 10_000) backoff = 100;
            var code = _exitStatus ?? 255;
            var now = JsonFileLog.FormatTime(DateTime.UtcNow);
            UpdateIfOurs(r =>
            {
                r.State.Status = "restarting"; r.State.Restarting = true; r.State.Pid = 0;
                r.State.ExitCode = code; r.State.FinishedAt = now; r.RestartCount++;
            });
            _restarts++;
            using (var devnull = RuntimeClient.DevNull())
                _runtime.Run(["delete", "--force", _id], devnull.Value, devnull.Value, devnull.Value);
            ReapAll();
            ReleaseNetworks(); // connected again (same address if free) by the next CreateAndStart
            try { var cur = _store.Load(_id); _rec.NetworkSettings.Networks = cur.NetworkSettings.Networks; } catch (EngineException) { }
            if (WaitForStop(backoff)) break;
            backoff = Math.Min(backoff * 2, 10_000);
            _exitStatus = null;
            _log?.FlushAll();
            var again = CreateAndStart();
            if (again is not null)
            {
                _exitStatus = RuntimeClient.ExitCodeFor(again);
                UpdateIfOurs(r => r.State.Error = again);
                break;
            }
            ReleaseMemory();
        }
        Finish();
        return 0;
    }

    /// <summary>Starting a container allocates far more than the poll loop ever will (records, JSON,
    /// spawns): once it runs (and again after a burst of output, see <see cref="ReleaseDue"/>), a full
    /// compacting collection in aggressive mode gives the GC's free regions back to the kernel, so an
    /// idle monitor keeps only what it still uses (measured: 1,942 → 1,308 KiB private; docs/ARCHITECTURE.md).</summary>
    void ReleaseMemory()
    {
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        _allocatedAtRelease = GC.GetAllocatedBytesForCurrentThread();
    }

    /// <summary>Output (log lines, frames) allocates as it flows; the small gen0 budget (DOTNET_GCgen0size,
    /// set by the starter) bounds the heap while it flows, but survivors of gen0 collections pile up
    /// in gen1/gen2 and freed regions stay committed. After more than this much allocation, the
    /// first second without events releases them the same way.</summary>
    const long ReleaseAfterBytes = 1 << 20;
    const int ReleaseWhenIdleMs = 1000;
    long _allocatedAtRelease;
    bool ReleaseDue => GC.GetAllocatedBytesForCurrentThread() - _allocatedAtRelease > ReleaseAfterBytes;

    int _restarts;
    bool _stopRequested;
    HealthChecker? _health;

    bool ShouldRestart()
    {
        if (_stopRequested) return false;
        // the stored record's: `docker update --restart` may have changed it while the container ran
        RestartPolicy policy;
        try { policy = _store.Load(_id).HostConfig.RestartPolicy; }
        catch (Exception e) when (e is EngineException or IOException or System.Text.Json.JsonException) { policy = _rec.HostConfig.RestartPolicy; }
        return policy.Name switch
        {
            "always" or "unless-stopped" => true,
            "on-failure" => _exitStatus is not 0 && (policy.MaximumRetryCount <= 0 || _restarts < policy.MaximumRetryCount),
            _ => false,
        };
    }

    /// <summary>The back-off between restarts, still answering the control socket: a stop (or rm -f)
    /// during it ends the restarting. True when a stop came.</summary>
    bool WaitForStop(int ms)
    {
        var deadline = Environment.TickCount64 + ms;
        while (Environment.TickCount64 < deadline && !_stopRequested)
        {
            var pfd = new PollFd { Fd = _listener!.Value, Events = POLLIN };
            if (poll(&pfd, 1, (int)Math.Max(1, deadline - Environment.TickCount64)) > 0)
            {
                Accept();
                foreach (var c in _clients.ToArray())
                {
                    var cp = new PollFd { Fd = c.Fd.Value, Events = POLLIN };
                    if (!c.Closed && poll(&cp, 1, 100) > 0) ReadClient(c, _buf);
                }
                _clients.RemoveAll(c => c.Closed);
            }
        }
        return _stopRequested;
    }

    /// <summary>Returns the runtime's error, or null when the container runs.</summary>
    string? CreateAndStart()
    {
        using var devnull = RuntimeClient.DevNull();
        var tty = _rec.Config.Tty;
        Fd? consoleListener = null;
        Fd? stdinR = null, stdoutW = null, stderrW = null;
        try { Networking.ContainerNetworking.JoinTargetNamespace(_rec, _store); }
        catch (EngineException e) { return e.Message; }
        // Networks are connected between create and start. A container without any (none, host, a pod's
        // or another container's namespace; a new namespace gets its loopback up from the runtime) needs
        // nothing in between: one `run --detach` instead of `create` + `start`, one runtime process less.
        var split = Networking.ContainerNetworking.IsNetworked(_rec.HostConfig);
        var args = split
            ? new List<string> { "create", "--bundle", _store.BundleDir(_id), "--pid-file", "init.pid" }
            : new List<string> { "run", "--detach", "--bundle", _store.BundleDir(_id), "--pid-file", "init.pid" };
        if (tty)
        {
            consoleListener = MonitorProtocol.Listen("console.sock");
            args.Add("--console-socket"); args.Add("console.sock");
        }
        else
        {
            if (_rec.Config.OpenStdin) (stdinR, _stdinW) = Pipe();
            (_stdoutR, stdoutW) = Pipe();
            (_stderrR, stderrW) = Pipe();
        }
        args.Add(_id);
        Timing.Mark(split ? "shim: create" : "shim: run --detach");
        int rc;
        try
        {
            rc = _runtime.Run(args, stdinR?.Value ?? devnull.Value, stdoutW?.Value ?? devnull.Value, stderrW?.Value ?? devnull.Value, "runc.log");
        }
        finally
        {
            stdinR?.Dispose(); stdoutW?.Dispose(); stderrW?.Dispose();
        }
        if (rc != 0)
        {
            consoleListener?.Dispose();
            return RuntimeClient.LastError("runc.log") ?? LastStderrLine() ?? $"runtime create exited with status {rc}";
        }
        if (consoleListener is not null)
        {
            var c = accept4(consoleListener.Value, null, null, SOCK_CLOEXEC);
            if (c < 0) throw SyscallException.Last("accept", "console socket");
            using var ch = new SyncChannel(new Fd(c));
            ch.Receive(out _pty);
            consoleListener.Dispose();
            File.Delete("console.sock");
            if (_pty is null) return "runtime did not send the pty master";
            if (_rec.Config.OpenStdin) _stdinW = null; // stdin goes through the pty master
        }
        _initPid = int.Parse(File.ReadAllText("init.pid").Trim());
        var pidfd = (int)syscall(SYS_pidfd_open, _initPid, 0, 0, 0, 0, 0);
        if (pidfd < 0) throw SyscallException.Last("pidfd_open", _initPid.ToString());
        _pidfd = new Fd(pidfd);
        var initStart = ProcStat.Read(_initPid)?.StartTime ?? 0;

        Timing.Mark("shim: created");
        if (split)
        {
            // Networks are connected between create and start: the namespace exists, nothing runs in it yet.
            try { Networking.ContainerNetworking.Connect(_rec, _initPid, _store.Root, _rec.NetworkSettings, Environment.ProcessPath!); }
            catch (EngineException e)
            {
                _runtime.Run(["delete", "--force", _id], devnull.Value, devnull.Value, devnull.Value);
                ReapAll();
                return e.Message;
            }
            Timing.Mark("shim: network connected");
            rc = _runtime.Run(["start", _id], devnull.Value, devnull.Value, devnull.Value, "runc.log");
            Timing.Mark("shim: started");
            if (rc != 0)
            {
                var e = RuntimeClient.LastError("runc.log") ?? $"runtime start exited with status {rc}";
                _runtime.Run(["delete", "--force", _id], devnull.Value, devnull.Value, devnull.Value);
                ReapAll();
                ReleaseNetworks();
                return e;
            }
        }
        var now = JsonFileLog.FormatTime(DateTime.UtcNow);
        var net = _rec.NetworkSettings;
        _rec = _store.Update(_id, r =>
        {
            r.NetworkSettings = net;
            r.State.Status = "running"; r.State.Running = true; r.State.Paused = false; r.State.Restarting = false; r.State.Pid = _initPid;
            r.State.ExitCode = 0; r.State.Error = ""; r.State.StartedAt = now; r.State.FinishedAt = ContainerState.ZeroTime;
            r.Monitor!.InitStartTime = initStart;
            if (_health is not null) r.State.Health = _health.Started();
        });
        // "start" here, before the monitor can reap the container: its "die" always comes after
        Events.ObjectEvents.VolumeMounts(_store.Root, _rec, mount: true);
        Events.ContainerEvents.Emit(_store.Root, _rec, "start");
        foreach (var f in new[] { _stdoutR, _stderrR, _pty, _stdinW }) if (f is not null) SetNonBlocking(f.Value);
        Timing.Mark("shim: running recorded");
        return null;
    }

    /// <summary>What the runtime printed on the container's stderr when it failed before logging.</summary>
    string? LastStderrLine()
    {
        if (_stderrR is null) return null;
        SetNonBlocking(_stderrR.Value);
        var buf = new byte[8192];
        int n;
        fixed (byte* p = buf) n = (int)read(_stderrR.Value, p, buf.Length);
        if (n <= 0) return null;
        return Encoding.UTF8.GetString(buf, 0, n).Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault()?.Trim();
    }

    static (Fd R, Fd W) Pipe()
    {
        int* fds = stackalloc int[2];
        if (pipe2(fds, O_CLOEXEC) != 0) throw SyscallException.Last("pipe2");
        return (new Fd(fds[0]), new Fd(fds[1]));
    }

    static void SetNonBlocking(int fd)
    {
        var fl = fcntl(fd, F_GETFL, 0);
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    }

    // ------------------------------------------------------------------ event loop

    void Loop()
    {
        var buf = _buf;
        var fds = new List<(int Fd, short Events, Action<short> Handle)>();
        var pfds = new PollFd[16];
        while (true)
        {
            var outputOpen = _stdoutR is not null || _stderrR is not null || _pty is not null;
            if (_exitStatus is not null && (!outputOpen || DateTime.UtcNow > _drainDeadline) && !_holding) return;

            fds.Clear();
            if (_listener is not null) fds.Add((_listener.Value, POLLIN, _ => Accept()));
            if (_holding && _starter >= 0) fds.Add((_starter, 0, _ => { _holding = false; _held.Clear(); CloseStarter(); }));
            if (_stdoutR is not null) fds.Add((_stdoutR.Value, POLLIN, _ => ReadOutput(ref _stdoutR, MonitorProtocol.Stdout, buf)));
            if (_stderrR is not null) fds.Add((_stderrR.Value, POLLIN, _ => ReadOutput(ref _stderrR, MonitorProtocol.Stderr, buf)));
            if (_pty is not null) fds.Add((_pty.Value, (short)(POLLIN | (_stdinPending.Count > 0 && _exitStatus is null ? POLLOUT : 0)), ev =>
            {
                if ((ev & POLLOUT) != 0) FlushStdin(_pty!.Value);
                if ((ev & (POLLIN | POLLHUP | POLLERR)) != 0) ReadOutput(ref _pty, MonitorProtocol.Stdout, buf);
            }));
            if (_stdinW is not null && _stdinPending.Count > 0) fds.Add((_stdinW.Value, POLLOUT, _ => FlushStdin(_stdinW!.Value)));
            if (_pidfd is not null) fds.Add((_pidfd.Value, POLLIN, _ => ReapAll()));
            foreach (var c in _clients.ToArray())
                if (!c.Closed && !c.InputDone) fds.Add((c.Fd.Value, POLLIN, _ => ReadClient(c, buf)));
            _health?.AddPollFds(fds);

            var timeout = -1;
            if (_exitStatus is not null && (outputOpen || !_holding)) timeout = Math.Max(0, (int)(_drainDeadline - DateTime.UtcNow).TotalMilliseconds);
            if (_stopDeadline != long.MaxValue)
            {
                var left = (int)Math.Max(0, _stopDeadline - Environment.TickCount64);
                timeout = timeout < 0 ? left : Math.Min(timeout, left);
            }
            if (_health is not null)
            {
                // Checks leave orphans (a timed-out exec's process) that only this subreaper reaps:
                // wake at least twice a second to collect them.
                if (_exitStatus is null) timeout = _health.Timeout(timeout);
                timeout = timeout < 0 ? 500 : Math.Min(timeout, 500);
            }
            var releaseDue = ReleaseDue;
            if (releaseDue) timeout = timeout < 0 ? ReleaseWhenIdleMs : Math.Min(timeout, ReleaseWhenIdleMs);
            if (fds.Count > pfds.Length) pfds = new PollFd[fds.Count * 2];
            for (var i = 0; i < fds.Count; i++) pfds[i] = new PollFd { Fd = fds[i].Fd, Events = fds[i].Events };
            int n;
            fixed (PollFd* pp = pfds) n = poll(pp, (ulong)fds.Count, timeout);
            if (n < 0)
            {
                if (Marshal.GetLastPInvokeError() == Errno.EINTR) continue;
                throw SyscallException.Last("poll");
            }
            if (n == 0 && releaseDue) ReleaseMemory();
            if (_stopDeadline != long.MaxValue && Environment.TickCount64 >= _stopDeadline && _exitStatus is null)
            {
                kill(_initPid, 9);
                _stopDeadline = long.MaxValue;
            }
            for (var i = 0; i < fds.Count; i++)
                if (pfds[i].REvents != 0) fds[i].Handle(pfds[i].REvents);
            _clients.RemoveAll(c => c.Closed);
            if (_health is not null) ReapAll();
            if (_exitStatus is not null) _health?.Stopped();
            else _health?.Tick(containerRunning: true);
        }
    }

    void ReapAll()
    {
        int status;
        while (true)
        {
            var r = waitpid(-1, &status, WNOHANG | WALL);
            if (r <= 0) break;
            if (r == _initPid && _exitStatus is null)
            {
                _exitStatus = Sys.DecodeStatus(status);
                _drainDeadline = DateTime.UtcNow.AddSeconds(2);
                _pidfd?.Dispose();
                _pidfd = null;
                _stopDeadline = long.MaxValue;
            }
            else _health?.Reaped(r, status);
        }
    }

    void ReadOutput(ref Fd? fd, byte stream, byte[] buf)
    {
        int n;
        fixed (byte* p = buf) n = (int)read(fd!.Value, p, buf.Length);
        if (n < 0)
        {
            var e = Marshal.GetLastPInvokeError();
            if (e is Errno.EAGAIN or Errno.EINTR) return;
            n = 0; // EIO: the pty's last user is gone
        }
        if (n == 0)
        {
            fd.Dispose();
            fd = null;
            if (_stdoutR is null && _stderrR is null && _pty is null) _log?.FlushAll();
            return;
        }
        var data = buf.AsSpan(0, n);
        _log!.Write(stream, data);
        if (_holding)
        {
            _held.Add((stream, data.ToArray()));
            _heldBytes += n;
            if (_heldBytes > 4 << 20) { _held.Clear(); _holding = false; }
        }
        var frame = MonitorProtocol.Frame(stream, data);
        foreach (var c in _clients)
            if (c.Attached && !c.Closed && (stream == MonitorProtocol.Stdout ? c.WantStdout : c.WantStderr)) Send(c, frame);
    }

    void FlushStdin(int fd)
    {
        var data = _stdinPending.ToArray();
        nint n;
        fixed (byte* p = data) n = write(fd, p, data.Length);
        if (n < 0)
        {
            var e = Marshal.GetLastPInvokeError();
            if (e is Errno.EAGAIN or Errno.EINTR) return;
            _stdinPending.Clear(); // the container closed its stdin
            return;
        }
        _stdinPending.RemoveRange(0, (int)n);
        if (_stdinPending.Count == 0 && _stdinEofRequested) CloseStdin();
    }

    void CloseStdin()
    {
        if (_stdinW is null) return;
        _stdinW.Dispose();
        _stdinW = null;
    }

    void Accept()
    {
        var c = accept4(_listener!.Value, null, null, SOCK_CLOEXEC);
        if (c < 0) return;
        _clients.Add(new Client(new Fd(c)));
    }

    void ReadClient(Client c, byte[] buf)
    {
        int n;
        fixed (byte* p = buf) n = (int)read(c.Fd.Value, p, buf.Length);
        if (n < 0 && Marshal.GetLastPInvokeError() is Errno.EINTR or Errno.EAGAIN) return;
        if (n <= 0)
        {
            // End of the client's input: for an attached stdin, the container's stdin ends too.
            if (c.Attached)
            {
                // Half-closed: the client still reads output until the container exits.
                c.InputDone = true;
                if (!c.WantStdin) return;
                c.WantStdin = false;
                if (c.KeepStdin) return; // docker's StdinOnce=false: the container's stdin outlives this attach
                if (_stdinW is not null) { if (_stdinPending.Count == 0) CloseStdin(); else _stdinEofRequested = true; }
                return;
            }
            Close(c);
            return;
        }
        var data = buf.AsSpan(0, n);
        if (c.Request is null)
        {
            var nl = data.IndexOf((byte)'\n');
            if (nl < 0) { foreach (var b in data) c.Line.Add(b); return; }
            foreach (var b in data[..nl]) c.Line.Add(b);
            c.Request = Encoding.UTF8.GetString(c.Line.ToArray());
            Handle(c);
            data = data[(nl + 1)..];
        }
        if (c.Attached && c.WantStdin && data.Length > 0 && _exitStatus is null)
            foreach (var b in data) _stdinPending.Add(b);
    }

    void Handle(Client c)
    {
        var parts = c.Request!.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        try
        {
            switch (parts.FirstOrDefault())
            {
                case "attach":
                    c.Attached = true;
                    c.WantStdin = parts.ElementAtOrDefault(1) == "1" && (_stdinW is not null || _pty is not null);
                    c.WantStdout = parts.ElementAtOrDefault(2) != "0";
                    c.WantStderr = parts.ElementAtOrDefault(3) != "0";
                    c.KeepStdin = parts.ElementAtOrDefault(4) == "keep";
                    Send(c, MonitorProtocol.Frame(MonitorProtocol.Ok, ""));
                    if (_holding)
                    {
                        foreach (var (s, d) in _held)
                            if (s == MonitorProtocol.Stdout ? c.WantStdout : c.WantStderr) Send(c, MonitorProtocol.Frame(s, d));
                        _held.Clear();
                        _holding = false;
                        CloseStarter();
                    }
                    break;
                case "wait":
                    c.Waiter = true;
                    break;
                case "kill":
                    if (_pidfd is null) throw new ArgumentException("container is not running");
                    kill(_initPid, Signals.Parse(parts[1]));
                    Reply(c, MonitorProtocol.Ok, "");
                    break;
                case "stop":
                    var sig = Signals.Parse(parts[1]);
                    var timeout = int.Parse(parts[2]);
                    c.Waiter = true;
                    _stopRequested = true;
                    if (_exitStatus is null && _initPid > 0 && _pidfd is not null)
                    {
                        kill(_initPid, timeout <= 0 ? 9 : sig);
                        if (timeout > 0) _stopDeadline = Math.Min(_stopDeadline, Environment.TickCount64 + timeout * 1000L);
                    }
                    break;
                case "resize":
                    if (_pty is not null) Pty.SetSize(_pty.Value, ushort.Parse(parts[1]), ushort.Parse(parts[2]));
                    Reply(c, MonitorProtocol.Ok, "");
                    break;
                default:
                    Reply(c, MonitorProtocol.Error, $"unknown request \"{c.Request}\"");
                    break;
            }
        }
        catch (Exception e) when (e is ArgumentException or FormatException or IndexOutOfRangeException or SyscallException)
        {
            Reply(c, MonitorProtocol.Error, e.Message);
        }
    }

    void Reply(Client c, byte type, string msg)
    {
        Send(c, MonitorProtocol.Frame(type, msg));
        Close(c);
    }

    static void Send(Client c, byte[] frame)
    {
        if (c.Closed) return;
        fixed (byte* p = frame)
        {
            var off = 0;
            while (off < frame.Length)
            {
                var n = sendmsgRaw(c.Fd.Value, p + off, frame.Length - off);
                if (n < 0)
                {
                    if (Marshal.GetLastPInvokeError() == Errno.EINTR) continue;
                    c.Closed = true; c.Fd.Dispose();
                    return;
                }
                off += (int)n;
            }
        }
    }

    // send(2) with MSG_NOSIGNAL: a client that went away must not kill the monitor with SIGPIPE.
    static nint sendmsgRaw(int fd, byte* p, int len)
    {
        var iov = new IoVec { Base = p, Len = (nuint)len };
        var msg = new MsgHdr { Iov = &iov, IovLen = 1 };
        return sendmsg(fd, &msg, 0x4000);
    }

    static void Close(Client c)
    {
        if (c.Closed) return;
        c.Closed = true;
        c.Fd.Dispose();
    }

    // ------------------------------------------------------------------ exit

    void Finish()
    {
        Timing.Mark("shim: exited, drained");
        _log?.FlushAll();
        _log?.Dispose();
        _stdoutR?.Dispose(); _stderrR?.Dispose(); _pty?.Dispose(); _stdinW?.Dispose();
        var code = _exitStatus ?? 255;
        // The runtime's delete (its state, the cgroups) and the network teardown (veth, address, rules) do not
        // depend on each other: the delete runs while the endpoints are released and the exit is recorded.
        using var devnull = RuntimeClient.DevNull();
        var deleting = _runtime.Start(["delete", "--force", _id], devnull.Value, devnull.Value, devnull.Value);
        ReleaseNetworks();
        var now = JsonFileLog.FormatTime(DateTime.UtcNow);
        // die before the record says exited, so a `stop` waiting on the record reports after it.
        ContainerRecord current = _rec;
        try { if (_store.Exists(_id)) current = _store.Load(_id); } catch (Exception e) when (e is EngineException or IOException or System.Text.Json.JsonException) { } // the current name (renamed meanwhile)
        Events.ContainerEvents.Emit(_store.Root, current, "die", ("exitCode", code.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        Events.ObjectEvents.VolumeMounts(_store.Root, current, mount: false);
        // A --rm container is removed below: its exit status goes to the clients only.
        if (!_rec.HostConfig.AutoRemove) UpdateIfOurs(r =>
        {
            r.State.Status = "exited"; r.State.Running = false; r.State.Paused = false; r.State.Restarting = false; r.State.Pid = 0;
            r.State.ExitCode = code; r.State.FinishedAt = now; r.Monitor = null;
            Networking.ContainerNetworking.ClearRuntime(r.NetworkSettings);
        });
        Timing.Mark("shim: exit recorded");
        Sys.Wait(deleting);
        Timing.Mark("shim: deleted");
        ReapAll();
        _listener?.Dispose();
        if (_rec.HostConfig.AutoRemove) { _store.Remove(_id, _rec.BareName); Volumes.ContainerVolumes.RemoveAnonymous(_rec, _store.Root); }
        else CleanRunDir();
        var exit = MonitorProtocol.Frame(MonitorProtocol.Exit, code.ToString());
        foreach (var c in _clients)
            if (c.Attached || c.Waiter) Send(c, exit);
        foreach (var c in _clients) Close(c);
        Timing.Mark("shim: done");
    }

    /// <summary>The container's endpoints go when it exits: nobody else may be running then.</summary>
    void ReleaseNetworks()
    {
        if (!Networking.ContainerNetworking.IsNetworked(_rec.HostConfig)) return;
        try { Networking.ContainerNetworking.Release(_id, _store.Root); } // all of them: `network connect` may have added some
        catch (EngineException e) { try { File.AppendAllText(System.IO.Path.Combine(_runDir, "shim.log"), e.Message + "\n"); } catch (IOException) { } }
        Timing.Mark("shim: network released");
    }

    /// <summary>Changes the record only while this monitor owns it (a concurrent start's monitor,
    /// or a remove, must not be overwritten).</summary>
    void UpdateIfOurs(Action<ContainerRecord> change)
    {
        try
        {
            using var l = _store.Lock(_id);
            var r = _store.Load(_id);
            if (r.Monitor is { } m && m.Pid != Environment.ProcessId) return;
            change(r);
            _store.Save(r);
        }
        catch (EngineException) { /* removed meanwhile */ }
    }

    void CleanRunDir()
    {
        try { Directory.Delete(_runDir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    public static long ParseSize(string? s)
    {
        if (string.IsNullOrEmpty(s)) return -1;
        s = s.Trim().ToLowerInvariant();
        long mult = 1;
        var last = s[^1];
        if (last == 'b') { s = s[..^1]; last = s.Length > 0 ? s[^1] : '0'; }
        switch (last)
        {
            case 'k': mult = 1024; s = s[..^1]; break;
            case 'm': mult = 1024 * 1024; s = s[..^1]; break;
            case 'g': mult = 1024L * 1024 * 1024; s = s[..^1]; break;
        }
        if (!double.TryParse(s, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var v) || v < 0)
            throw EngineException.Invalid($"invalid size \"{s}\"");
        return (long)(v * mult);
    }
}
