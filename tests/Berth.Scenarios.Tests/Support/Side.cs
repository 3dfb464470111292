using System.Diagnostics;
using Berth.Engine.Tests.Support;
using System.Text;
using System.Text.RegularExpressions;

namespace Berth.Scenarios.Tests.Support;

/// <summary>The outcome of one command line.</summary>
public sealed record CmdResult(int ExitCode, string Stdout, string Stderr)
{
    public string[] Lines => Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    public override string ToString() => $"exit {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}";
}

/// <summary>One engine under test (`berth` or `podman`), reached only through its command line: every
/// scenario runs the same argument lists against both sides. Each command and its output go to the
/// side's transcript, which the scenario writes to the test output.</summary>
public sealed class Side
{
    /// <summary>"berth" or "podman": the program name as a user would type it in the transcript.</summary>
    public string Name { get; }
    /// <summary>The busybox image, under the same name in both stores.</summary>
    public string Image { get; }
    public string Dir { get; }
    readonly string[] _prefix;
    readonly Dictionary<string, string> _env;
    readonly StringBuilder _transcript = new();
    int _calls;

    public Side(string name, string[] prefix, string dir, string image, Dictionary<string, string>? env = null)
    {
        Name = name; _prefix = prefix; Dir = dir; Image = image; _env = env ?? [];
    }

    public bool IsBerth => Name == "berth";
    public string Transcript => _transcript.ToString();

    /// <summary>`NAME ARGS`, stdio through files (a detached process that inherits stdout cannot hold the
    /// call open), at most 90 s.</summary>
    public CmdResult Do(params string[] args) => DoIn(null, args);

    public CmdResult DoIn(string? stdin, params string[] args)
    {
        var (p, o, e) = Start(stdin, [.. _prefix, .. args], tty: false);
        return Finish(p, o, e, args);
    }

    /// <summary>`NAME FIRST | NAME SECOND` through /bin/sh, as a user pipes one command into another.</summary>
    public CmdResult DoPipe(string[] first, string[] second)
    {
        string Line(string[] a) => string.Join(' ', _prefix.Concat(a).Select(Quote));
        var (p, o, e) = Start(null, ["/bin/sh", "-c", Line(first) + " | " + Line(second)], tty: false);
        return Finish(p, o, e, [.. first, "|", Name, .. second]);
    }

    /// <summary>Like <see cref="Do"/> but the command must succeed.</summary>
    public CmdResult Ok(params string[] args)
    {
        var r = Do(args);
        Assert.True(r.ExitCode == 0, $"{Name} {string.Join(' ', args)} failed: {r}\n--- transcript so far:\n{Transcript}");
        return r;
    }

    /// <summary>`NAME ARGS` on a terminal: script(1) gives the command a pty and types <paramref
    /// name="input"/> into it; stdout is what the terminal showed (echo included, CR LF line ends).</summary>
    public CmdResult DoTty(string input, params string[] args)
    {
        var line = string.Join(' ', _prefix.Concat(args).Select(Quote));
        var (p, o, e) = Start(input, ["script", "-qec", line, "/dev/null"], tty: true);
        return Finish(p, o, e, args, input);
    }

    /// <summary>A long-running command (e.g. `logs -f`) whose output file the caller polls; stop it
    /// with <see cref="Stop"/>.</summary>
    public Running Begin(params string[] args)
    {
        var (p, o, e) = Start(null, [.. _prefix, .. args], tty: false);
        _transcript.Append("$ ").Append(Name).Append(' ').AppendJoin(' ', args.Select(Quote)).Append(" &\n");
        return new Running(p, o, e, args);
    }

    public sealed record Running(Process Process, string StdoutPath, string StderrPath, string[] Args)
    {
        public string Stdout => File.ReadAllText(StdoutPath);
    }

