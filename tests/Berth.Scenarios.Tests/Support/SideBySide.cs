using System.Text;
using Berth.Engine.Tests.Support;
using Xunit.Abstractions;

namespace Berth.Scenarios.Tests.Support;

/// <summary>An isolated podman (own storage, run root, tmpdir and containers.conf under a temp dir,
/// runc as its runtime: crun refuses this machine's hybrid cgroups) holding the scenarios' busybox
/// image, and the same image as a docker-archive that `berth save` wrote, for Berth's sandboxes to `load`.
/// Built once for all scenarios; each scenario removes its podman containers, pods and volumes.</summary>
public sealed class PodmanStore : IDisposable
{
    public const string Image = "localhost/busybox:scenario";
    public string Dir { get; } = Path.Combine("/tmp", "berth-scn-" + Guid.NewGuid().ToString("N")[..8]);
    /// <summary>The image as `berth save` wrote it (a docker-archive).</summary>
    public string Archive => Path.Combine(Dir, "busybox.tar");
    public Dictionary<string, string> Env { get; }
    public string[] Prefix { get; }

    public PodmanStore()
    {
        Directory.CreateDirectory(Dir);
        Env = Berth.Tests.Shared.PodmanConf.Write(Dir);
        Prefix = ["podman", "--root", Path.Combine(Dir, "storage"), "--runroot", Path.Combine(Dir, "run"),
            "--tmpdir", Path.Combine(Dir, "tmp"), "--storage-driver", "vfs", "--runtime", "runc",
            "--cgroup-manager", "cgroupfs", "--events-backend", "file"];

        // The image: busybox-static imported into a throwaway Berth store, saved as a docker-archive,
        // loaded into podman. Each scenario's Berth sandbox loads the same archive.
        var rootfs = Path.Combine(Dir, "rootfs");
        EngineSandbox.MakeRootfs(rootfs);
        var tar = Path.Combine(Dir, "rootfs.tar");
        Side.Sh($"tar -C {rootfs} -cf {tar} .");
        var b = new Side("berth", [EngineSandbox.Binary, "--root", Path.Combine(Dir, "broot"), "--runroot", Path.Combine(Dir, "brun")], Dir, Image);
        b.Ok("import", "-c", "CMD [\"/bin/sh\"]", tar, Image);
        b.Ok("save", "-o", Archive, Image);
        new Side("podman", Prefix, Dir, Image, Env).Ok("load", "-i", Archive);
    }

    public Side NewSide() => new("podman", Prefix, Dir, Image, Env);

    /// <summary>Removes what a scenario left in podman's store (containers, pods, volumes).</summary>
    public void Clean()
    {
        var s = NewSide();
        s.Do("pod", "rm", "-af", "-t", "0");
        s.Do("rm", "-af", "-t", "0");
        s.Do("volume", "rm", "-af");
    }

    public void Dispose()
    {
        var s = NewSide();
        Clean();
        s.Do("system", "reset", "-f");
        Side.Sh($"umount -R {Dir}/storage 2>/dev/null; umount -R {Dir}/run 2>/dev/null; true");
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

[CollectionDefinition("side-by-side")]
public sealed class SideBySideCollection : ICollectionFixture<PodmanStore>;

/// <summary>Runs one scenario against podman and against Berth (in an <see cref="EngineSandbox"/>:
/// temp --root/--runroot, its own bridge, and a leak check when it ends), writes both transcripts to the
/// test output, and asserts that the two lists of observations the scenario returned are equal.</summary>
public static class SideBySide
{
    public static void Compare(ITestOutputHelper output, PodmanStore podman, Func<Side, List<string>> scenario)
    {
        List<string> fromPodman, fromBerth = [];
        var p = podman.NewSide();
        try { fromPodman = scenario(p); }
        finally
        {
            output.WriteLine("==================== podman\n" + p.Transcript);
            podman.Clean();
        }
        Side? b = null;
        try
        {
            EngineSandbox.Run(s =>
            {
                b = new Side("berth", [EngineSandbox.Binary, "--root", s.Root, "--runroot", s.RunRoot], s.Dir, PodmanStore.Image);
                b.Ok("load", "-i", podman.Archive);
                fromBerth = scenario(b);
            });
        }
        finally { if (b is not null) output.WriteLine("==================== berth\n" + b.Transcript); }

        var diff = new StringBuilder();
        for (var i = 0; i < Math.Max(fromPodman.Count, fromBerth.Count); i++)
        {
            var x = i < fromPodman.Count ? fromPodman[i] : "(none)";
            var y = i < fromBerth.Count ? fromBerth[i] : "(none)";
            if (x != y) diff.Append($"  podman: {x}\n  berth:  {y}\n");
        }
        output.WriteLine("==================== observations\n" + string.Join("\n", fromBerth));
        Assert.True(diff.Length == 0, "Berth differs from podman:\n" + diff);
    }
}
