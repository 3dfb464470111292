using System.Runtime.InteropServices;
using System.Text;
using Berth.Engine.Containers;
using Berth.Linux;
using Berth.Oci.Image;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.Monitor;

/// <summary>
/// A container's health check. The native monitor keeps the clock: every Interval while the container
/// runs it spawns `berth-shim --health` (<see cref="RunOnce"/>, as podman's timer runs `podman
/// healthcheck run`), which runs the test in the container (`berth-runc exec`, as `berth exec` does)
/// and records its exit code and output (first 4096 bytes) as a log entry (the last 5 kept). State.Health
/// follows docker's rules: starting until the first success or until Retries consecutive failures
/// counted after the start period; healthy on success; unhealthy after Retries failures; a check past
/// its Timeout is killed and fails with exit code -1. A check whose container exits meanwhile is
/// killed and records nothing.
/// </summary>
public static unsafe class HealthChecker
{
    public const long DefaultInterval = 30_000_000_000, DefaultTimeout = 30_000_000_000;
    public const int DefaultRetries = 3, MaxLogEntries = 5, MaxOutput = 4096;

    static long Ms(long? ns, long def) => Math.Max(1, (ns is > 0 ? ns.Value : def) / 1_000_000);

    /// <summary>Milliseconds between checks, or 0 when the container has no health check (or NONE).</summary>
    public static long IntervalMs(ContainerRecord rec) =>
        Healthcheck.Command(rec.Config.Healthcheck) is null ? 0 : Ms(rec.Config.Healthcheck!.Interval, DefaultInterval);

    /// <summary>Health when the container (re)starts: "starting"; a restart keeps the log.</summary>
    public static HealthState Starting(HealthState? previous) => new() { Status = "starting", FailingStreak = 0, Log = [.. previous?.Log ?? []] };

    /// <summary>`berth-shim --health`: one check of a running container, recorded if the container
    /// is still the same run of the same monitor (this process's parent) when it ends.</summary>
    public static int RunOnce(ContainerStore store, RuntimeClient runtime, string id)
    {
        ContainerRecord rec;
        try { rec = store.Load(id); }
        catch (EngineException) { return 0; }
        var monitor = ProcStat.Read(Environment.ProcessId)?.PPid ?? 0;
        var h = rec.Config.Healthcheck;
        var test = Healthcheck.Command(h);
        if (h is null || test is null || rec.Monitor?.Pid != monitor || !rec.State.Running || rec.State.Pid <= 0) return 0;
        var initPid = rec.State.Pid;
        var initFd = (int)syscall(SYS_pidfd_open, initPid, 0, 0, 0, 0, 0);
        if (initFd < 0) return 0;
        using var init = new Fd(initFd);

        // the container's user, environment and working directory, as `berth exec` gives them (one way
        // to build an exec: a process file in the container's run directory, removed when the check ends)
        List<string> execArgs;
        try { execArgs = ContainerManager.ExecArgs(store, rec, test, [], null, null, tty: false, detach: false); }
        catch (Exception e) when (e is EngineException or IOException)
        {
            Record(store, id, monitor, initPid, h, DateTime.UtcNow, -1, e.Message);
            return 0;
        }
        try { return Check(store, runtime, id, monitor, initPid, init, h, ["berth-runc", "--root", runtime.StateRoot, .. execArgs]); }
        finally { ContainerManager.ForgetExecArgs(execArgs); }
    }

