using System.Runtime.InteropServices;
using System.Text;
using Berth.Engine.Containers;
using Berth.Linux;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.Monitor;

/// <summary>`berth-shim`: one per running container, like conmon. Started detached (own session) by
/// `berth start/run`; runs `berth-runc create` + `start`, becomes the container's subreaper, owns its
/// stdio (pipes, or the pty master received on the console socket) and the control socket, records
/// the container running and reports the outcome of the start on fd 3 ("ok PID" or "error CODE
/// MESSAGE") to whoever started it. Then it execs the native monitor (native/monitor.c, <see
/// cref="MonitorImage"/>) with those descriptors: a small C program does the steady state (log,
/// clients, signals, reaping, health check timer) and execs `berth-shim --resume` when something
/// needs a decision. Every decision is here: after an exit, record it, restart with back-off (the
/// wait itself is the native monitor's, so the socket keeps answering) or finish — `berth-runc
/// delete`, networks released, exit recorded, --rm, exit frames to the waiting clients.
/// The process keeps its pid throughout, so the record's Monitor {pid, start time} stays true.</summary>
public sealed unsafe class ContainerMonitor
{
    readonly ContainerStore _store;
    readonly RuntimeClient _runtime;
    readonly string _id;
    readonly string[] _args;
    ContainerRecord _rec = null!;
    string _runDir = "";

    Fd? _stdinW, _stdoutR, _stderrR, _pty, _listener;
    int _initPid;
    int? _exitStatus;
    bool _holding;
    // Handed over by the native monitor: its clients ("FD.FLAGS[.HEXLINE]", comma-separated; opaque
    // here but for the flags 1 attached and 16 waiting, who get the exit frame).
    string _clients = "";
    // Restart state, carried on the command line across the execs of one monitor.
    int _restarts, _backoff = 100;
    long _started;
    bool _stopRequested;

    ContainerMonitor(ContainerStore store, RuntimeClient runtime, string id, string[] args)
    {
        _store = store; _runtime = runtime; _id = id; _args = args;
    }

    /// <summary>Entry point: berth-shim --root R --runroot RR --runtime PATH --id ID [--hold]
    /// [--restarts N --backoff MS --started TICKS]; with --health one health check
    /// (<see cref="HealthChecker.RunOnce"/>); with --resume exited|start the native monitor hands back
    /// (--exit CODE --listener FD [--clients SPEC] [--stop-requested]).</summary>
    public static int Main(string[] args)
    {
        string? root = null, runRoot = null, runtime = null, id = null, resume = null, clients = null;
        bool hold = false, health = false, stopRequested = false;
        int exit = 255, listener = -1, restarts = 0, backoff = 100;
        long started = 0;
        var baseArgs = new List<string> { "berth-shim" };
        try
        {
            for (var i = 0; i < args.Length; i++)
            {
                string Next() => args[++i];
                switch (args[i])
                {
                    case "--root": root = Next(); baseArgs.AddRange(["--root", root]); break;
                    case "--runroot": runRoot = Next(); baseArgs.AddRange(["--runroot", runRoot]); break;
                    case "--runtime": runtime = Next(); baseArgs.AddRange(["--runtime", runtime]); break;
                    case "--id": id = Next(); baseArgs.AddRange(["--id", id]); break;
                    case "--hold": hold = true; break;
                    case "--health": health = true; break;
                    case "--restarts": restarts = int.Parse(Next()); break;
                    case "--backoff": backoff = int.Parse(Next()); break;
                    case "--started": started = long.Parse(Next()); break;
                    case "--resume": resume = Next(); break;
                    case "--exit": exit = int.Parse(Next()); break;
                    case "--listener": listener = int.Parse(Next()); break;
                    case "--clients": clients = Next(); break;
                    case "--stop-requested": stopRequested = true; break;
                    default: Console.Error.WriteLine($"berth-shim: unknown argument {args[i]}"); return 125;
                }
            }
        }
        catch (Exception e) when (e is FormatException or IndexOutOfRangeException or OverflowException)
        {
            Console.Error.WriteLine("berth-shim: invalid arguments");
            return 125;
        }
        if (root is null || runRoot is null || runtime is null || id is null || resume is not (null or "exited" or "start") || (resume is not null && listener < 0))
        {
            Console.Error.WriteLine("berth-shim: usage: berth-shim --root DIR --runroot DIR --runtime PATH --id ID [--hold | --health | --resume exited|start --exit CODE --listener FD]");
            return 125;
        }
        var store = new ContainerStore(root, runRoot);
        var rt = new RuntimeClient(runtime, store.RuntimeRoot);
        if (health) return HealthChecker.RunOnce(store, rt, id);
        var m = new ContainerMonitor(store, rt, id, [.. baseArgs])
        {
            _holding = hold, _restarts = restarts, _backoff = backoff, _started = started,
            _stopRequested = stopRequested, _clients = clients ?? "",
            _starter = resume is null ? 3 : -1, // fd 3 is the starter's only before the first exec
        };
        try
        {
            if (resume is null) return m.Run();
            m.Resume(resume == "start", exit, listener);
            return 0;
        }
        catch (Exception e)
        {
            m.Report($"error 125 monitor: {e.Message.Replace('\n', ' ')}");
            try { File.AppendAllText(System.IO.Path.Combine(m._runDir, "shim.log"), e + "\n"); } catch (IOException) { }
            return 1;
        }
    }

