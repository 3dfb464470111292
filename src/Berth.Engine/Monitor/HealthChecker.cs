using System.Runtime.InteropServices;
using System.Text;
using Berth.Engine.Containers;
using Berth.Linux;
using Berth.Oci.Image;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.Monitor;

/// <summary>
/// A container's health check, run by its monitor inside the monitor's poll loop: every Interval the
/// test runs in the container (`berth-runc exec` with a process file, built as `berth exec` builds it), its exit code and output
/// (first 4096 bytes) become a log entry (the last 5 kept), and State.Health follows docker's rules:
/// starting until the first success or until Retries consecutive failures counted after the start
/// period; healthy on success; unhealthy after Retries failures; a check past its Timeout is killed
/// and fails with exit code -1.
/// </summary>
public sealed unsafe class HealthChecker
{
    public const long DefaultInterval = 30_000_000_000, DefaultTimeout = 30_000_000_000;
    public const int DefaultRetries = 3, MaxLogEntries = 5, MaxOutput = 4096;

    readonly RuntimeClient _runtime;
    readonly ContainerRecord _rec;
    readonly ContainerStore _store;
    readonly List<string> _test;
    List<string>? _execArgs;
    readonly long _intervalMs, _timeoutMs, _startPeriodMs;
    readonly int _retries;
    readonly Action<Action<ContainerRecord>> _update;
    readonly HealthState _state = new();

    long _due = long.MaxValue, _deadline = long.MaxValue, _startedTick;
    int _pid;
    bool _timedOut;
    Fd? _pidfd, _out;
    readonly List<byte> _output = [];
    DateTime _checkStart;

    HealthChecker(RuntimeClient runtime, ContainerRecord rec, List<string> test, HealthConfig h, Action<Action<ContainerRecord>> update)
    {
        _runtime = runtime; _rec = rec; _store = ContainerStore.Of(rec, runtime.StateRoot); _test = test; _update = update;
        _intervalMs = Ms(h.Interval, DefaultInterval);
        _timeoutMs = Ms(h.Timeout, DefaultTimeout);
        _startPeriodMs = Ms(h.StartPeriod, 0);
        _retries = h.Retries is > 0 and var r ? r : DefaultRetries;
    }

    static long Ms(long? ns, long def) => Math.Max(1, (ns is > 0 ? ns.Value : def) / 1_000_000);

    /// <summary>The checker for a container, or null when it has no health check (or NONE).</summary>
    public static HealthChecker? Create(ContainerRecord rec, RuntimeClient runtime, Action<Action<ContainerRecord>> update)
    {
        var h = rec.Config.Healthcheck;
        var argv = Healthcheck.Command(h);
        if (h is null || argv is null) return null;
        return new HealthChecker(runtime, rec, [.. argv], h, update);
    }

    /// <summary>The container (re)started: health starts over as "starting"; the first check is
    /// one interval away. Returns the state to record.</summary>
    public HealthState Started()
    {
        Abort();
        _state.Status = "starting";
        _state.FailingStreak = 0;
        _startedTick = Environment.TickCount64;
        _due = _startedTick + _intervalMs;
        return Snapshot();
    }

    /// <summary>The container exited: no more checks; a running one is killed.</summary>
    public void Stopped()
    {
        Abort();
        _due = long.MaxValue;
    }

    HealthState Snapshot() => new() { Status = _state.Status, FailingStreak = _state.FailingStreak, Log = [.. _state.Log] };

    /// <summary>Milliseconds until this checker needs the loop again (or <paramref name="current"/>).</summary>
    public int Timeout(int current)
    {
        var next = Math.Min(_pid > 0 ? _deadline : _due, long.MaxValue);
        if (next == long.MaxValue) return current;
        var left = (int)Math.Clamp(next - Environment.TickCount64, 0, int.MaxValue);
        return current < 0 ? left : Math.Min(current, left);
    }

    public void AddPollFds(List<(int Fd, short Events, Action<short> Handle)> fds)
    {
        if (_out is not null) fds.Add((_out.Value, POLLIN, _ => ReadOutput()));
        if (_pidfd is not null) fds.Add((_pidfd.Value, POLLIN, _ => Reap()));
    }

    /// <summary>After each poll: starts a due check, kills one past its timeout.</summary>
    public void Tick(bool containerRunning)
    {
        var now = Environment.TickCount64;
        if (_pid > 0 && !_timedOut && now >= _deadline)
        {
            _timedOut = true;
            kill(_pid, 9);
            Record(-1, $"Health check exceeded timeout ({FormatDuration(_timeoutMs)})");
        }
        if (_pid == 0 && containerRunning && now >= _due) StartCheck();
    }

