using System.Runtime.InteropServices;
using Berth.Linux;
using static Berth.Linux.Interop.Libc;

namespace Berth.Runtime.Cli;

/// <summary>Foreground handling of a process: signals forwarded to it, and when it has a pty
/// master, the caller's terminal put in raw mode and bytes copied both ways.</summary>
public static unsafe class Terminal
{
    static readonly PosixSignal[] Forwarded =
    [
        PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP, PosixSignal.SIGQUIT,
        (PosixSignal)10, (PosixSignal)12, // SIGUSR1, SIGUSR2
    ];

    public static int WaitForeground(int pid, Fd? console)
    {
        var regs = new List<PosixSignalRegistration>();
        foreach (var s in Forwarded)
            regs.Add(PosixSignalRegistration.Create(s, ctx => { ctx.Cancel = true; kill(pid, (int)ctx.Signal > 0 ? (int)ctx.Signal : SignalNumber(ctx.Signal)); }));
        byte[]? saved = null;
        Thread? output = null;
        try
        {
            if (console is not null)
            {
                if (isatty(0) == 1)
                {
                    saved = new byte[64];
                    var raw = new byte[64];
                    fixed (byte* s = saved) tcgetattr(0, s);
                    saved.CopyTo(raw, 0);
                    fixed (byte* r = raw) { cfmakeraw(r); tcsetattr(0, 0, r); }
                    if (Pty.TryGetSize(0, out var rows, out var cols)) Pty.SetSize(console.Value, rows, cols);
                    regs.Add(PosixSignalRegistration.Create(PosixSignal.SIGWINCH, ctx =>
                    {
                        ctx.Cancel = true;
                        if (Pty.TryGetSize(0, out var r2, out var c2)) Pty.SetSize(console.Value, r2, c2);
                    }));
                }
                var master = console.Value;
                var input = new Thread(() => Copy(0, master)) { IsBackground = true };
                input.Start();
                output = new Thread(() => Copy(master, 1)) { IsBackground = true };
                output.Start();
            }
            var status = Sys.Wait(pid);
            output?.Join(2000);
            return status;
        }
        finally
        {
            foreach (var r in regs) r.Dispose();
            if (saved is not null) fixed (byte* s = saved) tcsetattr(0, 0, s);
        }
    }

    static int SignalNumber(PosixSignal s) => s switch
    {
        PosixSignal.SIGINT => 2, PosixSignal.SIGTERM => 15, PosixSignal.SIGHUP => 1, PosixSignal.SIGQUIT => 3,
        _ => 15,
    };

    static void Copy(int from, int to)
    {
        var buf = new byte[32 * 1024];
        try
        {
            while (true)
            {
                var n = Sys.Read(from, buf);
                if (n <= 0) return;
                Sys.WriteAll(to, buf.AsSpan(0, n), "terminal");
            }
        }
        catch (SyscallException) { /* EIO once the pty's last user is gone */ }
    }
}
