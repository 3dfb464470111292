using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Berth.Runtime.Tests.Support;

/// <summary>One test's world: a temp directory, its own --root, the containers it made. <see cref="Run"/>
/// always deletes every container (delete --force) and then checks that nothing leaked: no state
/// directory, no cgroup directory, no process left in the container's cgroup, no mount on the host.</summary>
public sealed class Sandbox
{
    public const string CgroupParent = "/berth-test";
    static readonly object ActiveLock = new();
    static int _active;

    public string Dir { get; }
    public string Root { get; }
    /// <summary>Set by rootless tests: every berth-runc call (cleanup included) runs as this user.</summary>
    public UnprivilegedUser? AsUser { get; private set; }
    readonly List<string> _ids = [];
    int _calls;

    Sandbox()
    {
        Dir = Path.Combine(Path.GetTempPath(), "berth-test-" + Guid.NewGuid().ToString("N")[..12]);
        Root = Path.Combine(Dir, "root");
        Directory.CreateDirectory(Dir);
    }

    /// <summary>Runs <paramref name="body"/>, then cleans up; leaks fail the test (unless it already failed).</summary>
    public static void Run(Action<Sandbox> body) => Run(null, body);

    /// <summary>As <see cref="Run(Action{Sandbox})"/>, with berth-runc run as <paramref name="user"/>
    /// (the sandbox directory and --root belong to that user).</summary>
    public static void Run(UnprivilegedUser? user, Action<Sandbox> body)
    {
        lock (ActiveLock) _active++;
        var s = new Sandbox();
        if (user is not null)
        {
            s.AsUser = user;
            Directory.CreateDirectory(s.Root);
            user.Own(s.Dir);
            user.Own(s.Root);
        }
        List<string> leaks;
        try { body(s); }
        finally
        {
            leaks = s.Cleanup();
        }
        Assert.True(leaks.Count == 0, "left behind:\n" + string.Join("\n", leaks));
    }

    // ------------------------------------------------------------------ ids and bundles

    public string NewId(string tag) => Track("bt-" + tag + "-" + Guid.NewGuid().ToString("N")[..10]);

    /// <summary>Registers an id for cleanup (also ids that are expected never to exist).</summary>
    public string Track(string id) { lock (_ids) _ids.Add(id); return id; }

    /// <summary>A busybox bundle for <paramref name="id"/>: the default `berth-runc spec` config with
    /// terminal off, cgroupsPath /berth-test/ID, and `sh -c SCRIPT` as the process when given.</summary>
    public Bundle NewBundle(string id, string? script = null, Action<JsonObject>? edit = null)
    {
        var b = new Bundle(Path.Combine(Dir, "bundle-" + id));
        b.Config.Proc()["terminal"] = false;
        b.Config.Linux()["cgroupsPath"] = CgroupParent + "/" + id;
        if (script is not null) b.Config.SetArgs("sh", "-c", script);
        edit?.Invoke(b.Config);
        b.Save();
        return b;
    }

    /// <summary>A fresh directory on the host (for bind mounts, hook output, pid files).</summary>
    public string HostDir(string name)
    {
        var d = Path.Combine(Dir, name);
        Directory.CreateDirectory(d);
        return d;
    }

    // ------------------------------------------------------------------ running berth-runc

    public RuncResult Runc(params string[] args) => RuncWithStdin(null, args);

    public RuncResult RuncWithStdin(string? stdin, params string[] args) => RuncWithFds(null, stdin, args);

    /// <summary>Runs berth-runc after <paramref name="fdSetup"/> (shell, e.g. `exec 3</file;`) so it
    /// inherits extra descriptors (for --preserve-fds and fd-leak tests).</summary>
    public RuncResult RuncWithFds(string? fdSetup, string? stdin, params string[] args)
    {
        var (p, @out, err) = Start(stdin, args, fdSetup);
        using (p)
        {
            var code = global::Berth.Runtime.Tests.Support.Runc.Wait(p, string.Join(' ', args));
            return new RuncResult(code, File.ReadAllText(@out), File.ReadAllText(err), @out);
        }
    }