    /// <summary>Ends a <see cref="Begin"/> command (SIGINT, as a user's ^C, then SIGKILL) and records its output.</summary>
    public CmdResult Stop(Running r)
    {
        if (!r.Process.HasExited)
        {
            Sh($"kill -INT {r.Process.Id}");
            if (!r.Process.WaitForExit(5_000)) { try { r.Process.Kill(); } catch (InvalidOperationException) { } r.Process.WaitForExit(); }
        }
        var res = new CmdResult(r.Process.ExitCode, File.ReadAllText(r.StdoutPath), File.ReadAllText(r.StderrPath));
        r.Process.Dispose();
        Record(res, r.Args, note: "(its output until the ^C)");
        return res;
    }

    // Under script(1), the input is typed slowly (a line at a time, as a user would) so that the shell in
    // the container has its prompt up before the next line arrives.
    const string TypeSlowly =
        "while IFS= read -r l; do sleep 0.7; printf '%s\\n' \"$l\"; done <\"$BT_IN\" | { sleep 0.5; exec \"$0\" \"$@\" >\"$BT_OUT\" 2>\"$BT_ERR\"; }";

    (Process, string, string) Start(string? stdin, string[] argv, bool tty) =>
        EngineSandbox.StartWithFiles(Path.Combine(Dir, "io-" + Name), Interlocked.Increment(ref _calls), stdin, null, argv, _env,
            tty ? TypeSlowly : EngineSandbox.ExecWithFiles);

    CmdResult Finish(Process p, string o, string e, string[] args, string? typed = null)
    {
        using (p)
        {
            if (!p.WaitForExit(90_000))
            {
                try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                p.WaitForExit();
                _transcript.Append($"$ {Name} {string.Join(' ', args.Select(Quote))}\n(timed out)\n");
                throw new TimeoutException($"{Name} {string.Join(' ', args)} did not finish in 90 s\n--- transcript:\n{Transcript}");
            }
            var r = new CmdResult(p.ExitCode, File.ReadAllText(o), File.ReadAllText(e));
            Record(r, args, typed);
            return r;
        }
    }

    void Record(CmdResult r, string[] args, string? typed = null, string? note = null)
    {
        _transcript.Append("$ ").Append(Name).Append(' ').AppendJoin(' ', args.Select(Quote)).Append(note is null ? "" : "   " + note).Append('\n');
        if (typed is not null) _transcript.Append("  (typed: ").Append(typed.Replace("\n", "⏎")).Append(")\n");
        if (r.Stdout.Length > 0) _transcript.Append(r.Stdout.Replace("\r", "")).Append(r.Stdout.EndsWith('\n') ? "" : "\n");
        foreach (var l in r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)) _transcript.Append("[stderr] ").Append(l).Append('\n');
        _transcript.Append("[exit ").Append(r.ExitCode).Append("]\n");
    }

    /// <summary>Notes a step in the transcript that is not a command (a wait, an observation).</summary>
    public void Note(string text) => _transcript.Append("# ").Append(text).Append('\n');

    /// <summary>`inspect --format F NAME`, trimmed.</summary>
    public string Field(string name, string format) => Ok("inspect", "--format", format, name).Stdout.Trim();

    /// <summary>Polls <paramref name="cond"/> (which may run commands; those are not recorded) until true.</summary>
    public void WaitFor(string what, Func<bool> cond, int timeoutMs = 60_000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        var len = _transcript.Length;
        while (true)
        {
            _transcript.Length = len;   // keep the polling commands out of the transcript
            if (cond()) break;
            if (Environment.TickCount64 > deadline)
                Assert.Fail($"{Name}: timed out waiting for {what}\n--- transcript:\n{Transcript}");
            Thread.Sleep(100);
        }
        _transcript.Length = len;
        Note("waited for " + what);
    }

    public static string Quote(string s) => Regex.IsMatch(s, @"^[A-Za-z0-9_./:=,@%+-]+$") ? s : "'" + s.Replace("'", "'\\''") + "'";

    public static string Sh(string command)
    {
        using var p = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", command]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var err = p.StandardError.ReadToEndAsync();
        var o = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{command}: {err.Result}");
        return o;
    }
}
