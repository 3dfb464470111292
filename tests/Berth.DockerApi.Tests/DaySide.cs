using System.Text;
using System.Text.RegularExpressions;
using Berth.Images.Tests.Support;

namespace Berth.DockerApi.Tests;

/// <summary>
/// One daemon under test ("dockerd" or "berth"), reached only through the real docker CLI (and
/// docker-compose). Every command is written to the side's transcript; <see cref="Do"/> also records an
/// observation: the command line, exit code, stdout and stderr after <see cref="Normalise"/>, which a
/// test compares between the two sides.
/// </summary>
public sealed partial class DaySide(string name, Dictionary<string, string> env)
{
    public string Name { get; } = name;
    public bool IsBerth => Name == "berth";
    public Dictionary<string, string> Env { get; } = env;
    public List<string> Observations { get; } = [];
    readonly StringBuilder _transcript = new();
    /// <summary>Side-specific strings (ports, temp paths) and what they read as in observations.</summary>
    readonly List<(string From, string To)> _aliases = [];
    public string Transcript => _transcript.ToString();

    public void Alias(string value, string placeholder) => _aliases.Add((value, placeholder));

    /// <summary>`docker ARGS`, recorded in the transcript only.</summary>
    public ToolResult Quiet(params string[] args) => Exec(ServiceFixture.DockerCli, "docker", null, args);

    /// <summary>`docker ARGS`, recorded as an observation.</summary>
    public ToolResult Do(params string[] args) => DoWith(null, null, args);

    /// <summary>`docker ARGS` with stdin and/or an extra normalisation of its output (for what the two
    /// daemons legitimately differ on; the caller says why).</summary>
    public ToolResult DoWith(string? stdin, Func<string, string>? norm, params string[] args)
    {
        var r = Exec(ServiceFixture.DockerCli, "docker", stdin, args);
        Observe("docker", args, r, norm);
        return r;
    }

    /// <summary>`docker ARGS` whose difference between the daemons is known and not (yet) fixed in Berth:
    /// still recorded and shown side by side, but a test does not fail on it.</summary>
    public ToolResult Known(string why, params string[] args)
    {
        var r = Exec(ServiceFixture.DockerCli, "docker", null, args);
        Observe("docker", args, r, null);
        Observations[^1] = KnownPrefix + why + ") " + Observations[^1];
        return r;
    }

    /// <summary><see cref="Note"/> for an observation whose difference is known (see <see cref="Known"/>).</summary>
    public void KnownNote(string why, string observation)
    {
        Note(observation);
        Observations[^1] = KnownPrefix + why + ") " + Observations[^1];
    }

    public const string KnownPrefix = "(known difference: ";

    public ToolResult Ok(params string[] args)
    {
        var r = Quiet(args);
        Assert.True(r.ExitCode == 0, $"{Name}: docker {string.Join(' ', args)} failed: {r}\n--- transcript so far:\n{Transcript}");
        return r;
    }

    /// <summary>docker-compose with this side's daemon; its progress lines ("Creating x ... done") come
    /// in the order its parallel workers finish, so they are compared sorted.</summary>
    public ToolResult Compose(string file, string project, params string[] args)
    {
        var env = new Dictionary<string, string>(Env) { ["COMPOSE_FILE"] = file };
        var r = Tools.Run("/usr/bin/docker-compose", ["-p", project, .. args], env, stdin: "");
        Record("docker-compose", args, r);
        Observe("docker-compose", args, r, s => string.Join('\n', s.Split('\n').Order(StringComparer.Ordinal)));
        return r;
    }

    /// <summary>A shell pipeline (`sh -c`) with this side's docker environment, recorded in the transcript
    /// only: the caller notes what it saw (e.g. docker behind `script`, or a tar stream through `docker cp -`).</summary>
    public ToolResult Shell(string command)
    {
        var r = Tools.Run("/bin/sh", ["-c", command], Env, stdin: "", timeoutMs: 90_000);
        Record("sh -c", [command], r);
        return r;
    }

    /// <summary>Adds an observation made by the test itself (e.g. an HTTP fetch from the host).</summary>
    public void Note(string observation)
    {
        _transcript.Append("# ").Append(observation).Append('\n');
        Observations.Add("# " + Normalise(observation));
    }