    /// <summary>Starts berth-runc without waiting (e.g. a foreground `run`). Returns the process and
    /// the files its stdout and stderr go to.</summary>
    public (Process Process, string Stdout, string Stderr) Start(string? stdin, params string[] args) => Start(stdin, args, null);

    (Process Process, string Stdout, string Stderr) Start(string? stdin, string[] args, string? fdSetup)
    {
        var n = Interlocked.Increment(ref _calls);
        var io = Path.Combine(Dir, "io");
        Directory.CreateDirectory(io);
        var inPath = "/dev/null";
        if (stdin is not null) { inPath = Path.Combine(io, $"{n}.in"); File.WriteAllText(inPath, stdin); }
        var outPath = Path.Combine(io, $"{n}.out");
        var errPath = Path.Combine(io, $"{n}.err");
        File.WriteAllText(outPath, ""); File.WriteAllText(errPath, "");
        var p = Support.Runc.Start(["--root", Root, .. args], inPath, outPath, errPath, fdSetup, AsUser?.Prefix);
        return (p, outPath, errPath);
    }

    public RuncResult Ok(params string[] args)
    {
        var r = Runc(args);
        Assert.True(r.ExitCode == 0, $"berth-runc {string.Join(' ', args)} failed: {r}");
        return r;
    }

    /// <summary>Asserts the runc error contract: non-zero exit, exactly one stderr line, prefixed.</summary>
    public static void AssertOneLineError(RuncResult r, string? contains = null)
    {
        Assert.True(r.ExitCode != 0, "expected failure, got: " + r);
        Assert.True(r.StderrLines.Length == 1, "expected exactly one stderr line, got: " + r);
        Assert.StartsWith("berth-runc:", r.StderrLines[0]);
        if (contains is not null) Assert.Contains(contains, r.Stderr);
    }

    public JsonObject State(string id) => JsonNode.Parse(Ok("state", id).Stdout)!.AsObject();

    public string Status(string id) => (string)State(id)["status"]!;

    public void WaitForStatus(string id, string status, int timeoutMs = 20_000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        string last;
        while ((last = Status(id)) != status)
        {
            if (Environment.TickCount64 > deadline) Assert.Fail($"container {id} stayed {last}, expected {status}");
            Thread.Sleep(20);
        }
    }

    /// <summary>Waits until the file contains <paramref name="marker"/> and returns its text.</summary>
    public static string WaitForText(string path, string marker, int timeoutMs = 60_000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        while (true)
        {
            var text = File.Exists(path) ? File.ReadAllText(path) : "";
            if (text.Contains(marker)) return text;
            if (Environment.TickCount64 > deadline) Assert.Fail($"{path} never contained \"{marker}\"; it has: {text}");
            Thread.Sleep(20);
        }
    }

    // ------------------------------------------------------------------ host views

    /// <summary>The caller's cgroup per hierarchy directory under /sys/fs/cgroup (from /proc/self/cgroup).</summary>
    static readonly Lazy<Dictionary<string, string>> Hierarchies = new(() =>
    {
        var map = new Dictionary<string, string>();
        foreach (var line in File.ReadAllLines("/proc/self/cgroup"))
        {
            var parts = line.Split(':', 3);
            if (parts.Length != 3) continue;
            var names = parts[1] == "" ? ["unified"] : parts[1].Split(',').Select(n => n.StartsWith("name=") ? n[5..] : n).ToArray();
            foreach (var n in names)
                if (Directory.Exists("/sys/fs/cgroup/" + n)) map[n] = parts[2].TrimEnd('/');
        }
        return map;
    });

    /// <summary>The container's directory in one v1 hierarchy: an absolute cgroupsPath is taken from
    /// each hierarchy's root, as runc does.</summary>
    public static string CgroupDir(string controller, string id) => $"/sys/fs/cgroup/{controller}{CgroupParent}/{id}";

