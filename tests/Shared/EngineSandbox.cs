using System.Diagnostics;
using System.Text.Json.Nodes;
using Berth.Tests.Shared;

namespace Berth.Engine.Tests.Support;

/// <summary>The outcome of one `berth` invocation.</summary>
public sealed record BerthResult(int ExitCode, string Stdout, string Stderr)
{
    public string[] StderrLines => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    public string[] Lines => Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    public override string ToString() => $"exit {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}";
}

/// <summary>One test's world: a temp dir with its own --root, --runroot and busybox rootfs. <see
/// cref="Run"/> removes every container the test left (rm -f), then fails the test if anything leaked:
/// a process of the sandbox (monitor or container), a mount under it, a container cgroup.</summary>
public sealed class EngineSandbox
{
    public static string Binary { get; } = Locate();

    public string Dir { get; }
    public string Root => Path.Combine(Dir, "root");
    public string RunRoot => Path.Combine(Dir, "run");
    public string Rootfs => Path.Combine(Dir, "rootfs");
    readonly HashSet<string> _ids = [];
    int _calls;

    static string Locate()
    {
        if (Environment.GetEnvironmentVariable("BERTH_RUNC") is { Length: > 0 } runc)
            return Path.Combine(Path.GetDirectoryName(runc)!, "berth");
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "out", "berth");
            if (File.Exists(candidate)) return candidate;
        }
        throw new InvalidOperationException("berth not found: set BERTH_RUNC or run `make build`");
    }

    readonly string _bridge, _chainPrefix;

    EngineSandbox()
    {
        Dir = Path.Combine(Path.GetTempPath(), "berth-eng-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(Dir);
        MakeRootfs(Rootfs);
        // Containers default to the bridge network: this sandbox's own bridge, subnet and iptables chains.
        Directory.CreateDirectory(Root);
        var sfx = Guid.NewGuid().ToString("N")[..8];
        _bridge = "be" + sfx;
        _chainPrefix = "BE" + sfx.ToUpperInvariant();
        File.WriteAllText(Path.Combine(Root, "network-options.json"),
            $$"""{"defaultBridge": "be{{sfx}}", "defaultSubnet": "10.214.{{Random.Shared.Next(0, 250)}}.0/24", "chainPrefix": "BE{{sfx.ToUpperInvariant()}}", "pools": ["10.216.{{Random.Shared.Next(0, 250)}}.0/24"]}""");
    }

    public static void Run(Action<EngineSandbox> body)
    {
        var s = new EngineSandbox();
        List<string> leaks;
        try { body(s); }
        finally { leaks = s.Cleanup(); }
        Assert.True(leaks.Count == 0, "left behind:\n" + string.Join("\n", leaks));
    }

    /// <summary>A busybox-static root filesystem (the binary and one symlink per applet).</summary>
    public static void MakeRootfs(string dir)
    {
        var bin = Path.Combine(dir, "bin");
        Directory.CreateDirectory(bin);
        foreach (var d in new[] { "etc", "tmp", "root", "proc", "sys", "dev" }) Directory.CreateDirectory(Path.Combine(dir, d));
        File.Copy("/bin/busybox", Path.Combine(bin, "busybox"));
        foreach (var applet in Applets.Value)
        {
            var link = Path.Combine(bin, applet);
            if (!File.Exists(link) && applet != "busybox") File.CreateSymbolicLink(link, "busybox");
        }
        File.WriteAllText(Path.Combine(dir, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\napp:x:1000:1000:app:/:/bin/sh\n");
        File.WriteAllText(Path.Combine(dir, "etc/group"), "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nextra:x:2000:app\n");
    }

    static readonly Lazy<string[]> Applets = new(() =>
    {
        var psi = new ProcessStartInfo("/bin/busybox", "--list") { RedirectStandardOutput = true };
        using var p = Process.Start(psi)!;
        var list = p.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        p.WaitForExit();
        return list;
    });

    // ------------------------------------------------------------------ running berth

    /// <summary>`berth --root R --runroot RR ARGS`; stdio through files so a process that inherits
    /// stdout cannot hold the call open.</summary>
    public BerthResult Berth(params string[] args) => BerthIn(null, args);

    public BerthResult BerthIn(string? stdin, params string[] args)
    {
        var (p, o, e) = Start(stdin, args);
        using (p)
        {
            if (!p.WaitForExit(60_000))
            {
                try { p.Kill(); } catch (InvalidOperationException) { }
                p.WaitForExit();
                throw new TimeoutException($"berth {string.Join(' ', args)} did not finish in 60 s");
            }
            var r = new BerthResult(p.ExitCode, File.ReadAllText(o), File.ReadAllText(e));
            Track(r, args);
            return r;
        }
    }

    void Track(BerthResult r, string[] args)
    {
        if (args.Length > 0 && args[0] is "run" or "create" && r.ExitCode == 0)
            foreach (var l in r.Lines) if (l.Trim().Length == 64) lock (_ids) _ids.Add(l.Trim());
    }

    /// <summary>`berth ARGS` with a file (binary, e.g. a tar) as stdin; the stdout bytes as they are.</summary>
    public (int ExitCode, byte[] Stdout, string Stderr) BerthBinary(string? stdinFile, params string[] args)
    {
        var (p, o, e) = Start(null, args, stdinFile);
        using (p)
        {
            if (!p.WaitForExit(60_000)) { try { p.Kill(); } catch (InvalidOperationException) { } p.WaitForExit(); throw new TimeoutException("berth " + string.Join(' ', args)); }
            return (p.ExitCode, File.ReadAllBytes(o), File.ReadAllText(e));
        }
    }

    public (Process Process, string Stdout, string Stderr) Start(string? stdin, params string[] args) => Start(stdin, args, null);

    (Process Process, string Stdout, string Stderr) Start(string? stdin, string[] args, string? stdinFile) =>
        StartWithFiles(Path.Combine(Dir, "io"), Interlocked.Increment(ref _calls), stdin, stdinFile, [Binary, "--root", Root, "--runroot", RunRoot, .. args]);

    /// <summary>The plain redirection for <see cref="StartWithFiles"/>.</summary>
    public const string ExecWithFiles = "exec \"$0\" \"$@\" <\"$BT_IN\" >\"$BT_OUT\" 2>\"$BT_ERR\"";

    /// <summary>Starts ARGV through /bin/sh with stdio in files under <paramref name="io"/> (N.in, N.out,
    /// N.err), so that a process that inherits stdout (a detached monitor) cannot hold the call open.
    /// <paramref name="script"/> gets the files as $BT_IN, $BT_OUT, $BT_ERR and ARGV as "$0" "$@".</summary>
    public static (Process Process, string Stdout, string Stderr) StartWithFiles(string io, int n, string? stdin, string? stdinFile,
        IReadOnlyList<string> argv, IReadOnlyDictionary<string, string>? env = null, string script = ExecWithFiles)
    {
        Directory.CreateDirectory(io);
        var inPath = stdinFile ?? "/dev/null";
        if (stdin is not null) { inPath = Path.Combine(io, $"{n}.in"); File.WriteAllText(inPath, stdin); }
        var outPath = Path.Combine(io, $"{n}.out");
        var errPath = Path.Combine(io, $"{n}.err");
        File.WriteAllText(outPath, ""); File.WriteAllText(errPath, "");
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        foreach (var a in argv) psi.ArgumentList.Add(a);
        psi.Environment["BT_IN"] = inPath;
        psi.Environment["BT_OUT"] = outPath;
        psi.Environment["BT_ERR"] = errPath;
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        return (Process.Start(psi)!, outPath, errPath);
    }

    public BerthResult Ok(params string[] args)
    {
        var r = Berth(args);
        Assert.True(r.ExitCode == 0, $"berth {string.Join(' ', args)} failed: {r}");
        return r;
    }

    /// <summary>`run ARGS` with this sandbox's rootfs: `run [opts…] --rootfs DIR` then the command.</summary>
    public BerthResult RunC(string[] options, params string[] command) =>
        Berth(["run", .. options, "--rootfs", Rootfs, .. command]);

    public string RunDetached(string[] options, params string[] command)
    {
        var r = RunC(["-d", .. options], command);
        Assert.True(r.ExitCode == 0, "run -d failed: " + r);
        return r.Stdout.Trim();
    }

    public static void AssertOneLineError(BerthResult r, int code, string? contains = null)
    {
        Assert.True(r.ExitCode == code, $"expected exit {code}, got: {r}");
        Assert.True(r.StderrLines.Length == 1, "expected exactly one stderr line, got: " + r);
        Assert.StartsWith("berth:", r.StderrLines[0]);
        if (contains is not null) Assert.Contains(contains, r.Stderr);
    }

    public JsonObject Inspect(string name) => JsonNode.Parse(Ok("inspect", name).Stdout)!.AsArray()[0]!.AsObject();

    /// <summary>The engine's own record (with the monitor's pid), read from the store.</summary>
    public JsonObject Record(string id) => JsonNode.Parse(File.ReadAllText(Path.Combine(Root, "containers", id, "container.json")))!.AsObject();

    /// <summary>Power loss: every process of the sandbox dies at once, the containers' cgroups go, then
    /// the runroot (/run) is emptied.</summary>
    public void SimulateReboot()
    {
        foreach (var pid in SandboxProcesses()) { try { Process.GetProcessById(pid).Kill(); } catch (ArgumentException) { } }
        WaitUntil(() => SandboxProcesses().Count == 0, "processes gone");
        foreach (var id in Ok("ps", "-aq", "--no-trunc").Lines.Where(l => l.Length == 64))
            foreach (var dir in CgroupDirs(id))
                if (Directory.Exists(dir)) Directory.Delete(dir);
        Directory.Delete(RunRoot, true);
    }

    public static void WaitUntil(Func<bool> cond, string what, int timeoutMs = 20_000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        while (!cond())
        {
            if (Environment.TickCount64 > deadline) Assert.Fail("timed out waiting for " + what);
            Thread.Sleep(20);
        }
    }

    // ------------------------------------------------------------------ cleanup and leak checks

    List<string> Cleanup()
    {
        var leaks = new List<string>();
        var ids = new HashSet<string>(_ids);
        var ps = Berth("ps", "-aq", "--no-trunc");
        foreach (var l in ps.Lines) ids.Add(l.Trim());
        foreach (var id in ids)
        {
            if (!Directory.Exists(Path.Combine(Root, "containers", id))) continue;
            var r = Berth("rm", "-f", id);
            if (r.ExitCode != 0) leaks.Add($"rm -f {id}: {r}");
        }
        foreach (var pod in Berth("pod", "ps", "-q", "--no-trunc").Lines)
        {
            var r = Berth("pod", "rm", "-f", pod.Trim());
            if (r.ExitCode != 0) leaks.Add($"pod rm -f {pod}: {r}");
        }
        // User networks a test left (it failed half-way, or forgot), then the default bridge.
        var netDir = Path.Combine(Root, "networks");
        var nets = Directory.Exists(netDir) ? Directory.GetFiles(netDir, "*.json").Select(f => Path.GetFileNameWithoutExtension(f)).ToList() : [];
        foreach (var name in nets.Where(n => n != "bridge").Append("bridge").Where(nets.Contains))
        {
            if (name != "bridge") leaks.Add("network " + name);
            var nr = Berth("network", "rm", name);
            if (nr.ExitCode != 0) leaks.Add($"network rm {name}: " + nr);
        }
        // The sandbox's bridge and rules must be gone even when no record names them (a killed create).
        if (Directory.Exists("/sys/class/net/" + _bridge))
        {
            leaks.Add("bridge " + _bridge);
            Shell($"ip link del {_bridge}");
        }
        foreach (var table in new[] { "nat", "filter" })
        {
            var rules = Shell($"iptables-save -t {table}").Split('\n');
            foreach (var rule in rules.Where(l => l.StartsWith("-A ") && l.Contains(_chainPrefix)))
            {
                leaks.Add($"{table}: {rule}");
                Shell($"iptables -w 5 -t {table} -D {rule[3..]}");
            }
            foreach (var chain in rules.Where(l => l.StartsWith(':' + _chainPrefix)))
                Shell($"iptables -w 5 -t {table} -X {chain[1..chain.IndexOf(' ')]}");
        }
        // Give monitors that are finishing a moment to exit.
        var deadline = Environment.TickCount64 + 10_000;
        List<int> procs;
        while ((procs = SandboxProcesses()).Count > 0 && Environment.TickCount64 < deadline) Thread.Sleep(50);
        foreach (var pid in procs)
        {
            leaks.Add($"process {pid}: {Cmdline(pid)}");
            try { Process.GetProcessById(pid).Kill(); } catch (ArgumentException) { } catch (InvalidOperationException) { }
        }
        foreach (var line in File.ReadAllLines("/proc/self/mountinfo"))
            if (line.Contains(Dir, StringComparison.Ordinal)) leaks.Add("mount: " + line);
        foreach (var id in ids)
            foreach (var dir in CgroupDirs(id))
                if (Directory.Exists(dir)) { leaks.Add("cgroup: " + dir); try { Directory.Delete(dir); } catch (IOException) { } }
        var runc = Path.Combine(RunRoot, "runc");
        // Container state must be gone; the runtime's compiled-seccomp cache is meant to stay.
        var state = Directory.Exists(runc) ? Directory.EnumerateFileSystemEntries(runc).Where(e => Path.GetFileName(e) != "@seccomp-cache").ToList() : [];
        if (state.Count > 0) leaks.Add("runtime state: " + string.Join(' ', state));
        try { Directory.Delete(Dir, true); } catch (IOException e) { leaks.Add("temp dir: " + e.Message); }
        return leaks;
    }

    static string Shell(string command)
    {
        using var p = Process.Start(new ProcessStartInfo("bash", ["-c", command]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var err = p.StandardError.ReadToEndAsync();
        var o = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        _ = err.Result;
        return o;
    }

    /// <summary>Processes of this sandbox: monitors (their argv names the sandbox) and container
    /// processes (their root is the sandbox's rootfs).</summary>
    public List<int> SandboxProcesses() => ProcessScan.Find(Dir, Rootfs);

    public static string Cmdline(int pid) => ProcessScan.Cmdline(pid);

    public static bool IsZombie(int pid) => ProcessScan.IsZombie(pid);

    public static bool IsAlive(int pid) => Directory.Exists($"/proc/{pid}") && !IsZombie(pid);

    /// <summary>Where a container's cgroups are: berth-runc's default "berth/ID", nested under the
    /// cgroup of its caller (the monitor, which is in this test's cgroup).</summary>
    public static IEnumerable<string> CgroupDirs(string id)
    {
        foreach (var line in File.ReadAllLines("/proc/self/cgroup"))
        {
            var parts = line.Split(':', 3);
            if (parts.Length != 3) continue;
            var names = parts[1] == "" ? ["unified"] : parts[1].Split(',').Select(n => n.StartsWith("name=") ? n[5..] : n).ToArray();
            foreach (var n in names)
                if (Directory.Exists("/sys/fs/cgroup/" + n)) yield return $"/sys/fs/cgroup/{n}{parts[2].TrimEnd('/')}/berth/{id}";
        }
    }
}