    int _starter;

    /// <summary>fd 3 is the pipe to the starter: one line, an error from here, "ok PID" from the native
    /// monitor. With --hold it stays open until the starter attaches (or goes away: POLLERR on the write
    /// end), so output held for it is not lost.</summary>
    void Report(string line)
    {
        if (_starter < 0) return;
        var b = Encoding.UTF8.GetBytes(line + "\n");
        fixed (byte* p = b) write(_starter, p, b.Length);
        CloseStarter();
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
        using (_store.Lock(_id))
        {
            // The starter recorded this monitor's pid under the lock before releasing it.
            var r = _store.Load(_id);
            if (r.Monitor is not { } m || m.Pid != Environment.ProcessId)
                throw new EngineException(ErrorKind.FailedPrecondition, $"container {_id} is being started by another monitor");
            _rec = r;
        }
        // The log exists from the start (the native monitor appends to it).
        using (Sys.Open(LogPath, O_WRONLY | O_CREAT | O_APPEND, 0x1a0)) { }

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
        // The native monitor answers "ok PID" once it runs (the starter then finds the monitor in its steady state).
        ExecNative(waitMs: -1);
        return 1; // not reached
    }

    /// <summary>The native monitor handed back: the container exited (<paramref name="afterBackoff"/>
    /// false), or the back-off before a restart is over or a stop came during it (true).</summary>
    void Resume(bool afterBackoff, int exit, int listener)
    {
        _runDir = _store.RunDir(_id);
        if (chdir(_runDir) != 0) throw SyscallException.Last("chdir", _runDir);
        // Handed over without close-on-exec; nothing spawned from here may inherit them.
        _listener = new Fd(listener);
        fcntl(listener, F_SETFD, FD_CLOEXEC);
        foreach (var (fd, _) in Clients()) fcntl(fd, F_SETFD, FD_CLOEXEC);
        _rec = _store.Load(_id);
        _exitStatus = exit;
        Timing.Mark(afterBackoff ? "shim: resumed after back-off" : "shim: resumed after exit");
        if (!afterBackoff)
        {
            if (!ShouldRestart()) { Finish(); return; }
            // Restart policy: record the exit, clean the runtime's state, back off (doubling from
            // 100 ms, reset after 10 s of running, at most 10 s), start again.
            if (Environment.TickCount64 - _started > 10_000) _backoff = 100;
            var now = JsonFileLog.FormatTime(DateTime.UtcNow);
            UpdateIfOurs(r =>
            {
                r.State.Status = "restarting"; r.State.Restarting = true; r.State.Pid = 0;
                r.State.ExitCode = exit; r.State.FinishedAt = now; r.RestartCount++;
            });
            _restarts++;
            using (var devnull = RuntimeClient.DevNull())
                _runtime.Run(["delete", "--force", _id], devnull.Value, devnull.Value, devnull.Value);
            ReapAll();
            ReleaseNetworks(); // connected again (same address if free) by the next CreateAndStart
            ReleaseVolumes(); // dockerd's cleanup at each exit: mounted again by the next start
            ExecNative(waitMs: _backoff);
            return;
        }
        if (_stopRequested) { Finish(); return; }
        _backoff = Math.Min(_backoff * 2, 10_000);
        _exitStatus = null;
        var again = CreateAndStart();
        if (again is not null)
        {
            _exitStatus = RuntimeClient.ExitCodeFor(again);
            UpdateIfOurs(r => r.State.Error = again);
            Finish();
            return;
        }
        ExecNative(waitMs: -1);
    }