    static int Check(ContainerStore store, RuntimeClient runtime, string id, int monitor, int initPid, Fd init, HealthConfig h, List<string> argv)
    {
        var timeoutMs = Ms(h.Timeout, DefaultTimeout);

        int* fds = stackalloc int[2];
        if (pipe2(fds, O_CLOEXEC) != 0) throw SyscallException.Last("pipe2");
        var output = new List<byte>();
        var start = DateTime.UtcNow;
        int pid;
        using (var w = new Fd(fds[1]))
        using (var devnull = RuntimeClient.DevNull())
        {
            try { pid = Spawn.Start(runtime.Path, argv, RuntimeClient.ChildEnv(), [(devnull.Value, 0), (w.Value, 1), (w.Value, 2)]); }
            catch (SyscallException e)
            {
                close(fds[0]);
                Record(store, id, monitor, initPid, h, start, -1, e.Message);
                return 0;
            }
        }
        using var outR = new Fd(fds[0]);
        var execFd = (int)syscall(SYS_pidfd_open, pid, 0, 0, 0, 0, 0);
        if (execFd < 0) throw SyscallException.Last("pidfd_open", pid.ToString());
        using var exec = new Fd(execFd);
        var deadline = Environment.TickCount64 + timeoutMs;
        var buf = new byte[4096];
        var outOpen = true;
        var pfds = stackalloc PollFd[3];
        while (true)
        {
            pfds[0] = new PollFd { Fd = init.Value, Events = POLLIN };
            pfds[1] = new PollFd { Fd = exec.Value, Events = POLLIN };
            pfds[2] = new PollFd { Fd = outOpen ? outR.Value : -1, Events = POLLIN };
            var left = (int)Math.Max(0, deadline - Environment.TickCount64);
            var n = poll(pfds, 3, left);
            if (n < 0 && Marshal.GetLastPInvokeError() == Errno.EINTR) continue;
            if (n < 0) throw SyscallException.Last("poll");
            if (pfds[0].REvents != 0)
            {
                // The container exited: no result (the monitor records the exit).
                KillAndReap(pid);
                return 0;
            }
            if (outOpen && pfds[2].REvents != 0) outOpen = ReadSome(outR.Value, buf, output);
            if (pfds[1].REvents != 0 && !outOpen)
            {
                int status;
                while (waitpid(pid, &status, WALL) < 0 && Marshal.GetLastPInvokeError() == Errno.EINTR) { }
                Record(store, id, monitor, initPid, h, start, Sys.DecodeStatus(status), Encoding.UTF8.GetString(output.ToArray()));
                return 0;
            }
            if (pfds[1].REvents != 0)
            {
                // exited; what it wrote is in the pipe (unless a child of it still holds the write end)
                while (ReadSome(outR.Value, buf, output, nonBlocking: true)) { }
                outOpen = false;
                continue;
            }
            if (Environment.TickCount64 >= deadline)
            {
                KillAndReap(pid);
                Record(store, id, monitor, initPid, h, start, -1, $"Health check exceeded timeout ({FormatDuration(timeoutMs)})");
                return 0;
            }
        }
    }

    /// <summary>Reads what is there; false at the end of the output (or when nothing more is ready, non-blocking).</summary>
    static bool ReadSome(int fd, byte[] buf, List<byte> output, bool nonBlocking = false)
    {
        if (nonBlocking)
        {
            var pfd = new PollFd { Fd = fd, Events = POLLIN };
            if (poll(&pfd, 1, 0) <= 0) return false;
        }
        int n;
        fixed (byte* p = buf) n = (int)read(fd, p, buf.Length);
        if (n < 0 && Marshal.GetLastPInvokeError() is Errno.EINTR or Errno.EAGAIN) return true;
        if (n <= 0) return false;
        for (var i = 0; i < n && output.Count < MaxOutput; i++) output.Add(buf[i]);
        return true;
    }

    static void KillAndReap(int pid)
    {
        kill(pid, 9);
        int status;
        while (waitpid(pid, &status, WALL) < 0 && Marshal.GetLastPInvokeError() == Errno.EINTR) { }
    }

    static void Record(ContainerStore store, string id, int monitor, int initPid, HealthConfig h, DateTime start, int exitCode, string output)
    {
        try
        {
            using var l = store.Lock(id);
            var r = store.Load(id);
            if (r.Monitor?.Pid != monitor || r.State.Pid != initPid || !r.State.Running) return;
            var state = r.State.Health ??= Starting(null);
            state.Log.Add(new HealthLogEntry
            {
                Start = JsonFileLog.FormatTime(start), End = JsonFileLog.FormatTime(DateTime.UtcNow), ExitCode = exitCode, Output = output,
            });
            if (state.Log.Count > MaxLogEntries) state.Log.RemoveRange(0, state.Log.Count - MaxLogEntries);
            if (exitCode == 0)
            {
                state.FailingStreak = 0;
                state.Status = "healthy";
            }
            else
            {
                var sinceStart = DateTime.UtcNow - ContainerFormat.ParseTime(r.State.StartedAt);
                var inStartPeriod = state.Status == "starting" && sinceStart.TotalMilliseconds < Ms(h.StartPeriod, 0);
                if (!inStartPeriod)
                {
                    state.FailingStreak++;
                    if (state.FailingStreak >= (h.Retries is > 0 and var retries ? retries : DefaultRetries)) state.Status = "unhealthy";
                }
            }
            store.Save(r);
        }
        catch (EngineException) { /* removed meanwhile */ }
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