    void StartCheck()
    {
        _due = Environment.TickCount64 + _intervalMs;
        int* fds = stackalloc int[2];
        if (pipe2(fds, O_CLOEXEC) != 0) return;
        using var w = new Fd(fds[1]);
        _out = new Fd(fds[0]);
        var fl = fcntl(_out.Value, F_GETFL, 0);
        fcntl(_out.Value, F_SETFL, fl | O_NONBLOCK);
        using var devnull = RuntimeClient.DevNull();
        _checkStart = DateTime.UtcNow;
        _output.Clear();
        _timedOut = false;
        try
        {
            // the container's user, environment and working directory, as `berth exec` gives them
            _execArgs = ContainerManager.ExecArgs(_store, _rec, _test, [], null, null, tty: false, detach: false);
            _pid = Spawn.Start(_runtime.Path, ["berth-runc", "--root", _runtime.StateRoot, .. _execArgs], RuntimeClient.ChildEnv(), [(devnull.Value, 0), (w.Value, 1), (w.Value, 2)]);
        }
        catch (Exception e) when (e is SyscallException or EngineException or IOException)
        {
            _out.Dispose(); _out = null;
            Forget();
            Record(-1, e.Message);
            return;
        }
        var pfd = (int)syscall(SYS_pidfd_open, _pid, 0, 0, 0, 0, 0);
        _pidfd = pfd >= 0 ? new Fd(pfd) : null;
        _deadline = Environment.TickCount64 + _timeoutMs;
    }

    void ReadOutput()
    {
        if (_out is null) return;
        var buf = new byte[4096];
        while (true)
        {
            int n;
            fixed (byte* p = buf) n = (int)read(_out.Value, p, buf.Length);
            if (n < 0 && Marshal.GetLastPInvokeError() is Errno.EINTR) continue;
            if (n < 0 && Marshal.GetLastPInvokeError() is Errno.EAGAIN) return;
            if (n <= 0) { _out.Dispose(); _out = null; return; }
            for (var i = 0; i < n && _output.Count < MaxOutput; i++) _output.Add(buf[i]);
        }
    }

    void Reap()
    {
        int status;
        var r = waitpid(_pid, &status, WNOHANG | WALL);
        if (r == _pid) Reaped(_pid, status);
        else if (r < 0) Reaped(_pid, -1); // reaped elsewhere
    }

    /// <summary>The monitor reaped a child: true when it was this checker's exec.</summary>
    public bool Reaped(int pid, int status)
    {
        if (pid != _pid || _pid == 0) return false;
        ReadOutput();
        _out?.Dispose(); _out = null;
        _pidfd?.Dispose(); _pidfd = null;
        _pid = 0;
        _deadline = long.MaxValue;
        Forget();
        if (!_timedOut) Record(status < 0 ? -1 : Sys.DecodeStatus(status), Encoding.UTF8.GetString(_output.ToArray()));
        return true;
    }

    void Abort()
    {
        if (_pid > 0)
        {
            kill(_pid, 9);
            int status;
            waitpid(_pid, &status, WALL);
        }
        _out?.Dispose(); _out = null;
        _pidfd?.Dispose(); _pidfd = null;
        _pid = 0;
        _deadline = long.MaxValue;
        Forget();
    }

    /// <summary>Removes the check's process file (the runtime has read it).</summary>
    void Forget()
    {
        if (_execArgs is not null) ContainerManager.ForgetExecArgs(_execArgs);
        _execArgs = null;
    }

    void Record(int exitCode, string output)
    {
        var entry = new HealthLogEntry
        {
            Start = JsonFileLog.FormatTime(_checkStart), End = JsonFileLog.FormatTime(DateTime.UtcNow), ExitCode = exitCode, Output = output,
        };
        _state.Log.Add(entry);
        if (_state.Log.Count > MaxLogEntries) _state.Log.RemoveRange(0, _state.Log.Count - MaxLogEntries);
        if (exitCode == 0)
        {
            _state.FailingStreak = 0;
            _state.Status = "healthy";
        }
        else
        {
            var inStartPeriod = _state.Status == "starting" && Environment.TickCount64 - _startedTick < _startPeriodMs;
            if (!inStartPeriod)
            {
                _state.FailingStreak++;
                if (_state.FailingStreak >= _retries) _state.Status = "unhealthy";
            }
        }
        var snap = Snapshot();
        _update(r => r.State.Health = snap);
    }

    /// <summary>Go's time.Duration formatting for the timeout message (30s, 1m30s, 500ms).</summary>
    public static string FormatDuration(long ms)
    {
        if (ms < 1000) return ms + "ms";
        var t = TimeSpan.FromMilliseconds(ms);
        var sec = (t.TotalSeconds % 60).ToString("0.###", System.Globalization.CultureInfo.InvariantCulture) + "s";
        if (t.TotalMinutes < 1) return sec;
        var min = (int)t.TotalMinutes % 60 + "m";
        return t.TotalHours < 1 ? min + sec : (int)t.TotalHours + "h" + min + sec;
    }
}