    /// <summary>Execs the native monitor with this process's descriptors: for the running container
    /// (<paramref name="waitMs"/> &lt; 0), or for a restart's back-off.</summary>
    void ExecNative(int waitMs)
    {
        var path = MonitorImage.Ensure(_store.Root);
        var self = open("/proc/self/exe", O_PATH, 0); // to exec back into, whatever happens to the path
        if (self < 0) throw SyscallException.Last("open", "/proc/self/exe");
        var keep = new List<int> { self, _listener!.Value };
        var argv = new List<string> { "berth-shim", "--exec-fd", Str(self), "--listener", Str(_listener.Value) };
        if (waitMs < 0)
        {
            argv.AddRange(["--pid", Str(_initPid), "--log", LogPath]);
            foreach (var (name, fd) in new[] { ("--stdout", _stdoutR), ("--stderr", _stderrR), ("--pty", _pty), ("--stdin", _stdinW) })
                if (fd is not null) { argv.AddRange([name, Str(fd.Value)]); keep.Add(fd.Value); }
            if (_starter >= 0)
            {
                argv.AddRange(["--starter", Str(_starter), "--report", $"ok {_initPid}", "--hold", _holding ? "1" : "0"]);
                keep.Add(_starter);
            }
            var logOpts = _rec.HostConfig.LogConfig.Config;
            var maxSize = ParseSize(logOpts.GetValueOrDefault("max-size"));
            if (maxSize > 0) argv.AddRange(["--log-max-size", Str(maxSize)]);
            if (int.TryParse(logOpts.GetValueOrDefault("max-file"), out var maxFile) && maxFile > 1) argv.AddRange(["--log-max-file", Str(maxFile)]);
            if (HealthChecker.IntervalMs(_rec) is > 0 and var interval) argv.AddRange(["--health-interval", Str(interval)]);
        }
        else argv.AddRange(["--wait", Str(waitMs), "--exit", Str(_exitStatus ?? 255)]);
        if (_clients.Length > 0) argv.AddRange(["--clients", _clients]);
        foreach (var (fd, _) in Clients()) keep.Add(fd);
        argv.Add("--");
        argv.AddRange(_args);
        argv.AddRange(["--restarts", Str(_restarts), "--backoff", Str(_backoff), "--started", Str(_started)]);
        foreach (var fd in keep) fcntl(fd, F_SETFD, 0);
        var env = new List<string>();
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables()) env.Add($"{e.Key}={e.Value}");
        Timing.Mark(waitMs < 0 ? "shim: exec native monitor" : "shim: exec native monitor (back-off)");
        using var strings = new NativeStrings();
        execve(strings.Add(path), strings.AddArray(argv), strings.AddArray(env));
        throw SyscallException.Last("execve", path);
    }

    /// <summary>Where the output is logged: the json-file log, or nowhere with the "none" log driver.</summary>
    string LogPath => _rec.HostConfig.LogConfig.Type == "none" ? "/dev/null" : _rec.LogPath;

    static string Str(long v) => v.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The handed-over clients: descriptor and flags.</summary>
    IEnumerable<(int Fd, int Flags)> Clients()
    {
        foreach (var item in _clients.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = item.Split('.');
            if (int.TryParse(parts[0], out var fd) && parts.Length > 1 && int.TryParse(parts[1], out var flags)) yield return (fd, flags);
        }
    }

    bool ShouldRestart()
    {
        if (_stopRequested) return false;
        // the stored record's: `docker update --restart` may have changed it while the container ran
        var policy = _rec.HostConfig.RestartPolicy;
        return policy.Name switch
        {
            "always" or "unless-stopped" => true,
            "on-failure" => _exitStatus is not 0 && (policy.MaximumRetryCount <= 0 || _restarts < policy.MaximumRetryCount),
            _ => false,
        };
    }

    /// <summary>Returns the runtime's error, or null when the container runs. The container's volumes
    /// with mount options are mounted first (<see cref="Volumes.VolumeMounts"/>) and released if it
    /// does not start.</summary>
    string? CreateAndStart()
    {
        try { Volumes.VolumeMounts.Acquire(_rec, _store.Root, _store.RunRoot, Environment.ProcessId); }
        catch (Exception e) when (e is EngineException or SyscallException or IOException) { return e.Message; }
        string? err;
        try { err = CreateAndStartContainer(); }
        catch { ReleaseVolumes(); throw; }
        if (err is not null) ReleaseVolumes();
        return err;
    }

    /// <summary>The container no longer uses its volumes (it exited, or did not start).</summary>
    void ReleaseVolumes()
    {
        try { Volumes.VolumeMounts.Release(_rec, _store.Root, _store.RunRoot); }
        catch (Exception e) when (e is EngineException or SyscallException or IOException)
        {
            try { File.AppendAllText(System.IO.Path.Combine(_runDir, "shim.log"), e.Message + "\n"); } catch (IOException) { }
        }
    }

    string? CreateAndStartContainer()
    {
        using var devnull = RuntimeClient.DevNull();
        var tty = _rec.Config.Tty;
        ConsoleSocket? console = null;
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
            console = new ConsoleSocket("console.sock");
            args.Add("--console-socket"); args.Add(console.Path);
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
            console?.Dispose();
            return RuntimeClient.LastError("runc.log") ?? LastStderrLine() ?? $"runtime create exited with status {rc}";
        }
        if (console is not null)
        {
            using (console) _pty = console.Receive();
            if (_pty is null) return "runtime did not send the pty master";
            if (_rec.Config.OpenStdin) _stdinW = null; // stdin goes through the pty master
        }
        _initPid = int.Parse(File.ReadAllText("init.pid").Trim());
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
            if (HealthChecker.IntervalMs(_rec) > 0) r.State.Health = HealthChecker.Starting(_restarts > 0 ? r.State.Health : null);
        });
        // "start" here, before the monitor can reap the container: its "die" always comes after
        Events.ObjectEvents.VolumeMounts(_store.Root, _rec, mount: true);
        Events.ContainerEvents.Emit(_store.Root, _rec, "start");
        foreach (var f in new[] { _stdoutR, _stderrR, _pty, _stdinW }) if (f is not null) SetNonBlocking(f.Value);
        _started = Environment.TickCount64;
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

    // ------------------------------------------------------------------ children

    static void ReapAll()
    {
        int status;
        while (waitpid(-1, &status, WNOHANG | WALL) > 0) { }
    }

    // ------------------------------------------------------------------ exit

    void Finish()
    {
        Timing.Mark("shim: exited, drained");
        var code = _exitStatus ?? 255;
        // The runtime's delete (its state, the cgroups) and the network teardown (veth, address, rules) do not
        // depend on each other: the delete runs while the endpoints are released and the exit is recorded.
        using var devnull = RuntimeClient.DevNull();
        var deleting = _runtime.Start(["delete", "--force", _id], devnull.Value, devnull.Value, devnull.Value);
        ReleaseNetworks();
        // before the record says exited: whoever waits for the exit finds the volumes' mounts gone
        ReleaseVolumes();
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
        var exit = MonitorProtocol.Frame(MonitorProtocol.Exit, code.ToString(System.Globalization.CultureInfo.InvariantCulture));
        foreach (var (fd, flags) in Clients())
        {
            using var c = new Fd(fd);
            if ((flags & (1 | 16)) != 0) SendAll(fd, exit); // attached or waiting
        }
        Timing.Mark("shim: done");
    }

    // send(2) with MSG_NOSIGNAL: a client that went away must not kill the monitor with SIGPIPE.
    static void SendAll(int fd, byte[] frame)
    {
        fixed (byte* p = frame)
        {
            var off = 0;
            while (off < frame.Length)
            {
                var iov = new IoVec { Base = p + off, Len = (nuint)(frame.Length - off) };
                var msg = new MsgHdr { Iov = &iov, IovLen = 1 };
                var n = sendmsg(fd, &msg, 0x4000);
                if (n < 0 && Marshal.GetLastPInvokeError() == Errno.EINTR) continue;
                if (n <= 0) return;
                off += (int)n;
            }
        }
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