    /// <summary>Where the container would be if the path were wrongly nested under the caller's cgroup.</summary>
    static string NestedCgroupDir(string controller, string id)
    {
        var caller = Hierarchies.Value.TryGetValue(controller, out var c) ? c : "";
        return $"/sys/fs/cgroup/{controller}{caller}{CgroupParent}/{id}";
    }

    public static string CgroupFile(string controller, string id, string file) =>
        File.ReadAllText(Path.Combine(CgroupDir(controller, id), file)).Trim();

    static IEnumerable<string> AllCgroupDirs(string id) =>
        Hierarchies.Value.Keys.SelectMany(h => new[] { CgroupDir(h, id), NestedCgroupDir(h, id) }).Distinct();

    /// <summary>Pids of host processes whose cgroup path names the container.</summary>
    public static List<int> ProcessesInCgroupOf(string id)
    {
        var found = new List<int>();
        foreach (var d in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(d), out var pid)) continue;
            try
            {
                if (File.ReadAllText(Path.Combine(d, "cgroup")).Contains($"{CgroupParent}/{id}\n") && !IsZombie(pid)) found.Add(pid);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return found;
    }

    public static bool IsAlive(int pid) => Directory.Exists($"/proc/{pid}") && !IsZombie(pid);

    static bool IsZombie(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z');
        }
        catch (IOException) { return true; }
    }

    /// <summary>What a failed create must leave: no state directory, no cgroup, no process.</summary>
    public void AssertNothingLeft(string id)
    {
        Assert.False(Directory.Exists(Path.Combine(Root, id)), $"state directory of {id} left behind");
        Assert.False(AllCgroupDirs(id).Any(Directory.Exists), $"cgroup of {id} left behind");
        Assert.Empty(ProcessesInCgroupOf(id));
    }

    // ------------------------------------------------------------------ cleanup

    List<string> Cleanup()
    {
        var leaks = new List<string>();
        string[] ids;
        lock (_ids) ids = [.. _ids];
        foreach (var id in ids)
        {
            var pid = 0;
            if (Directory.Exists(Path.Combine(Root, id)))
            {
                var st = Runc("state", id);
                if (st.ExitCode == 0 && JsonNode.Parse(st.Stdout)?["pid"] is { } p) pid = (int)p;
            }
            var del = Runc("delete", "--force", id);
            if (del.ExitCode != 0) leaks.Add($"delete --force {id} failed: {del}");
            if (Directory.Exists(Path.Combine(Root, id))) leaks.Add($"state directory {Path.Combine(Root, id)}");
            if (pid > 0 && IsAlive(pid)) leaks.Add($"init process {pid} of {id} still running");
            foreach (var p in ProcessesInCgroupOf(id)) leaks.Add($"process {p} still in the cgroup of {id}");
            foreach (var d in AllCgroupDirs(id).Where(Directory.Exists)) leaks.Add($"cgroup directory {d}");
        }
        lock (ActiveLock)
        {
            // The last sandbox out removes the shared parents, so no test races a create against it.
            if (--_active == 0)
                foreach (var h in Hierarchies.Value.Keys)
                    foreach (var d in new[] { $"/sys/fs/cgroup/{h}{Hierarchies.Value[h]}{CgroupParent}", $"/sys/fs/cgroup/{h}{CgroupParent}" })
                        try { if (Directory.Exists(d)) Directory.Delete(d); } catch (IOException) { }
        }
        var mounts = File.ReadAllLines("/proc/self/mountinfo").Where(l => l.Contains(Dir)).ToList();
        if (mounts.Count > 0) leaks.AddRange(mounts.Select(m => "host mount: " + m));
        else
            try { Directory.Delete(Dir, recursive: true); } catch (IOException e) { leaks.Add($"removing {Dir}: {e.Message}"); }
        return leaks;
    }
}