    public void WaitFor(string what, Func<bool> cond, int timeoutMs = 30_000)
    {
        var len = _transcript.Length;
        var deadline = Environment.TickCount64 + timeoutMs;
        while (true)
        {
            _transcript.Length = len;
            if (cond()) break;
            if (Environment.TickCount64 > deadline) Assert.Fail($"{Name}: timed out waiting for {what}\n--- transcript:\n{Transcript}");
            Thread.Sleep(100);
        }
        _transcript.Length = len;
        _transcript.Append("# waited for ").Append(what).Append('\n');
    }

    ToolResult Exec(string file, string shown, string? stdin, string[] args)
    {
        var r = Tools.Run(file, args, Env, stdin, 90_000);
        Record(shown, args, r);
        return r;
    }

    void Record(string shown, string[] args, ToolResult r)
    {
        _transcript.Append("$ ").Append(shown).Append(' ').AppendJoin(' ', args.Select(Quote)).Append('\n');
        if (r.Stdout.Length > 0) _transcript.Append(r.Stdout).Append(r.Stdout.EndsWith('\n') ? "" : "\n");
        foreach (var l in r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)) _transcript.Append("[stderr] ").Append(l).Append('\n');
        _transcript.Append("[exit ").Append(r.ExitCode).Append("]\n");
    }

    void Observe(string shown, string[] args, ToolResult r, Func<string, string>? norm)
    {
        string N(string s) { s = Normalise(s); return norm is null ? s : norm(s); }
        Observations.Add($"$ {shown} {N(string.Join(' ', args.Select(Quote)))}  [exit {r.ExitCode}]"
            + (r.Stdout.Length > 0 ? "\n    out: " + N(r.Stdout).TrimEnd('\n').Replace("\n", "\n         ") : "")
            + (r.Stderr.Length > 0 ? "\n    err: " + N(r.Stderr).TrimEnd('\n').Replace("\n", "\n         ") : ""));
    }

    /// <summary>What is expected to differ between any two daemons: ids and digests, times, sizes,
    /// addresses, table column widths, and this side's own ports and paths.</summary>
    public string Normalise(string s)
    {
        foreach (var (from, to) in _aliases) s = s.Replace(from, to, StringComparison.Ordinal);
        s = Sha256().Replace(s, "sha256:<digest>");
        s = Hex64().Replace(s, "<id>");
        s = Hex12().Replace(s, "<id>");
        s = Rfc3339().Replace(s, "<time>");
        s = Ago().Replace(s, "<ago>");
        s = UpFor().Replace(s, "Up <t>");
        s = Size().Replace(s, "<size>");
        s = Ipv4().Replace(s, "<ip>");
        s = Columns().Replace(s, "   ");
        return s;
    }

    [GeneratedRegex(@"sha256:[0-9a-f]{64}")] private static partial Regex Sha256();
    [GeneratedRegex(@"\b[0-9a-f]{64}\b")] private static partial Regex Hex64();
    // a short id may be all digits (about 1 in 300): every 12-hex-digit word with a digit is an id here
    [GeneratedRegex(@"\b(?=[0-9a-f]*[0-9])[0-9a-f]{12}\b")] private static partial Regex Hex12();
    [GeneratedRegex(@"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")] private static partial Regex Rfc3339();
    [GeneratedRegex(@"(\d+|About an?|Less than a) (second|minute|hour)s? ago")] private static partial Regex Ago();
    [GeneratedRegex(@"Up (\d+|About an?|Less than a) (second|minute|hour)s?")] private static partial Regex UpFor();
    [GeneratedRegex(@"\b\d+(\.\d+)?\s?(B|kB|KB|KiB|MB|MiB|GB|GiB)\b")] private static partial Regex Size();
    [GeneratedRegex(@"\b(10|172)\.\d{1,3}\.\d{1,3}\.\d{1,3}\b")] private static partial Regex Ipv4();
    [GeneratedRegex(@" {2,}")] private static partial Regex Columns();

    public static string Quote(string s) => Regex.IsMatch(s, @"^[A-Za-z0-9_./:=,@%+-]+$") ? s : "'" + s.Replace("'", "'\\''") + "'";
}
