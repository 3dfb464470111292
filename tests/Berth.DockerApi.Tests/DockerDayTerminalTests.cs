using System.Text.Json;
using System.Text.RegularExpressions;
using Berth.Images.Tests.Support;

namespace Berth.DockerApi.Tests;

/// <summary>The terminal side of the Docker user's day (see <see cref="DockerDayTests"/>): attaching to a
/// `run -dit` container and detaching from it, the terminal's size through /resize, TERM, `run -t`
/// without -i, and ctrl-c typed into `run -it` and `exec -it`.</summary>
public sealed partial class DockerDayTests
{
    /// <summary>docker on a pty of <paramref name="rows"/>×<paramref name="cols"/> (set before docker
    /// starts), driven by <paramref name="steps"/>: ("expect", text) waits for text in the output since the
    /// last match, ("send", bytes) types, ("size", "ROWS COLS") resizes the terminal (the kernel signals
    /// SIGWINCH to docker), ("sleep", seconds). Then docker's exit is awaited (30 s, else killed: 124).</summary>
    static ToolResult OnTerminal(DaySide s, string dockerArgs, int rows, int cols, params (string Op, string Arg)[] steps)
    {
        const string driver = """
            import fcntl, json, os, pty, select, signal, struct, sys, termios, time
            steps = json.loads(os.environ["STEPS"])
            rows, cols = int(os.environ["ROWS"]), int(os.environ["COLS"])
            pid, fd = pty.fork()
            if pid == 0:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
                os.execvp(sys.argv[1], sys.argv[1:])
            out = b""
            mark = 0
            def read(until, secs):
                global out
                end = time.time() + secs
                while time.time() < end:
                    if until():
                        return True
                    if select.select([fd], [], [], 0.2)[0]:
                        try:
                            d = os.read(fd, 4096)
                        except OSError:
                            return until()
                        if not d:
                            return until()
                        out += d
                return until()
            for op, arg in steps:
                if op == "expect":
                    want = arg.encode()
                    if read(lambda: out.find(want, mark) >= 0, 30):
                        mark = out.find(want, mark) + len(want)
                    else:
                        out += b"\n<<timed out waiting for " + want + b">>\n"
                elif op == "send":
                    os.write(fd, arg.encode())
                elif op == "size":
                    r, c = arg.split()
                    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", int(r), int(c), 0, 0))
                elif op == "sleep":
                    read(lambda: False, float(arg))
            read(lambda: False, 30)
            end = time.time() + 30
            r, st = os.waitpid(pid, os.WNOHANG)
            while r == 0 and time.time() < end:
                time.sleep(0.1)
                r, st = os.waitpid(pid, os.WNOHANG)
            if r == 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                st = 124 << 8
            sys.stdout.write(out.decode(errors="replace"))
            sys.exit(os.waitstatus_to_exitcode(st))
            """;
        var json = JsonSerializer.Serialize(steps.Select(x => new[] { x.Op, x.Arg }).ToArray());
        return s.Shell($"STEPS={DaySide.Quote(json)} ROWS={rows} COLS={cols} python3 -c {DaySide.Quote(driver)} {ServiceFixture.DockerCli} {dockerArgs}");
    }

    /// <summary>What the user saw on the terminal, and docker's exit code. Busybox's line editing asks
    /// for the cursor's position and redraws its prompt on SIGWINCH, as the timing of each run has it:
    /// its escape sequences are dropped and a redrawn prompt counts once.</summary>
    static string Screen(string what, ToolResult r) =>
        $"{what} [exit {r.ExitCode}]:\n{Redrawn().Replace(Escapes().Replace(PtsNumber(r.Stdout), ""), "")}";

    [GeneratedRegex(@"\x1b\[[0-9;?]*[A-Za-z]")] private static partial Regex Escapes();
    [GeneratedRegex(@"(?:/ # [\r ]*)+(?=/ # )")] private static partial Regex Redrawn();

