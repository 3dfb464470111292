namespace Berth.EndToEnd;

/// <summary>Rootless podman: an unprivileged user created for this class (useradd gives it an
/// /etc/subuid and /etc/subgid range), its own storage (vfs), run root, XDG_RUNTIME_DIR and
/// containers.conf, and berth-runc as the runtime. Everything is removed after: podman's state, its
/// rootless pause process (by its pid file), the user (userdel drops its subordinate ranges).</summary>
public sealed class RootlessPodmanFixture : IDisposable
{
    public string Dir { get; } = Path.Combine("/tmp", "berth-e2e-rl-" + Guid.NewGuid().ToString("N")[..8]);
    public string User { get; } = "btpm" + Guid.NewGuid().ToString("N")[..8];
    public string Image => "localhost/busybox:e2e";
    public uint Uid { get; }
    string RuntimeDir => Path.Combine(Dir, "xdg");

    public RootlessPodmanFixture()
    {
        Must(Tooling.Run("useradd", ["-M", "-s", "/bin/sh", User]), "useradd");
        try
        {
            Uid = uint.Parse(Tooling.Run("id", ["-u", User]).Stdout.Trim());
            Directory.CreateDirectory(Path.Combine(Dir, "xdg"));
            File.WriteAllText(Path.Combine(Dir, "containers.conf"), """
                [containers]
                default_ulimits = ["nofile=1024:1024"]
                [engine]
                cgroup_manager = "cgroupfs"
                events_logger = "file"
                """);
            var bundle = Path.Combine(Dir, "bundle");
            Must(Tooling.Run(Path.Combine(Tooling.RepoRoot, "scripts", "make-bundle.sh"), [bundle, Tooling.BerthRunc]), "make-bundle");
            Must(Tooling.Run("tar", ["-C", Path.Combine(bundle, "rootfs"), "-cf", Path.Combine(Dir, "rootfs.tar"), "."]), "tar");
            Must(Tooling.Run("chown", ["-R", $"{User}:{User}", Dir]), "chown");
            File.SetUnixFileMode(RuntimeDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            Must(Podman("import", "--change", "CMD [\"/bin/sh\"]", Path.Combine(Dir, "rootfs.tar"), Image), "podman import");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    static void Must(RunResult r, string what)
    {
        if (r.ExitCode != 0) throw new InvalidOperationException($"{what} failed: {r}");
    }

    IEnumerable<string> AsUser =>
    [
        $"--reuid={User}", $"--regid={User}", "--clear-groups", "/usr/bin/env", "-i",
        $"HOME={Dir}", $"USER={User}", $"XDG_RUNTIME_DIR={RuntimeDir}", $"XDG_CONFIG_HOME={Dir}/config", $"XDG_DATA_HOME={Dir}/data",
        $"CONTAINERS_CONF={Dir}/containers.conf", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
    ];

    IEnumerable<string> GlobalArgs =>
    [
        "--root", Path.Combine(Dir, "storage"), "--runroot", Path.Combine(Dir, "runroot"), "--storage-driver", "vfs",
        "--cgroup-manager", "cgroupfs", "--events-backend", "file",
    ];

    /// <summary>podman as the user, with berth-runc (or <paramref name="runtime"/>) as its runtime.</summary>
    public RunResult Podman(params string[] args) => PodmanWith(Tooling.BerthRunc, args);

    public RunResult PodmanWith(string runtime, params string[] args) =>
        Tooling.Run("setpriv", AsUser.Append("podman").Concat(GlobalArgs).Concat(["--runtime", runtime]).Concat(args));

    public void Dispose()
    {
        if (Directory.Exists(Path.Combine(Dir, "storage")))
        {
            Podman("rm", "-af", "-t", "0");
            Tooling.Run("setpriv", AsUser.Append("podman").Concat(GlobalArgs).Concat(["system", "reset", "-f"]));
        }
        // podman's rootless pause process keeps its user namespace alive between commands.
        var pauseFile = Path.Combine(RuntimeDir, "libpod", "tmp", "pause.pid");
        if (File.Exists(pauseFile) && int.TryParse(File.ReadAllText(pauseFile).Trim(), out var pause) && pause > 1)
            Tooling.Run("kill", ["-9", pause.ToString()]);
        Tooling.Run("userdel", [User]);
        // vfs layers unpacked in the user namespace belong to subordinate ids: root removes them.
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

// In the podman collection: run one after the other with the rootful podman tests (2 cores).
[Collection("podman")]
public sealed class RootlessPodmanTests(RootlessPodmanFixture f) : IClassFixture<RootlessPodmanFixture>
{
    static string[] Lines(string s) => s.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    static string Squeeze(string l) => string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries));

    /// <summary>runc, as a baseline on this machine, gives the same answers (so a failure here is Berth's).</summary>
    [Fact]
    public void Rootless_podman_runs_busybox_with_the_default_seccomp_profile()
    {
        const string script = "id -u; grep Seccomp: /proc/self/status; unshare -n true 2>/dev/null; echo unshare=$?; cat /proc/self/uid_map | head -1";
        var r = f.Podman("run", "--rm", "--network", "none", f.Image, "sh", "-c", script);
        Assert.True(r.ExitCode == 0, r.ToString());
        var lines = Lines(r.Stdout).Select(Squeeze).ToArray();
        // Root in the container is the user on the host (podman's rootless namespace maps 0 → uid).
        Assert.Equal(["0", "Seccomp:\t2", "unshare=1", $"0 {f.Uid} 1"], lines);
        var baseline = f.PodmanWith("runc", "run", "--rm", "--network", "none", f.Image, "sh", "-c", script);
        Assert.True(baseline.ExitCode == 0, baseline.ToString());
        Assert.Equal(lines, Lines(baseline.Stdout).Select(Squeeze).ToArray());
    }

    [Fact]
    public void Rootless_podman_userns_keep_id()
    {
        var r = f.Podman("run", "--rm", "--network", "none", "--userns", "keep-id", f.Image, "sh", "-c", "id -u; id -g; grep Seccomp: /proc/self/status");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal([f.Uid.ToString(), f.Uid.ToString(), "Seccomp:\t2"], Lines(r.Stdout));
    }

    [Fact]
    public void Rootless_podman_detached_exec_stop_rm()
    {
        var run = f.Podman("run", "-d", "--network", "none", f.Image, "sleep", "1000");
        Assert.True(run.ExitCode == 0, run.ToString());
        var id = run.Stdout.Trim();
        try
        {
            var ex = f.Podman("exec", id, "sh", "-c", "id -u; cat /proc/1/cmdline | tr '\\0' ' '");
            Assert.True(ex.ExitCode == 0, ex.ToString());
            Assert.Equal(["0", "sleep 1000"], Lines(ex.Stdout));
            var top = f.Podman("top", id, "pid", "args");
            Assert.True(top.ExitCode == 0, top.ToString());
            Assert.Contains("sleep 1000", top.Stdout);
            Assert.Equal(0, f.Podman("stop", "-t", "1", id).ExitCode);
            Assert.Contains("Exited", f.Podman("ps", "-a", "--filter", $"id={id}", "--format", "{{.Status}}").Stdout);
        }
        finally { f.Podman("rm", "-f", "-t", "0", id); }
    }
}
