using System.Text;
using Berth.Linux;
using Berth.Runtime.Tests.Support;
using static Berth.Linux.Interop.Libc;

namespace Berth.Runtime.Tests;

/// <summary>Terminals given through --console-socket (as containerd asks runc): the process leads a
/// session of its own and the pty is its controlling terminal, for `run` and for `exec` alike; a
/// process without a terminal leads a session too (runc's nsexec calls setsid for every process).</summary>
public unsafe class TerminalTests
{
    /// <summary>/proc/self/stat's pid, session and tty_nr, as the process saw them.</summary>
    static (int Pid, int Session, int TtyNr) Stat(string text)
    {
        var line = text.Trim();
        var pid = int.Parse(line[..line.IndexOf(' ')]);
        // "pid (comm) state ppid pgrp session tty_nr …"
        var f = line[(line.LastIndexOf(')') + 2)..].Split(' ');
        return (pid, int.Parse(f[3]), int.Parse(f[4]));
    }

    /// <summary>tty_nr of /dev/pts/N (major 136), as the kernel encodes it in /proc/PID/stat.</summary>
    static int PtsTtyNr(int n) => (n & 0xff) | (136 << 8) | ((n & ~0xff) << 12);

    static Fd Listen(string path)
    {
        var s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        Assert.True(s >= 0);
        var fd = new Fd(s);
        var addr = new byte[110];
        addr[0] = AF_UNIX;
        var p = Encoding.UTF8.GetBytes(path);
        p.CopyTo(addr, 2);
        fixed (byte* a = addr)
        {
            Assert.Equal(0, bind(s, a, 2 + p.Length + 1));
            Assert.Equal(0, listen(s, 1));
        }
        return fd;
    }

    /// <summary>The pty master the runtime sent to the console socket (20 s at most).</summary>
    static Fd ReceiveMaster(Fd listener)
    {
        var pfd = new PollFd { Fd = listener.Value, Events = 1 /* POLLIN */ };
        Assert.True(poll(&pfd, 1, 20_000) == 1, "the runtime never connected to the console socket");
        var c = accept4(listener.Value, null, null, SOCK_CLOEXEC);
        Assert.True(c >= 0);
        using var ch = new SyncChannel(new Fd(c));
        ch.Receive(out var master);
        Assert.NotNull(master);
        return master;
    }

    /// <summary>Everything the process wrote to its terminal, until its last holder closed it.</summary>
    static string ReadAll(Fd master)
    {
        var text = new StringBuilder();
        var buf = new byte[4096];
        while (true)
        {
            var pfd = new PollFd { Fd = master.Value, Events = 1 };
            Assert.True(poll(&pfd, 1, 20_000) == 1, "the process wrote nothing for 20 s: " + text);
            nint n;
            fixed (byte* b = buf) n = read(master.Value, b, buf.Length);
            if (n <= 0) return text.ToString(); // EIO: the slave's last holder is gone
            text.Append(Encoding.UTF8.GetString(buf, 0, (int)n));
        }
    }

    static int PtyNumber(Fd master)
    {
        int n;
        Assert.Equal(0, ioctl(master.Value, TIOCGPTN, &n));
        return n;
    }

    /// <summary>Runs berth-runc ARGS with `--console-socket` (inserted after the verb): what the process
    /// wrote on its terminal, the runtime's exit code and the pty's number.</summary>
    static (string Output, int Exit, int Pty) OnConsole(Sandbox s, string verb, params string[] args)
    {
        var sock = Path.Combine(s.Dir, $"console-{Guid.NewGuid():N}"[..20] + ".sock");
        using var listener = Listen(sock);
        var (p, _, err) = s.Start(null, [verb, "--console-socket", sock, .. args]);
        using (p)
        {
            using var master = ReceiveMaster(listener);
            var output = ReadAll(master);
            Assert.True(p.WaitForExit(20_000), $"{verb} did not end");
            Assert.True(p.ExitCode is 0 or 3, File.ReadAllText(err));
            return (output, p.ExitCode, PtyNumber(master));
        }
    }

    static void AssertControllingPty(string output, int pty)
    {
        var (pid, session, ttyNr) = Stat(output);
        Assert.Equal(pid, session);
        Assert.Equal(PtsTtyNr(pty), ttyNr);
    }

    [Fact]
    public void Exec_with_a_console_socket_makes_the_pty_the_session_leaders_controlling_terminal() => Sandbox.Run(s =>
    {
        var id = s.NewId("ctty");
        s.Ok("run", "-d", "-b", s.NewBundle(id, "exec sleep 1000").Dir, id);

        // without a terminal: a session of its own, no controlling terminal
        var (pid, session, ttyNr) = Stat(s.Ok("exec", id, "cat", "/proc/self/stat").Stdout);
        Assert.Equal(pid, session);
        Assert.Equal(0, ttyNr);

        var (output, exit, pty) = OnConsole(s, "exec", "--tty", id, "cat", "/proc/self/stat");
        Assert.Equal(0, exit);
        AssertControllingPty(output, pty);
        Assert.EndsWith("\r\n", output); // the pty's line discipline (onlcr)

        // busybox sh gets job control (no "can't access tty"): its pty is its controlling terminal
        (output, exit, pty) = OnConsole(s, "exec", "--tty", id, "sh", "-ic", "tty; exit 3");
        Assert.Equal(3, exit);
        Assert.DoesNotContain("can't access tty", output);
        Assert.Contains($"/dev/pts/{pty}", output);
        s.Ok("delete", "--force", id);
    });

    [Fact]
    public void Run_with_a_terminal_makes_the_pty_the_inits_controlling_terminal() => Sandbox.Run(s =>
    {
        var id = s.NewId("cttyrun");
        var bundle = s.NewBundle(id, edit: c => { c.Proc()["terminal"] = true; c.SetArgs("cat", "/proc/self/stat"); });
        var (output, exit, pty) = OnConsole(s, "run", "-b", bundle.Dir, id);
        Assert.Equal(0, exit);
        AssertControllingPty(output, pty);
        Assert.Equal(1, Stat(output).Pid);
    });
}
