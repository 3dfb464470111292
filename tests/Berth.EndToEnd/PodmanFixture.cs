namespace Berth.EndToEnd;

/// <summary>An isolated podman (own storage, run root and containers.conf under a temp dir) with a
/// busybox image imported from Debian's busybox-static, and berth-runc as its OCI runtime.</summary>
public sealed class PodmanFixture : IDisposable
{
    public string Dir { get; } = Path.Combine("/tmp", "berth-e2e-" + Guid.NewGuid().ToString("N")[..8]);
    public string Image => "localhost/busybox:e2e";
    readonly Dictionary<string, string> _env;

    public PodmanFixture()
    {
        Directory.CreateDirectory(Dir);
        _env = Berth.Tests.Shared.PodmanConf.Write(Dir);
        var bundle = Path.Combine(Dir, "bundle");
        var mk = Tooling.Run(Path.Combine(Tooling.RepoRoot, "scripts", "make-bundle.sh"), [bundle, Tooling.BerthRunc]);
        if (mk.ExitCode != 0) throw new InvalidOperationException("make-bundle failed: " + mk);
        var tar = Tooling.Run("sh", ["-c", $"tar -C {bundle}/rootfs -c . | podman {string.Join(' ', GlobalArgs)} import --change 'CMD [\"/bin/sh\"]' - {Image}"], env: _env);
        if (tar.ExitCode != 0) throw new InvalidOperationException("podman import failed: " + tar);
    }

    IEnumerable<string> GlobalArgs =>
    [
        "--root", Path.Combine(Dir, "storage"), "--runroot", Path.Combine(Dir, "runroot"), "--storage-driver", "vfs",
        "--runtime", Tooling.BerthRunc, "--cgroup-manager", "cgroupfs", "--events-backend", "file",
    ];

    /// <summary>Runs podman with berth-runc as its runtime.</summary>
    public RunResult Podman(params string[] args) => Tooling.Run("podman", GlobalArgs.Concat(args), env: _env);

    /// <summary>Runs podman under script(1), so the client has a terminal for `-t`.</summary>
    public RunResult PodmanWithTty(params string[] args)
    {
        var cmd = "podman " + string.Join(' ', GlobalArgs.Concat(args).Select(Quote));
        return Tooling.Run("script", ["-qec", cmd, "/dev/null"], env: _env);
    }

    /// <summary>Runs podman from a shell that first runs <paramref name="setup"/> (e.g. `exec 3&lt;file`).</summary>
    public RunResult PodmanAfter(string setup, params string[] args)
    {
        var cmd = setup + "; exec podman " + string.Join(' ', GlobalArgs.Concat(args).Select(Quote));
        return Tooling.Run("sh", ["-c", cmd], env: _env);
    }

    static string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";

    public void Dispose()
    {
        Podman("rm", "-af", "-t", "0");
        Podman("rmi", "-af");
        Tooling.Run("podman", GlobalArgs.Concat(["system", "reset", "-f"]), env: _env);
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

[CollectionDefinition("podman")]
public sealed class PodmanCollection : ICollectionFixture<PodmanFixture>;