    [Fact]
    public void Terminals_attach_detach_resize_term_and_ctrl_c() => Compare(s =>
    {
        // attach to `run -dit`: typed input reaches the shell, output comes back; ctrl-p ctrl-q detaches
        // and leaves it running
        s.Ok("run", "-dit", "--name", "att", I, "sh");
        s.Do("exec", "att", "sh", "-c", "echo [$TERM]");
        s.Do("exec", "-t", "att", "sh", "-c", "echo [$TERM]");
        s.Note(Screen("attach, detach", OnTerminal(s, "attach att", 24, 80,
            ("send", "echo one-$((1+1))\r"), ("expect", "one-2"), ("expect", "# "), ("send", "\u0010\u0011"))));
        s.Do("inspect", "--format", "{{.State.Status}}", "att");
        // --detach-keys: its own sequence; ctrl-p alone then passes through
        s.Note(Screen("attach --detach-keys", OnTerminal(s, "attach --detach-keys ctrl-x,x att", 24, 80,
            ("send", "echo two-$((2+1))\r"), ("expect", "two-3"), ("expect", "# "), ("send", "\u0018x"))));
        s.Do("inspect", "--format", "{{.State.Status}}", "att");
        // the terminal's size reaches the container's pty (POST /containers/ID/resize)
        s.Note(Screen("attach, stty size", OnTerminal(s, "attach att", 33, 101,
            ("sleep", "1"), ("send", "stty size\r"), ("expect", "33 101"), ("expect", "# "), ("size", "40 120"), ("sleep", "3"),
            ("send", "stty size\r"), ("expect", "40 120"), ("expect", "# "), ("send", "\u0010\u0011"))));
        // exit from the attached shell ends the container with its code
        s.Note(Screen("attach, exit", OnTerminal(s, "attach att", 24, 80, ("send", "exit 5\r"))));
        s.Do("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "att");
        s.Do("rm", "att");

        // run -it: the size at start and after a resize
        // (dockerd's stty in a fresh run -it fails now and then with ECHILD, "stty: standard input: No child
        // processes", as in run -t below: shown side by side, not compared; attach and exec -it compare sizes)
        s.KnownNote("dockerd's stty sometimes fails with ECHILD", Screen("run -it, stty size", OnTerminal(s, $"run -it --rm {I} sh", 30, 90,
            ("expect", "# "), ("send", "stty size\r"), ("expect", "30 90"), ("expect", "# "), ("size", "50 132"), ("sleep", "3"),
            ("send", "stty size\r"), ("expect", "50 132"), ("expect", "# "), ("send", "exit\r"))));
        // run -t without -i: a terminal for output only, of the caller's size
        // (dockerd's container has no usable stdin without -i: its stty fails with "No child processes";
        // runc's own terminal, as Berth's, is the pty on all three)
        s.KnownNote("stdin of run -t without -i", Screen("run -t", OnTerminal(s, $"run -t --rm {I} sh -c 'tty; stty size; echo $TERM'", 27, 85)));
        // ctrl-c typed into run -it: the pty's SIGINT to the shell's foreground process group
        s.Note(Screen("run -it, ctrl-c", OnTerminal(s, $"run -it --rm {I} sh -c 'trap \"echo got INT; exit 7\" INT; echo ready; while :; do sleep 1; done'", 24, 80,
            ("expect", "ready"), ("sleep", "1"), ("send", "\u0003"))));
        s.Note(Screen("run -it, ctrl-c to a foreground child", OnTerminal(s, $"run -it --rm {I} sh", 24, 80,
            ("expect", "# "), ("send", "sleep 100\r"), ("sleep", "1"), ("send", "\u0003"), ("expect", "# "), ("send", "echo back $?\r"),
            ("expect", "back"), ("expect", "# "), ("send", "exit\r"))));

        // exec -it: TERM as docker sets it (and -e TERM), the exec's size, ctrl-c through its pty
        s.Ok("run", "-d", "--name", "ex", I, "sleep", "1000");
        s.Do("exec", "-t", "ex", "sh", "-c", "echo $TERM");
        s.Do("exec", "-t", "-e", "TERM=vt100", "ex", "sh", "-c", "echo $TERM");
        s.Do("exec", "ex", "sh", "-c", "echo [$TERM]");
        s.Do("run", "--rm", "-t", I, "sh", "-c", "echo $TERM");
        s.Do("run", "--rm", "-t", "-e", "TERM=dumb", I, "sh", "-c", "echo $TERM");
        s.Note(Screen("exec -it, size and ctrl-c", OnTerminal(s, "exec -it ex sh", 35, 110,
            ("expect", "# "), ("send", "stty size\r"), ("expect", "35 110"), ("expect", "# "), ("size", "45 140"), ("sleep", "3"),
            ("send", "stty size\r"), ("expect", "45 140"), ("expect", "# "), ("send", "sleep 100\r"), ("sleep", "1"), ("send", "\u0003"),
            ("expect", "# "), ("send", "echo back $?\r"), ("expect", "back"), ("expect", "# "), ("send", "exit 6\r"))));
        // exec -it detaches with ctrl-p ctrl-q, or its --detach-keys (ctrl-p then passes): the shell runs on
        s.Note(Screen("exec -it, detach", OnTerminal(s, "exec -it ex sh", 24, 80,
            ("expect", "# "), ("send", "echo $$ > /tmp/one; echo det-$((1+2))\r"), ("expect", "det-3"), ("expect", "# "), ("send", "\u0010\u0011"))));
        s.Do("exec", "ex", "sh", "-c", "kill -0 $(cat /tmp/one) && echo the first shell runs on");
        s.Note(Screen("exec -it --detach-keys", OnTerminal(s, "exec -it --detach-keys ctrl-x,x ex sh", 24, 80,
            ("expect", "# "), ("send", "echo $$ > /tmp/two; echo \u0010det-$((2+2))\r"), ("expect", "det-4"), ("expect", "# "), ("send", "\u0018x"))));
        s.Do("exec", "ex", "sh", "-c", "kill -0 $(cat /tmp/two) && echo the second shell runs on");
        s.Do("exec", "-i", "--detach-keys", "ctrl-", "ex", "true");
        s.Do("rm", "-f", "ex");
    });
}
