using System.Runtime.InteropServices;
using Berth.Linux;
using Berth.Oci.Runtime;
using static Berth.Linux.Interop.Libc;

namespace Berth.Runtime;

/// <summary>Runs OCI hooks: the container state as JSON on stdin, the hook's own args and env,
/// killed after its timeout. Returns an error message or null.</summary>
public static unsafe partial class HookRunner
{
    public static void RunAll(string stage, IEnumerable<Hook>? hooks, State state, bool failFast, Action<string>? warn = null)
    {
        if (hooks is null) return;
        var json = SpecJson.Serialize(state);
        foreach (var h in hooks)
        {
            var err = Run(h, json);
            if (err is null) continue;
            var msg = $"{stage} hook {h.Path}: {err}";
            if (failFast) throw new RuntimeException(ErrorKind.FailedPrecondition, msg);
            warn?.Invoke(msg);
        }
    }

    public static string? Run(Hook h, byte[] stateJson)
    {
        int* p = stackalloc int[2];
        if (pipe2(p, O_CLOEXEC) != 0) throw SyscallException.Last("pipe2");
        using var rd = new Fd(p[0]);
        using var wr = new Fd(p[1]);
        int pid;
        try
        {
            var args = h.Args is { Count: > 0 } ? h.Args : new List<string> { h.Path };
            pid = Spawn.Start(h.Path, args, h.Env ?? new List<string>(), [(rd.Value, 0)]);
        }
        catch (SyscallException e) { return e.Message; }
        rd.Dispose();
        try { Sys.WriteAll(wr.Value, stateJson, "hook stdin"); }
        catch (SyscallException) { /* hook need not read its stdin */ }
        wr.Dispose();

        var deadline = h.Timeout is > 0 ? Environment.TickCount64 + h.Timeout.Value * 1000L : long.MaxValue;
        int status;
        var sleep = 1;
        while (true)
        {
            var r = waitpid(pid, &status, WNOHANG);
            if (r == pid) break;
            if (r < 0 && Marshal.GetLastPInvokeError() != Errno.EINTR) return SyscallException.Last("waitpid").Message;
            if (Environment.TickCount64 > deadline)
            {
                kill(pid, 9);
                waitpid(pid, &status, 0);
                return $"timed out after {h.Timeout}s";
            }
            Thread.Sleep(sleep);
            sleep = Math.Min(sleep * 2, 20);
        }
        var code = Sys.DecodeStatus(status);
        return code == 0 ? null : $"exit status {code}";
    }

    [LibraryImport("libc", SetLastError = true)] private static partial int pipe2(int* fds, int flags);
}
